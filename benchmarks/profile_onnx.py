"""Where the network's time goes: ONNX Runtime's profiler, summed per part of the network.

Exports a model's base and re-check graphs (as `cstrack track` runs them), runs each `--runs`
times on one input with profiling on, and sums the node times by the module that made each node
(the ONNX node names keep PyTorch's module path: `/model/embedding/proj1/...` is SAAN's first
branch), `--depth` levels deep. Layout reorders and copies that belong to no module are grouped
by operator type. Prints ms per run and the share of each graph's time.

    python benchmarks/profile_onnx.py [--model omc_yolox_nano_lite.bytetrack_reid] [--img-size 768 576]
                                      [--templates 10] [--runs 20] [--depth 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from cstrack.config import DEFAULT_MODEL


def part_of(name: str, op_type: str, depth: int) -> str:
    """The module path of a node, `depth` levels deep (wrappers `model`, `models` dropped)."""
    parts = [p for p in name.split("/") if p and p not in ("model",)]
    if len(parts) <= 1:
        return f"({op_type})"
    return ".".join(parts[:-1][:depth]) or f"({op_type})"


def profile(
    path: Path, feeds: dict[str, np.ndarray], runs: int, threads: int, depth: int
) -> dict[str, float]:
    """ms per run of each part of the graph at `path`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = str(Path(folder, "profile"))
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for _ in range(runs + 1):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: dict[str, float] = collections.defaultdict(float)
    skipped = set()
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        node = event["name"].removesuffix("_kernel_time")
        op_type = event.get("args", {}).get("op_name", "?")
        totals[part_of(node, op_type, depth)] += event["dur"] / 1000
        skipped.add(node)
    return {name: ms / (runs + 1) for name, ms in totals.items()}


def print_table(title: str, parts: dict[str, float]) -> None:
    total = sum(parts.values())
    print(f"\n{title}: {total:.1f} ms per run (node time)")
    for name, ms in sorted(parts.items(), key=lambda item: -item[1]):
        print(f"  {name:48s} {ms:7.2f} ms  {100 * ms / total:5.1f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--img-size", type=int, nargs=2, default=(768, 576), metavar=("W", "H"))
    parser.add_argument("--templates", type=int, default=10, help="tracks the re-check searches for")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--depth", type=int, default=3, help="module path levels per row")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from cstrack.export.onnx import export_onnx
    from cstrack.models import model_from_spec

    model = model_from_spec(args.model).model.eval()
    width, height = args.img_size
    graphs = export_onnx(model, (width, height))
    with tempfile.TemporaryDirectory() as folder:
        base_path = Path(folder, "base.onnx")
        written = graphs.save(base_path)
        images = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
        import onnxruntime as ort

        outputs = ort.InferenceSession(str(base_path), providers=["CPUExecutionProvider"]).run(
            None, {"images": images}
        )
        names = [o.name for o in graphs.base.graph.output]
        values = dict(zip(names, outputs, strict=True))
        print(f"{args.model} at {width}x{height}, {args.threads} threads, {args.runs} runs")
        print_table("base graph", profile(base_path, {"images": images}, args.runs, args.threads, args.depth))
        if len(written) > 1:
            inputs = [i.name for i in graphs.recheck.graph.input]
            templates = torch.nn.functional.normalize(torch.randn(args.templates, model.emb_dim), dim=1)
            feeds = {name: values[name] for name in inputs if name in values}
            feeds["templates"] = templates.numpy()
            print_table(
                f"re-check graph, {args.templates} templates",
                profile(written[1], feeds, args.runs, args.threads, args.depth),
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

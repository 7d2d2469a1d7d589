"""Batch throughput: frames per second of `track_many` on a batch of rendered sequences, one
process after another (1 and all intra-op threads), worker processes (`--workers`), and Ray tasks
(`--ray`, a local cluster of 1 and of all CPUs, started before the clock), for 1, 2 ... workers up
to the machine's cores, with the bundled model. Scaling efficiency is the speed-up over one worker
with one thread, divided by the cores used (workers x threads). Each row's time is the whole
call: the pool's processes start and load the model inside it, as they do for a user (Ray's
workers start inside it too; the cluster is up before, as a real cluster is).

    python benchmarks/batch.py [--sequences 4] [--frames 40] [--width 640] [--height 384]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from cstrack.data.synth.scene import SynthConfig
from cstrack.data.synth.write import generate_dataset
from cstrack.pipeline.batch import available_cores, track_many


def timed(data: Path, out: Path, **options: Any) -> tuple[int, float]:
    """(frames tracked, seconds) of one batch into a fresh folder."""
    started = time.perf_counter()
    batch = track_many([data], output=out, progress=False, force=True, **options)
    if batch.failed:
        raise SystemExit(batch.summary())
    return batch.frames, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    args = parser.parse_args()
    cores = available_cores()
    counts = sorted({1, 2, cores} & set(range(1, cores + 1)))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = SynthConfig(frames=args.frames, width=args.width, height=args.height, people=6)
        data = root / "data"
        generate_dataset(data, config, sequences=args.sequences, seed=1)
        track_many([data / "SYNTH-01"], output=root / "warm", progress=False)  # the ONNX export cache
        rows = [
            ("sequential", 1, threads, *timed(data, root / "out", workers=1, threads=threads))
            for threads in sorted({1, cores})
        ]
        rows += [
            ("--workers", workers, 1, *timed(data, root / "out", workers=workers, threads=1))
            for workers in counts[1:]
        ]
        if not args.no_ray:
            import ray

            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            for workers in counts:
                ray.init(
                    num_cpus=workers,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    log_to_driver=False,
                )
                try:
                    rows.append(("--ray", workers, 1, *timed(data, root / "out", ray=True, threads=1)))
                finally:
                    ray.shutdown()
    base = rows[0][3] / rows[0][4]
    print(
        f"{args.sequences} sequences x {args.frames} frames at {args.width}x{args.height}, bundled model, "
        f"{cores} cores"
    )
    print("| mode | workers | threads | frames | seconds | frames/s | scaling efficiency |")
    print("|---|---|---|---|---|---|---|")
    for mode, workers, threads, frames, seconds in rows:
        speed = frames / seconds
        print(
            f"| {mode} | {workers} | {threads} | {frames} | {seconds:.1f} | {speed:.2f} | "
            f"{speed / base / (workers * threads):.0%} |"
        )


if __name__ == "__main__":
    main()

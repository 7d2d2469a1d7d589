"""cstrack against a peer: one run, same frames, same scoring rules.

Rows of the table:
- cstrack: `cstrack.Tracker` end to end (our default model unless `--model`), on the CPU with
  ONNX Runtime (`--backends`), once at its default input (fitted to each source's frames) and
  once at the peer's 1088x608, so the two are compared at one common size too (`--img-size`
  chooses the rows: `auto` or W H pairs);
- peer: ByteTrack's YOLOX-Nano pedestrian detector (../shared/weights, ONNX Runtime on the CPU,
  fixed input 1088x608, ByteTrack's preprocessing and decoding, NMS 0.45) whose detections
  (score > 0.1, ByteTrack's low bound) go to roboflow `trackers`' ByteTrackTracker with its default
  thresholds and the sequence's frame rate (its lost-track buffer is in 30 fps frames, scaled).

Scored with `cstrack.evaluation` on PETS09-S2L1 frames `--frames` (MOT15 rules; gt cut to those
frames), on MOT17-mini (MOT17 rules, its 7 sequences combined) and on MOT17-11-300 (300 frames of
a moving hand-held camera, MOT17 rules). Both pipelines see each frame
in turn, so a busy machine slows them alike. Times are medians over frames, after a warm-up on
the first frames: model (preprocess, inference, decode, NMS; for cstrack also OMC's re-check),
association, and their per-frame sum. On a machine other processes keep busy, set
OMP_WAIT_POLICY=PASSIVE (PyTorch's spinning OpenMP threads otherwise stall, 5-10x slower here;
see benchmarks/model_speed.py); it is logged and written to the JSON. The peer needs the `bench` extra: pip install -e .[bench]

    python benchmarks/peers.py [--data ../shared/data] [--frames 601-795] [--model NAME_OR_PATH]
                               [--img-size auto 1088 608] [--json out.json]
                               [--sequences pets mot17mini mot17_11]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from tqdm import tqdm

from cstrack.config import DEFAULT_MODEL
from cstrack.data.mot import FRAME, MotSequence, find_sequences, results_table, write_results, write_seqinfo
from cstrack.data.sources import ALL_FRAMES, FrameRange, SequenceSource
from cstrack.evaluation import evaluate
from cstrack.tracking.rows import results_rows

log = logging.getLogger("peers")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PEER_WEIGHTS = ROOT.parent / "shared" / "weights" / "bytetrack_nano_mot17_608x1088.onnx"
# name -> (folder under --data, benchmark rules, whether --frames applies)
SETS = {
    "pets": ("PETS09-S2L1", "MOT15", True),
    "mot17mini": ("MOT17-mini", "MOT17", False),
    "mot17_11": ("MOT17-11-300", "MOT17", False),
}
COMMON_SIZE = (1088, 608)  # the peer's fixed input
METRICS = ("HOTA", "MOTA", "IDF1", "DetA", "AssA", "FP", "FN", "IDSW")
RATIOS = ("HOTA", "MOTA", "IDF1", "DetA", "AssA")
WARMUP_FRAMES = 3
# ByteTrack's preprocessing and decoding (yolox/data/data_augment.py preproc, YOLOXHead).
PAD_VALUE = 114
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
STRIDES = (8, 16, 32)
NMS_IOU = 0.45
MIN_SCORE = 0.1  # ByteTrack's low-score bound: boxes below it never reach its association


class Pipeline(Protocol):
    """A tracker under test: `start` a sequence, then `step` through its frames."""

    name: str

    def input_size(self, image: np.ndarray) -> tuple[int, int]:
        """The network input (W, H) this pipeline uses for `image`."""
        ...

    def start(self, frame_rate: float) -> None: ...

    def step(self, number: int, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(N, 7) rows frame,id,x,y,w,h,score of the frame, model seconds, association seconds."""
        ...


class CstrackPipeline:
    """`cstrack.Tracker`; model and association seconds are the deltas of its own `timing`."""

    def __init__(self, model: str, img_size: tuple[int, int] | None, backend: str = "onnx"):
        from cstrack import Tracker
        from cstrack.config import RuntimeConfig
        from cstrack.pipeline.tracker_config import TrackerConfig

        config = TrackerConfig().replace(img_size=img_size)
        self.tracker = Tracker(model, config, RuntimeConfig(backend=backend, device="cpu"))
        size = "default input" if img_size is None else f"{img_size[0]}x{img_size[1]}"
        self.name = f"cstrack {Path(model).name} {backend} {size}"

    def input_size(self, image: np.ndarray) -> tuple[int, int]:
        return self.tracker.detector.input_size(image.shape)

    def start(self, frame_rate: float) -> None:
        self.tracker.reset(frame_rate=frame_rate)

    def step(self, number: int, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        timing = self.tracker.timing
        model, association = timing.model, timing.association
        tracks = self.tracker.update(image)
        return results_rows(number, tracks), timing.model - model, timing.association - association


def bytetrack_preproc(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """ByteTrack's preproc: resize by r to fit `size` (W, H), place top-left, pad 114, RGB, /255,
    ImageNet mean/std; returns the 1x3xHxW float32 input and r."""
    width, height = size
    ratio = min(height / image.shape[0], width / image.shape[1])
    new_w, new_h = int(image.shape[1] * ratio), int(image.shape[0] * ratio)
    padded = np.full((height, width, 3), PAD_VALUE, dtype=np.uint8)
    padded[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    rgb = padded[:, :, ::-1].astype(np.float32) / 255.0
    return ((rgb - MEAN) / STD).transpose(2, 0, 1)[None].copy(), ratio


class ByteTrackDetector:
    """The ByteTrack YOLOX-Nano ONNX detector: xyxy boxes (original pixels) and scores after NMS."""

    def __init__(self, path: Path):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        tensor = self.session.get_inputs()[0]
        self.input_name = tensor.name
        height, width = tensor.shape[2:]
        self.input_size = (width, height)
        grids, strides = [], []
        for stride in STRIDES:
            ys, xs = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
            grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
            strides.append(np.full((len(grids[-1]), 1), stride))
        self.grid = np.concatenate(grids).astype(np.float32)
        self.stride = np.concatenate(strides).astype(np.float32)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from cstrack.models import nms

        x, ratio = bytetrack_preproc(image, self.input_size)
        out = self.session.run(None, {self.input_name: x})[0][0]
        scores = out[:, 4] * out[:, 5]
        keep = scores > MIN_SCORE
        out, scores = out[keep], scores[keep]
        centre = (out[:, :2] + self.grid[keep]) * self.stride[keep]
        half = np.exp(out[:, 2:4]) * self.stride[keep] / 2
        boxes = np.hstack([centre - half, centre + half]) / ratio
        kept = nms(torch.from_numpy(boxes), torch.from_numpy(scores), NMS_IOU).numpy()
        return boxes[kept], scores[kept]


class PeerPipeline:
    """ByteTrack's ONNX detector driven by roboflow `trackers`' ByteTrackTracker (default thresholds)."""

    name = "ByteTrack nano onnx + trackers.ByteTrack"

    def __init__(self, weights: Path):
        self.detector = ByteTrackDetector(weights)

    def input_size(self, image: np.ndarray) -> tuple[int, int]:
        return self.detector.input_size

    def start(self, frame_rate: float) -> None:
        from trackers import ByteTrackTracker

        self.tracker = ByteTrackTracker(frame_rate=frame_rate)

    def step(self, number: int, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        import supervision as sv

        start = time.perf_counter()
        boxes, scores = self.detector(image)
        middle = time.perf_counter()
        tracked = self.tracker.update(sv.Detections(xyxy=boxes, confidence=scores))
        end = time.perf_counter()
        confirmed = tracked[tracked.tracker_id >= 0]
        xyxy = confirmed.xyxy
        rows = results_table(
            np.full(len(confirmed), number),
            confirmed.tracker_id + 1,  # trackers counts from 0, MOTChallenge ids from 1
            np.hstack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]]),
            confirmed.confidence,
        )
        return rows, middle - start, end - middle


def cut(table: np.ndarray, frames: FrameRange, length: int) -> np.ndarray:
    """Rows of `frames` renumbered from 1, as `cstrack track --frames --eval` scores them."""
    last = length if frames.last is None else min(frames.last, length)
    kept = table[(table[:, FRAME] >= frames.first) & (table[:, FRAME] <= last)].copy()
    kept[:, FRAME] -= frames.first - 1
    return kept


def score(
    sequences: list[MotSequence], results: dict[str, np.ndarray], frames: FrameRange, benchmark: str
) -> dict:
    """Combined scores of `results` (SEQ -> rows) against the gt cut to `frames`, via `evaluate`."""
    with tempfile.TemporaryDirectory() as tmp:
        gt_root, results_dir = Path(tmp, "gt"), Path(tmp, "results")
        results_dir.mkdir()
        for sequence in sequences:
            length = sequence.info.seq_length
            last = length if frames.last is None else min(frames.last, length)
            folder = gt_root / sequence.name / "gt"
            folder.mkdir(parents=True)
            np.savetxt(folder / "gt.txt", cut(sequence.read_gt(), frames, length), fmt="%.10g", delimiter=",")
            info = dataclasses.replace(sequence.info, seq_length=last - frames.first + 1)
            write_seqinfo(gt_root / sequence.name / "seqinfo.ini", info)
            write_results(results_dir / f"{sequence.name}.txt", cut(results[sequence.name], frames, length))
        return evaluate(gt_root, results_dir, benchmark)["combined"]


def run_set(
    pipelines: list[Pipeline], sequences: list[MotSequence], frames: FrameRange, benchmark: str, label: str
) -> dict[str, dict]:
    """Track every sequence with every pipeline, frame by frame in turn; scores and median ms."""
    tables = {p.name: {} for p in pipelines}
    times = {p.name: ([], []) for p in pipelines}
    inputs: dict[str, set[tuple[int, int]]] = {p.name: set() for p in pipelines}
    for sequence in sequences:
        source = SequenceSource(sequence, frames)
        for pipeline in pipelines:
            pipeline.start(sequence.info.frame_rate)
        rows = {p.name: [] for p in pipelines}
        for number, image in tqdm(source, total=len(source), desc=f"{label} {sequence.name}", unit="frame"):
            if image is None:
                raise SystemExit(f"peers.py: cannot read frame {number} of {sequence.path}")
            for pipeline in pipelines:
                inputs[pipeline.name].add(tuple(pipeline.input_size(image)))
                table, model_s, association_s = pipeline.step(number, image)
                rows[pipeline.name].append(table)
                times[pipeline.name][0].append(1000 * model_s)
                times[pipeline.name][1].append(1000 * association_s)
        for name, parts in rows.items():
            tables[name][sequence.name] = np.vstack(parts)
    summary = {}
    for pipeline in pipelines:
        model_ms, association_ms = times[pipeline.name]
        scores = score(sequences, tables[pipeline.name], frames, benchmark)
        summary[pipeline.name] = {
            "input_sizes": sorted(inputs[pipeline.name]),
            **{metric: scores[metric] for metric in METRICS},
            "model_ms": statistics.median(model_ms),
            "association_ms": statistics.median(association_ms),
            "total_ms": statistics.median(m + a for m, a in zip(model_ms, association_ms, strict=True)),
            "frames": len(model_ms),
        }
    return summary


def warm_up(pipelines: list[Pipeline], sequence: MotSequence, frames: FrameRange) -> None:
    """Run every pipeline on the first frames of `frames`, untimed (`run_set` starts afresh)."""
    for pipeline in pipelines:
        pipeline.start(sequence.info.frame_rate)
    first = FrameRange(frames.first, frames.first + WARMUP_FRAMES - 1)
    for number, image in SequenceSource(sequence, first):
        for pipeline in pipelines:
            pipeline.step(number, image)


def format_table(results: dict[str, dict[str, dict]]) -> str:
    """One row per (sequence set, tracker): input size, scores (ratios in %), median ms per frame."""
    header = ["set", "tracker", "input", *METRICS, "model ms", "assoc ms", "total ms"]
    lines = []
    for label, rows in results.items():
        for name, row in rows.items():
            lines.append(
                [
                    label,
                    name,
                    ",".join("x".join(map(str, size)) for size in row["input_sizes"]),
                    *(f"{100 * row[m]:.1f}" if m in RATIOS else str(row[m]) for m in METRICS),
                    f"{row['model_ms']:.1f}",
                    f"{row['association_ms']:.2f}",
                    f"{row['total_ms']:.1f}",
                ]
            )
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines, strict=True)]
    left = 2  # set and tracker names are left-aligned, numbers right-aligned

    def line(cells: list[str]) -> str:
        return "  ".join(
            f"{c:<{w}}" if k < left else f"{c:>{w}}"
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), *map(line, lines)])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DATA, help=f"shared data folder (default {DATA})")
    parser.add_argument("--frames", default="601-795", help="PETS09-S2L1 frame range A-B (default 601-795)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"our model (default {DEFAULT_MODEL})")
    parser.add_argument(
        "--img-size",
        nargs="+",
        metavar="auto|W H",
        default=["auto", *map(str, COMMON_SIZE)],
        help="our input sizes, one row each: auto (fitted to the source) or W H pairs "
        "(default: auto 1088 608, the peer's size)",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=("torch", "onnx"),
        default=["onnx"],
        help="our inference backend(s): one row per backend (default: onnx, what auto runs on the CPU)",
    )
    parser.add_argument("--peer-weights", type=Path, default=PEER_WEIGHTS, help="ByteTrack ONNX detector")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--sequences", nargs="+", choices=list(SETS), default=list(SETS))
    return parser.parse_args(argv)


def parse_sizes(words: list[str]) -> list[tuple[int, int] | None] | None:
    """`auto` -> None, `W H` -> (W, H), in order; None when the words are not that."""
    sizes: list[tuple[int, int] | None] = []
    rest = list(words)
    while rest:
        if rest[0] == "auto":
            sizes.append(None)
            rest.pop(0)
            continue
        if len(rest) < 2 or not (rest[0].isdigit() and rest[1].isdigit()):
            return None
        sizes.append((int(rest[0]), int(rest[1])))
        del rest[:2]
    return sizes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folders = {label: args.data / SETS[label][0] for label in args.sequences}
    missing = [str(path) for path in [args.peer_weights, *folders.values()] if not path.exists()]
    if missing:
        print(f"peers.py: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    pets_frames = FrameRange.parse(args.frames)
    sizes = parse_sizes(args.img_size)
    if sizes is None:
        print("peers.py: --img-size takes auto or W H pairs", file=sys.stderr)
        return 2
    import onnxruntime
    import torch

    peer = PeerPipeline(args.peer_weights)
    pipelines: list[Pipeline] = [
        *(CstrackPipeline(args.model, size, backend) for size in sizes for backend in args.backends),
        peer,
    ]
    intra = peer.detector.session.get_session_options().intra_op_num_threads
    threads = {
        "torch": torch.get_num_threads(),
        "onnxruntime_intra_op": intra,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
    }
    log.info(
        "threads: torch %d (OMP_WAIT_POLICY %s), onnxruntime %s intra_op_num_threads=%d (0: its default, "
        "one per physical core)",
        threads["torch"],
        threads["OMP_WAIT_POLICY"],
        onnxruntime.__version__,
        intra,
    )
    first_label = args.sequences[0]
    first_frames = pets_frames if SETS[first_label][2] else ALL_FRAMES
    warm_up(pipelines, find_sequences(folders[first_label])[0], first_frames)
    results = {}
    for label, folder in folders.items():
        _, benchmark, ranged = SETS[label]
        frames = pets_frames if ranged else ALL_FRAMES
        log.info("%s: %s, %s rules, frames %s", label, folder, benchmark, args.frames if ranged else "all")
        results[label] = run_set(pipelines, find_sequences(folder), frames, benchmark, label)
    print(format_table(results))
    if args.json:
        report = {
            "frames": {label: args.frames if SETS[label][2] else "all" for label in results},
            "model": args.model,
            "threads": threads,
            "results": results,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

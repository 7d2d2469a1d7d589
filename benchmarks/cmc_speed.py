"""Camera-motion estimation cost: milliseconds per 1920x1080 frame for each `--cmc` method.

Reads the first frames of ../shared/data/MOT17-11-300 (a hand-held 1080p camera) when they are
there, else renders a moving-camera sequence at 1920x1080 with `cstrack synth`'s renderer; every
frame's detections are masked as `Tracker` masks them (here the ground-truth boxes). Prints the
median and 90th percentile over the frames, after a warm-up, with OpenCV's threads as set (all
cores by default; `--threads`).

    python benchmarks/cmc_speed.py [--frames 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from cstrack.config import CMC_METHODS
from cstrack.data import MotSequence
from cstrack.data.mot import FRAME, H, W, X, Y
from cstrack.data.synth.scene import SynthConfig
from cstrack.data.synth.write import generate_sequence
from cstrack.pipeline.camera_motion import CameraMotion

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "MOT17-11-300"
WARM_UP = 3


def frames_and_boxes(count: int, folder: Path) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """(where the frames come from, [(frame, boxes xyxy)]) for `count` 1080p frames."""
    if REAL.is_dir():
        sequence = MotSequence.open(REAL)
    else:
        config = SynthConfig(frames=count, width=1920, height=1080, fps=30, people=12, camera_motion="walk")
        sequence = MotSequence.open(generate_sequence(folder, config, seed=0))
    gt = sequence.read_gt()
    items = []
    for number, image in sequence.frames():
        if len(items) == count:
            break
        rows = gt[gt[:, FRAME] == number]
        items.append(
            (
                image,
                np.column_stack([rows[:, X], rows[:, Y], rows[:, X] + rows[:, W], rows[:, Y] + rows[:, H]]),
            )
        )
    return str(sequence.path), items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frames", type=int, default=60, help="frames timed per method (default: %(default)s)"
    )
    parser.add_argument("--threads", type=int, help="OpenCV threads (default: OpenCV's own choice)")
    args = parser.parse_args()
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        origin, items = frames_and_boxes(args.frames + WARM_UP, Path(folder))
    print(
        f"{len(items) - WARM_UP} frames of {origin}, {items[0][0].shape[1]}x{items[0][0].shape[0]}, OpenCV threads {cv2.getNumThreads()}"
    )
    print(f"{'method':<8}{'width':>7}{'median ms':>11}{'p90 ms':>9}")
    for method in CMC_METHODS[1:]:
        motion = CameraMotion(method)
        times = []
        for index, (image, boxes) in enumerate(items):
            start = time.perf_counter()
            motion(image, boxes)
            if index >= WARM_UP:
                times.append(1000 * (time.perf_counter() - start))
        print(f"{method:<8}{motion.width:>7}{np.median(times):>11.2f}{np.percentile(times, 90):>9.2f}")


if __name__ == "__main__":
    main()

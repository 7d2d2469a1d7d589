"""Association speed and accuracy of cstrack.tracking.JDETracker.

Prints milliseconds per `update()` at 10, 50, 200 and 1000 live tracks (synthetic crowds walking
across a 1920x1080 frame, with 512-d embeddings and without), then HOTA / MOTA / IDF1 on
detections simulated from the real MOT17 ground truth in ../shared/data/gt-only.

    python benchmarks/association.py [--frames 300] [--dim 512] [--skip-accuracy]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gt-only"


def crowd(num_tracks: int, num_frames: int, dim: int, seed: int = 0) -> list[tuple]:
    """Frames of a crowd: every person detected every frame with box noise and noisy embeddings."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform([0, 0], [1920, 1080], (num_tracks, 2))
    velocity = rng.normal(0, 2.0, (num_tracks, 2))
    height = rng.uniform(40, 120, num_tracks)
    size = np.column_stack([0.4 * height, height])
    identity = rng.normal(size=(num_tracks, dim)).astype(np.float32)
    identity /= np.linalg.norm(identity, axis=1, keepdims=True)
    frames = []
    for _ in range(num_frames):
        centre += velocity
        noisy = centre + rng.normal(0, 1.0, centre.shape)
        boxes = np.hstack([noisy - size / 2, noisy + size / 2])
        emb = identity + rng.normal(0, 0.03, identity.shape).astype(np.float32)
        frames.append((boxes, rng.uniform(0.6, 1.0, num_tracks), emb))
    return frames


def time_updates(frames: list[tuple], use_embeddings: bool, warmup: int = 20) -> tuple[float, float, int]:
    """Median and 90th percentile ms per update after warm-up, and the live tracks at the end."""
    from cstrack.tracking import DetectionResult, JDETracker

    tracker = JDETracker(frame_rate=30)
    times = []
    for k, (boxes, scores, emb) in enumerate(frames):
        start = time.perf_counter()
        tracker.update(DetectionResult(boxes, scores, emb if use_embeddings else None))
        if k >= warmup:
            times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)), 1000 * float(np.percentile(times, 90)), len(tracker)


def speed_table(num_frames: int, dim: int) -> None:
    print(f"\nms per update() (median / p90 over {num_frames} frames; {dim}-d embeddings or none)")
    print(f"{'live tracks':>12} {'with embeddings':>20} {'boxes only':>16}")
    for count in (10, 50, 200, 1000):
        frames = crowd(count, num_frames, dim)
        emb_median, emb_p90, live = time_updates(frames, True)
        iou_median, iou_p90, _ = time_updates(frames, False)
        print(f"{live:>12} {emb_median:>11.3f} / {emb_p90:<6.3f} {iou_median:>8.3f} / {iou_p90:<6.3f}")


def accuracy_table() -> None:
    from cstrack.data.gt_detections import simulate_detections
    from cstrack.data.mot import read_mot_file, read_seqinfo
    from cstrack.evaluation.metrics import evaluate_sequence
    from cstrack.tracking import JDETracker
    from cstrack.tracking.replay import replay_detections

    sequences = sorted(SHARED.glob("MOT17-*"))
    if not sequences:
        print(f"\n(no MOT17 ground truth at {SHARED}: accuracy table skipped)")
        return
    print("\nSimulated MOT17 detections (seed 0, SimulationConfig defaults), MOT17 rules")
    print(f"{'sequence':<10} {'mode':<11} {'HOTA':>6} {'MOTA':>6} {'IDF1':>6} {'IDSW':>6} {'ms/frame':>9}")
    for seq in sequences:
        info = read_seqinfo(seq / "seqinfo.ini")
        gt = read_mot_file(seq / "gt" / "gt.txt")
        detections = simulate_detections(gt, info.seq_length, (info.width, info.height), seed=0)
        for mode, use_embeddings in (("embeddings", True), ("boxes only", False)):
            start = time.perf_counter()
            results = replay_detections(detections, JDETracker(frame_rate=info.frame_rate), use_embeddings)
            ms = 1000 * (time.perf_counter() - start) / info.seq_length
            s = evaluate_sequence(gt, results, info.seq_length, "MOT17")
            print(
                f"{seq.name:<10} {mode:<11} {100 * s['HOTA']:>6.1f} {100 * s['MOTA']:>6.1f} "
                f"{100 * s['IDF1']:>6.1f} {s['IDSW']:>6d} {ms:>9.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=300, help="frames per speed run")
    parser.add_argument("--dim", type=int, default=512, help="embedding size (CSTrack: 512)")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    speed_table(args.frames, args.dim)
    if not args.skip_accuracy:
        accuracy_table()


if __name__ == "__main__":
    main()

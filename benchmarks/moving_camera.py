"""Camera-motion compensation and long re-identification on the validation sequences.

Runs the default model once over each validation set (cached in `--cache-dir` as the `.npz` of
`cstrack tune`), estimates the camera motion of every frame with each method (cached too), then
replays the association with and without compensation and with several re-identification
memories, and prints HOTA / MOTA / IDF1 / IDSW per set (the scores `cstrack track --eval` gives,
MOTChallenge rules as the ground truth asks):

    python benchmarks/moving_camera.py [--sets mot17-11-300 mot17-mini-moving pets-1-600]

Validation data only: MOT17-11-300 (hand-held camera), MOT17-mini's moving sequences (05, 10,
11, 13) and PETS09-S2L1 frames 1-600 (static camera; frames 601-795 are held out). OMC's re-check
candidates are those of the reference run (no CMC, no long re-id), as in `cstrack tune`: that
row is exact, the others approximate the re-check; confirm a choice with `cstrack track --eval`.
The warps mask the detections at the default threshold.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cstrack.config import CMC_METHODS, DEFAULT_MODEL, AssociationConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: Each set: its sequence folders (relative to DATA) and frame range.
SETS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "mot17-11-300": (("MOT17-11-300",), None),
    "mot17-mini-moving": (tuple(f"MOT17-mini/MOT17-{n}" for n in ("05", "10", "11", "13")), None),
    "pets-1-600": (("PETS09-S2L1",), "1-600"),
}
SHOWN = ("HOTA", "MOTA", "IDF1", "IDSW")


def detection_cache(name: str, cache_dir: Path) -> Any:
    """The set's detections with the default model and thresholds, read from or written to the cache."""
    from cstrack.backends.choice import build_detector
    from cstrack.config import RuntimeConfig
    from cstrack.data.sources import ALL_FRAMES, FrameRange, open_sources
    from cstrack.pipeline.tracker_config import TrackerConfig
    from cstrack.pipeline.tuning import cache_detections, load_cache, save_cache

    folders, frames_text = SETS[name]
    frames = FrameRange.parse(frames_text) if frames_text else ALL_FRAMES
    sources = [source for folder in folders for source in open_sources(DATA / folder, frames)]
    base = TrackerConfig().replace(cmc="none", reid_seconds=0.0)  # the reference run: neither
    key = {
        "sequences": [str(Path(source.origin).resolve()) for source in sources],
        "frames": str(frames),
        "model": str(DEFAULT_MODEL),
        "backend": RuntimeConfig.backend,
        "conf": base.detector.conf,
        "nms_iou": base.detector.nms_iou,
    }
    recheck_key = {"recheck_threshold": base.recheck.recheck_threshold}
    path = cache_dir / f"{name}.npz"
    if path.is_file():
        cache = load_cache(path, sources, key, recheck_key)
        if cache is not None:
            return sources, cache
    detector = build_detector(DEFAULT_MODEL, base.detector, base.recheck)
    started = time.perf_counter()
    cache = cache_detections(sources, detector, base, True, True, key, recheck_key)
    print(f"{name}: detected in {time.perf_counter() - started:.0f} s")
    save_cache(cache, path)
    return sources, cache


def variants(reid_seconds: list[float], reid_thresholds: list[float]) -> list[tuple[str, dict[str, Any]]]:
    """(label, TrackerConfig changes): each CMC method without long re-id, then long re-id with
    no CMC and with the default one."""
    rows: list[tuple[str, dict[str, Any]]] = [
        (f"cmc {method}, reid off", {"cmc": method, "reid_seconds": 0.0}) for method in CMC_METHODS
    ]
    for method in ("none", AssociationConfig.cmc):
        for seconds in reid_seconds:
            for thresh in reid_thresholds:
                changes = {"cmc": method, "reid_seconds": seconds, "reid_match_thresh": thresh}
                rows.append((f"cmc {method}, reid {seconds:g} s < {thresh:g}", changes))
    return rows


def main() -> None:
    from cstrack.pipeline.tracker_config import TrackerConfig
    from cstrack.pipeline.tuning import add_camera_motion, save_cache, score_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument("--cache-dir", type=Path, default=Path("runs/moving_camera"))
    parser.add_argument("--reid-seconds", type=float, nargs="*", default=[10.0, 60.0])
    parser.add_argument("--reid-thresholds", type=float, nargs="*", default=[0.1, 0.15, 0.2])
    parser.add_argument(
        "--fresh-cmc", action="store_true", help="estimate the camera motion again (after changing it)"
    )
    args = parser.parse_args()
    for name in args.sets:
        sources, cache = detection_cache(name, args.cache_dir)
        if args.fresh_cmc:
            for sequence in cache.sequences:
                sequence.warps.clear()
        missing = [m for m in CMC_METHODS[1:] if any(m not in sequence.warps for sequence in cache.sequences)]
        if missing:
            add_camera_motion(cache, sources, missing)
            save_cache(cache, args.cache_dir / f"{name}.npz")
        frames = sum(len(sequence.results) for sequence in cache.sequences)
        print(f"\n{name}: {frames} frames of {len(cache.sequences)} sequence(s)")
        print(f"{'configuration':<34}" + "".join(f"{metric:>8}" for metric in SHOWN))
        for label, changes in variants(args.reid_seconds, args.reid_thresholds):
            scores = score_config(cache, TrackerConfig().replace(**changes))["combined"]
            cells = "".join(f"{scores[m]:>8d}" if m == "IDSW" else f"{100 * scores[m]:>8.1f}" for m in SHOWN)
            print(f"{label:<34}{cells}", flush=True)


if __name__ == "__main__":
    main()

"""Track whole sources and write what users look at: MOT files, JSON lines, rendered videos, scores.

`track(source, tracker, ...)` is the engine of `cstrack track`: one pass per sequence, a
progress bar with frames/s, unreadable frames skipped and counted, Ctrl-C finishing the files for
what was tracked so far, and every file written under a temporary name and renamed when done.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from cstrack.data.atomic import atomic_write, temporary_path
from cstrack.data.mot import FRAME, is_mot16_gt, write_results
from cstrack.data.sources import ALL_FRAMES, FrameRange, FrameSource, open_sources
from cstrack.errors import InputError
from cstrack.tracking.online import DEFAULT_MODEL, Tracker
from cstrack.tracking.render import TrackRenderer
from cstrack.tracking.track import Track, results_rows

FORMATS = ("mot", "json")


@dataclass
class SequenceRun:
    """What tracking one sequence produced."""

    name: str
    frames: dict[int, list[Track]] = field(default_factory=dict)
    skipped_frames: list[int] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    scores: dict | None = None
    interrupted: bool = False

    def results_table(self) -> np.ndarray:
        """(M, 7) frame,id,x,y,w,h,score of every output track."""
        rows = [results_rows(frame, tracks) for frame, tracks in self.frames.items()]
        return np.vstack(rows) if rows else np.zeros((0, 7))


class _VideoOutput:
    """An mp4 written under a temporary name and renamed on close."""

    def __init__(self, path: Path, frame_rate: float, size: tuple[int, int]):
        self.path = path
        self.temporary = temporary_path(path, ".tmp.mp4")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = cv2.VideoWriter(str(self.temporary), cv2.VideoWriter_fourcc(*"mp4v"), frame_rate, size)
        if not self.writer.isOpened():
            raise InputError(path, "cannot open a video writer here")
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        self.writer.write(image)
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        self.writer.release()
        if keep and self.frames:
            os.replace(self.temporary, self.path)
        else:
            self.temporary.unlink(missing_ok=True)


def guess_benchmark(gt: np.ndarray) -> str:
    """MOT17 rules for gt with class ids, MOT15 (ground truth as is) for MOT15-style gt."""
    return "MOT17" if is_mot16_gt(gt) else "MOT15"


def evaluate_run(run: SequenceRun, source: FrameSource, frames: FrameRange) -> dict:
    """Scores of a sequence run against its gt, restricted to the tracked frame range."""
    from cstrack.evaluation import evaluate_sequence

    sequence = source.sequence
    gt = sequence.read_gt()
    last = sequence.info.seq_length if frames.last is None else min(frames.last, sequence.info.seq_length)
    offset = frames.first - 1
    gt = gt[(gt[:, FRAME] >= frames.first) & (gt[:, FRAME] <= last)].copy()
    results = run.results_table()
    gt[:, FRAME] -= offset
    results[:, FRAME] -= offset
    benchmark = guess_benchmark(gt)
    scores = evaluate_sequence(gt, results, last - offset, benchmark, gt_path=sequence.gt_path)
    return {"benchmark": benchmark, "frames": [frames.first, last], **scores}


def track(
    source: str | int | os.PathLike | list[FrameSource],
    tracker: Tracker | str | os.PathLike = DEFAULT_MODEL,
    output: str | os.PathLike | None = None,
    formats: tuple[str, ...] = ("mot",),
    save_video: bool = False,
    trails: int = 30,
    frames: FrameRange = ALL_FRAMES,
    evaluate: bool = False,
    min_area: float | None = None,
    max_aspect: float | None = None,
    progress: bool = True,
) -> dict[str, SequenceRun]:
    """Track every sequence of `source`; returns each sequence's per-frame tracks and files.

    With `output`, writes `NAME.txt` (MOTChallenge), `NAME.jsonl` (one JSON object per frame),
    `NAME.mp4` (with `save_video`) and `NAME.scores.json` (with `evaluate`, where gt exists).
    `min_area` / `max_aspect` are the MOT-file output filter of the JDE-family trackers.
    `tracker` is a `Tracker` or what `Tracker(...)` takes as its model (a name or weights file).
    `source` may also be the list `open_sources` returned (the frame range is then theirs).
    """
    sources = source if isinstance(source, list) else open_sources(source, frames)
    if not isinstance(tracker, Tracker):
        tracker = Tracker(tracker)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise InputError(None, f"unknown output formats {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    out_dir = None if output is None else Path(output)
    runs: dict[str, SequenceRun] = {}
    for src in sources:
        run = _track_source(src, tracker, out_dir, formats, save_video, trails, progress)
        runs[src.name] = run
        if out_dir is not None and "mot" in formats:
            run.files["mot"] = out_dir / f"{src.name}.txt"
            write_results(run.files["mot"], run.results_table(), min_area=min_area, max_aspect=max_aspect)
        if evaluate and src.sequence is not None and src.sequence.gt_path.is_file():
            run.scores = evaluate_run(run, src, frames)
            if out_dir is not None:
                run.files["scores"] = out_dir / f"{src.name}.scores.json"
                with atomic_write(run.files["scores"]) as stream:
                    json.dump(run.scores, stream, indent=2)
        if run.skipped_frames:
            shown = ", ".join(map(str, run.skipped_frames[:10]))
            more = " ..." if len(run.skipped_frames) > 10 else ""
            print(
                f"cstrack: {src.name}: skipped {len(run.skipped_frames)} unreadable frames ({shown}{more})",
                file=sys.stderr,
            )
        if run.interrupted:
            break
    return runs


def _track_source(
    source: FrameSource,
    tracker: Tracker,
    out_dir: Path | None,
    formats: tuple[str, ...],
    save_video: bool,
    trails: int,
    progress: bool,
) -> SequenceRun:
    run = SequenceRun(source.name)
    tracker.reset(frame_rate=source.frame_rate)
    renderer = TrackRenderer(trails)
    video: _VideoOutput | None = None
    json_path = None if out_dir is None or "json" not in formats else out_dir / f"{source.name}.jsonl"
    bar = tqdm(total=len(source) or None, desc=source.name, unit="frame", disable=not progress, leave=True)
    started = time.perf_counter()
    try:
        with nullcontext() if json_path is None else atomic_write(json_path) as json_lines:
            try:
                for number, image in source:
                    if image is None:
                        run.skipped_frames.append(number)
                        bar.update(1)
                        continue
                    tracks = tracker.update(image)
                    run.frames[number] = tracks
                    if json_lines is not None:
                        json_lines.write(json.dumps(_frame_json(number, tracks)) + "\n")
                    if save_video and out_dir is not None:
                        if video is None:
                            height, width = image.shape[:2]
                            video = _VideoOutput(
                                out_dir / f"{source.name}.mp4", source.frame_rate, (width, height)
                            )
                        fps = len(run.frames) / max(time.perf_counter() - started, 1e-9)
                        video.write(renderer.draw(image, tracks, fps))
                    bar.update(1)
                    bar.set_postfix(tracks=len(tracks), refresh=False)
            except KeyboardInterrupt:
                run.interrupted = True
                print(f"\ncstrack: interrupted; writing what was tracked of {source.name}", file=sys.stderr)
        if json_path is not None:
            run.files["json"] = json_path
    finally:
        bar.close()
        if video is not None:
            video.close(keep=True)
            run.files["video"] = video.path
    return run


def _frame_json(frame: int, tracks: list[Track]) -> dict:
    return {
        "frame": frame,
        "tracks": [
            {
                "id": t.track_id,
                "box_xyxy": [round(float(v), 2) for v in t.box_xyxy],
                "score": round(t.score, 4),
            }
            for t in tracks
        ],
    }

"""Track whole sources and write what users look at: MOT files, JSON lines, rendered videos, scores.

`track(source, tracker, ...)` is the engine of `cstrack track`: one pass per sequence, a
progress bar with frames/s, unreadable frames skipped and counted. Rows are streamed: each frame's
MOT rows and JSON line go to a temporary file in one write as soon as the frame is tracked, so a
webcam can run for days in constant memory and a kill keeps every frame tracked; the temporary
file becomes `NAME.txt` by a rename at the end. Ctrl-C (or an error) keeps an earlier complete
result and renames what was tracked to `NAME.partial.txt`; the temporary files a killed run left
are recovered the same way by the next run into the folder.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
from tqdm import tqdm

from cstrack.atomic import atomic_write, temporary_path
from cstrack.data.mot import FRAME, ID, filter_results, format_results, is_mot16_gt
from cstrack.data.sources import ALL_FRAMES, FrameRange, FrameSource, open_sources
from cstrack.errors import InputError, check_options
from cstrack.pipeline.end_to_end import DEFAULT_MODEL, Tracker
from cstrack.pipeline.render import TrackRenderer
from cstrack.tracking.track_state import Track, results_rows

FORMATS = ("mot", "json")
SUFFIXES = {"mot": ".txt", "json": ".jsonl"}
PARTIAL = ".partial"
# Temporary names of `temporary_path` for the files `track` writes: .NAME.txt.PID.1a2b3c4d.tmp
_TEMPORARY = re.compile(
    r"^\.(?P<target>.+\.(?:txt|jsonl|mp4|scores\.json))\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp(?:\.mp4)?$"
)
_TAIL = 1 << 16

logger = logging.getLogger(__name__)


@dataclass
class SequenceRun:
    """What tracking one sequence produced.

    `frames` (the tracks of every frame) is filled only when tracking without an output folder,
    where memory is the only place the results go; with one, rows are streamed to the files and
    nothing per frame is kept (a webcam may run for days).
    """

    name: str
    frames: dict[int, list[Track]] = field(default_factory=dict)
    in_memory: bool = True
    tracked: int = 0
    skipped_frames: list[int] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    scores: dict | None = None
    interrupted: bool = False

    def results_table(self) -> np.ndarray:
        """(M, 7) frame,id,x,y,w,h,score of every output track, when tracked without an output folder."""
        if not self.in_memory:
            raise ValueError(f"the tracks of {self.name} went to files, not memory: read {self.files}")
        rows = [results_rows(frame, tracks) for frame, tracks in self.frames.items()]
        return np.vstack(rows) if rows else np.zeros((0, 7))


def partial_path(path: Path) -> Path:
    """Where the frames of an unfinished run go: NAME.partial.txt beside NAME.txt."""
    return path.with_name(f"{path.stem}{PARTIAL}{path.suffix}")


class _StreamedFile:
    """Text appended under a temporary name, one `os.write` per frame so a kill keeps whole
    frames; renamed onto the target (or its partial name) when done."""

    def __init__(self, path: Path):
        self.path = path
        self.temporary = temporary_path(path)
        try:
            self._descriptor = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as error:
            raise InputError(path, f"cannot write: {error.strerror or error}") from error
        self.frames = 0

    def write(self, text: str) -> None:
        """Append one frame's text; it reaches the OS (not only a buffer) before this returns."""
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(self._descriptor, data) :]
        self.frames += 1

    def close(self, complete: bool) -> Path | None:
        """Rename to the target when `complete`, else to its partial name; None when nothing to keep."""
        os.fsync(self._descriptor)
        os.close(self._descriptor)
        if not complete and not self.frames:
            self.temporary.unlink(missing_ok=True)
            return None
        target = self.path if complete else partial_path(self.path)
        os.replace(self.temporary, target)
        return target


class _VideoOutput:
    """An mp4 written under a temporary name and renamed on close."""

    def __init__(self, path: Path, frame_rate: float, size: tuple[int, int]):
        self.path = path
        self.temporary = temporary_path(path, ".tmp.mp4")
        self.writer = cv2.VideoWriter(str(self.temporary), cv2.VideoWriter_fourcc(*"mp4v"), frame_rate, size)
        if not self.writer.isOpened():
            raise InputError(path, "cannot open a video writer here")
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        self.writer.write(image)
        self.frames += 1

    def close(self, complete: bool) -> Path | None:
        """Rename to the target when `complete`, else to its partial name; None when nothing to keep."""
        self.writer.release()
        if not self.frames:
            self.temporary.unlink(missing_ok=True)
            return None
        target = self.path if complete else partial_path(self.path)
        os.replace(self.temporary, target)
        return target


def guess_benchmark(gt: np.ndarray) -> str:
    """MOT17 rules for gt with class ids, MOT15 (ground truth as is) for MOT15-style gt."""
    return "MOT17" if is_mot16_gt(gt) else "MOT15"


def evaluate_run(results: np.ndarray, source: FrameSource) -> dict:
    """Scores of a sequence's (M, 7) results against its gt, restricted to the tracked frame range."""
    from cstrack.evaluation import evaluate_sequence

    sequence, frames = source.sequence, source.frames
    gt = sequence.read_gt()
    last = sequence.info.seq_length if frames.last is None else min(frames.last, sequence.info.seq_length)
    offset = frames.first - 1
    gt = gt[(gt[:, FRAME] >= frames.first) & (gt[:, FRAME] <= last)].copy()
    results = results.copy()
    gt[:, FRAME] -= offset
    results[:, FRAME] -= offset
    benchmark = guess_benchmark(gt)
    scores = evaluate_sequence(gt, results, last - offset, benchmark, gt_path=sequence.gt_path)
    return {"benchmark": benchmark, "frames": [frames.first, last], **scores}


def check_evaluable(sources: list[FrameSource]) -> None:
    """Refuse --eval before tracking when a source has no (readable) ground truth."""
    for source in sources:
        if source.sequence is None:
            raise InputError(source.origin, "cannot evaluate: not a MOTChallenge sequence with gt/gt.txt")
        if not source.sequence.gt_path.is_file():
            raise InputError(source.sequence.gt_path, "cannot evaluate: this sequence has no ground truth")
        source.sequence.read_gt()  # a malformed gt fails now, not after the whole sequence


def check_output_folder(folder: str | os.PathLike) -> None:
    """Refuse an output folder that is a file, lies under one, or cannot be written, before any frame.

    Nothing is created: the nearest existing folder on the path is what must be writable.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        problem = "is a file, not a folder" if existing == folder else f"{existing} is a file, not a folder"
        raise InputError(folder, f"cannot write results here: {problem}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(folder, f"cannot write results here: {existing} is not writable")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _complete_lines_end(path: Path) -> int:
    """Size of `path` cut after its last newline, read from the end (the file may be large)."""
    with path.open("rb") as stream:
        end = stream.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - _TAIL)
            stream.seek(start)
            newline = stream.read(end - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


def recover_stale_temporaries(folder: Path) -> list[Path]:
    """Deal with the temporary files that killed runs (dead PIDs) left in `folder`.

    A MOT or JSON lines temporary holds whole frames up to the kill: it is cut after its last
    complete line and renamed to NAME.partial.txt / .jsonl, unless a newer partial file is there.
    Videos without their index and half-written scores cannot be read, so they are removed.
    Returns the partial files recovered.
    """
    recovered = []
    for path in folder.iterdir():
        match = _TEMPORARY.match(path.name)
        if match is None or _pid_alive(int(match["pid"])):
            continue
        target = folder / match["target"]
        partial = partial_path(target)
        try:
            readable = path.suffix == ".tmp" and target.suffix in (".txt", ".jsonl")
            end = _complete_lines_end(path) if readable else 0
            if end == 0 or (partial.exists() and partial.stat().st_mtime >= path.stat().st_mtime):
                path.unlink()
                continue
            os.truncate(path, end)
            os.replace(path, partial)
        except OSError:
            continue  # another run is dealing with it, or it is not ours to touch
        recovered.append(partial)
        logger.warning(
            "cstrack: recovered the frames that killed run %s had tracked for %s into %s",
            match["pid"],
            target.name,
            partial,
        )
    return recovered


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
    """Track every sequence of `source`; returns each sequence's files (or, without `output`, tracks).

    With `output`, writes `NAME.txt` (MOTChallenge), `NAME.jsonl` (one JSON object per frame),
    `NAME.mp4` (with `save_video`) and `NAME.scores.json` (with `evaluate`, which needs gt).
    `min_area` / `max_aspect` are the MOT-file output filter of the JDE-family trackers; the
    scores are those of the filtered rows, as the MOT file would be scored.
    `tracker` is a `Tracker` or what `Tracker(...)` takes as its model (a name or weights file).
    `source` may also be the list `open_sources` returned (the frame range is then theirs).
    Options, the output folder and the ground truth are checked before the first frame.
    """
    if not formats:
        raise InputError(None, f"no output format given; choose from {', '.join(FORMATS)}")
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise InputError(None, f"unknown output formats {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    check_options(
        "track",
        SimpleNamespace(trails=trails, min_area=min_area, max_aspect=max_aspect),
        {
            "trails": (isinstance(trails, int) and trails >= 0, "an integer >= 0"),
            "min_area": (min_area is None or (math.isfinite(min_area) and min_area >= 0), "finite and >= 0"),
            "max_aspect": (
                max_aspect is None or (math.isfinite(max_aspect) and max_aspect > 0),
                "finite and > 0",
            ),
        },
    )
    sources = source if isinstance(source, list) else open_sources(source, frames)
    if evaluate:
        check_evaluable(sources)
    out_dir = None if output is None else Path(output)
    if out_dir is not None:
        check_output_folder(out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(
                out_dir, f"cannot create the output folder: {error.strerror or error}"
            ) from error
        recover_stale_temporaries(out_dir)
    if not isinstance(tracker, Tracker):
        tracker = Tracker(tracker)
    runs: dict[str, SequenceRun] = {}
    for src in sources:
        writer = _SequenceWriter(src, out_dir, formats, save_video, trails, evaluate, min_area, max_aspect)
        run = _track_source(src, tracker, writer, progress)
        runs[src.name] = run
        if evaluate and not run.interrupted:
            run.scores = evaluate_run(writer.table(), src)
            if out_dir is not None:
                run.files["scores"] = out_dir / f"{src.name}.scores.json"
                with atomic_write(run.files["scores"]) as stream:
                    json.dump(run.scores, stream, indent=2)
        if run.skipped_frames:
            shown = ", ".join(map(str, run.skipped_frames[:10]))
            more = " ..." if len(run.skipped_frames) > 10 else ""
            logger.warning(
                "cstrack: %s: skipped %d unreadable frames (%s%s)",
                src.name,
                len(run.skipped_frames),
                shown,
                more,
            )
        if run.interrupted:
            break
    return runs


class _SequenceWriter:
    """Where one sequence's tracked frames go: streamed files, and only what is needed in memory."""

    def __init__(
        self,
        source: FrameSource,
        out_dir: Path | None,
        formats: tuple[str, ...],
        save_video: bool,
        trails: int,
        evaluate: bool,
        min_area: float | None,
        max_aspect: float | None,
    ):
        self.source = source
        self.out_dir = out_dir
        self.min_area, self.max_aspect = min_area, max_aspect
        self.streams: dict[str, _StreamedFile] = {}
        try:
            for kind in formats if out_dir is not None else ():
                self.streams[kind] = _StreamedFile(out_dir / f"{source.name}{SUFFIXES[kind]}")
        except InputError:
            for stream in self.streams.values():
                stream.close(complete=False)
            raise
        self.keep_tracks = out_dir is None
        # --eval needs the (filtered) rows; they are bounded by the gt sequence's length.
        self.rows: list[np.ndarray] | None = [] if evaluate else None
        self.renderer = TrackRenderer(trails) if save_video and out_dir is not None else None
        self.video: _VideoOutput | None = None

    def add(self, run: SequenceRun, number: int, image: np.ndarray, tracks: list[Track], fps: float) -> None:
        if self.keep_tracks:
            run.frames[number] = tracks
        rows = filter_results(results_rows(number, tracks), self.min_area, self.max_aspect)
        rows = rows[np.argsort(rows[:, ID], kind="stable")]
        if self.rows is not None:
            self.rows.append(rows)
        if "mot" in self.streams:
            self.streams["mot"].write(format_results(rows))
        if "json" in self.streams:
            self.streams["json"].write(json.dumps(_frame_json(number, tracks)) + "\n")
        if self.renderer is not None:
            if self.video is None:
                height, width = image.shape[:2]
                path = self.out_dir / f"{self.source.name}.mp4"
                self.video = _VideoOutput(path, self.source.frame_rate, (width, height))
            self.video.write(self.renderer.draw(image, tracks, fps))

    def table(self) -> np.ndarray:
        """The (M, 7) rows kept for --eval."""
        return np.vstack(self.rows) if self.rows else np.zeros((0, 7))

    def describe_partial(self, run: SequenceRun) -> str:
        """What an interrupted run kept where, and that earlier complete results are untouched."""
        done = f"{run.tracked} frames of {self.source.name} tracked"
        if self.out_dir is None:
            return done
        kept = ", ".join(path.name for path in run.files.values())
        earlier = [output.path.name for output in self.streams.values() if output.path.exists()]
        if self.video is not None and self.video.path.exists():
            earlier.append(self.video.path.name)
        message = f"{done}, written to {kept}" if kept else f"{done}, nothing written"
        return message + (f"; the earlier complete {', '.join(earlier)} kept as it was" if earlier else "")

    def close(self, run: SequenceRun, complete: bool) -> None:
        """Rename every file to its final (or partial) name, recording those kept in `run.files`."""
        outputs: dict[str, _StreamedFile | _VideoOutput] = dict(self.streams)
        if self.video is not None:
            outputs["video"] = self.video
        for kind, output in outputs.items():
            kept = output.close(complete)
            if kept is not None:
                run.files[kind] = kept


def _track_source(
    source: FrameSource, tracker: Tracker, writer: _SequenceWriter, progress: bool
) -> SequenceRun:
    run = SequenceRun(source.name, in_memory=writer.keep_tracks)
    tracker.reset(frame_rate=source.frame_rate)
    bar = tqdm(total=len(source) or None, desc=source.name, unit="frame", disable=not progress, leave=True)
    started = time.perf_counter()
    complete = False
    try:
        for number, image in source:
            if image is None:
                run.skipped_frames.append(number)
                bar.update(1)
                continue
            tracks = tracker.update(image)
            run.tracked += 1
            writer.add(run, number, image, tracks, run.tracked / max(time.perf_counter() - started, 1e-9))
            bar.update(1)
            bar.set_postfix(tracks=len(tracks), refresh=False)
        complete = True
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        bar.close()
        writer.close(run, complete)
    if run.interrupted:
        logger.warning("cstrack: interrupted: %s", writer.describe_partial(run))
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

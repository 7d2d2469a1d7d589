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

from cstrack.atomic import atomic_write, check_not_input, check_writable, temporary_path
from cstrack.data.mot import ID, filter_results, format_results, mot_class_ids
from cstrack.data.sources import (
    ALL_FRAMES,
    RECONNECT_SECONDS,
    FrameRange,
    FrameSource,
    check_unique_names,
    open_sources,
)
from cstrack.errors import InputError, check_options
from cstrack.models.classes import DEFAULT_CLASS_NAMES
from cstrack.pipeline.end_to_end import DEFAULT_MODEL, Tracker
from cstrack.pipeline.observers import FrameObserver
from cstrack.pipeline.render import TrackRenderer
from cstrack.pipeline.tracker_config import CONFIG_FILE
from cstrack.pipeline.video import open_video_writer
from cstrack.pipeline.viewer import FrameViewer
from cstrack.tracking.track_state import Track, results_rows

FORMATS = ("mot", "json")
SUFFIXES = {"mot": ".txt", "json": ".jsonl"}
PARTIAL = ".partial"
# Temporary names of `temporary_path` for the files `track` writes: .NAME.txt.PID.1a2b3c4d.tmp
_TEMPORARY = re.compile(
    r"^\.(?P<target>.+\.(?:txt|jsonl|yaml|csv|mp4|scores\.json))\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp(?:\.mp4)?$"
)
_TAIL = 1 << 16
MIN_VIDEO_SIDE = 2  # the smallest frame side that mp4v and H.264 (4:2:0) encode
CONFIG_HEADER = "The tracker configuration of this run (cstrack track --tracker-config reads it back)."

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
    #: The viewer's q/Esc ended the run here; the outputs hold the frames up to it, complete.
    stopped: bool = False
    #: Frames a live source dropped to keep up with the camera (latest-frame mode).
    dropped_frames: int = 0
    #: Times a live source was lost and reconnection tried.
    outages: int = 0
    #: What the rendered video holds: h264 (browsers play it) or mp4v; None without a video.
    video_codec: str | None = None

    def results_table(self) -> np.ndarray:
        """(M, 7) frame,id,x,y,w,h,score of every output track, when tracked without an output folder."""
        if not self.in_memory:
            raise ValueError(f"the tracks of {self.name} went to files, not memory: read {self.files}")
        rows = [results_rows(frame, tracks) for frame, tracks in self.frames.items()]
        return np.vstack(rows) if rows else np.zeros((0, 7))


def result_paths(
    out_dir: Path, name: str, formats: tuple[str, ...], save_video: bool = False, evaluate: bool = False
) -> list[Path]:
    """The files a complete run of sequence `name` leaves in `out_dir` with these options."""
    suffixes = [SUFFIXES[kind] for kind in formats]
    suffixes += [".mp4"] * save_video + [".scores.json"] * evaluate
    return [out_dir / f"{name}{suffix}" for suffix in suffixes]


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

    def discard(self) -> None:
        """Remove the temporary file: the target and its partial name stay as they were."""
        os.close(self._descriptor)
        self.temporary.unlink(missing_ok=True)

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
    """An mp4 (H.264 with PyAV, else mp4v: `open_video_writer`) written under a temporary name and
    renamed on close."""

    def __init__(self, path: Path, frame_rate: float, size: tuple[int, int]):
        self.path = path
        if min(size) < MIN_VIDEO_SIDE:
            raise InputError(
                path,
                f"cannot write a video of {size[0]} x {size[1]} frames: the encoders need at least "
                f"{MIN_VIDEO_SIDE} x {MIN_VIDEO_SIDE} pixels (track without --save-video)",
            )
        self.temporary = temporary_path(path, ".tmp.mp4")
        self.size = size
        self.writer = open_video_writer(self.temporary, frame_rate, size)
        self.codec = self.writer.codec
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


def evaluate_run(
    results: np.ndarray,
    source: FrameSource,
    benchmark: str | None = None,
    frames: FrameRange | None = None,
    class_names: tuple[str, ...] = DEFAULT_CLASS_NAMES,
) -> dict:
    """Scores of a sequence's (M, 7) results against its gt, restricted to the tracked frame range
    (`frames`, default the source's) as `cstrack eval --frames` restricts them (`frame_window`).

    `benchmark` names the rules; None guesses them from the gt's columns (`guess_benchmark`).
    A multi-class model's (M, 8) results are scored per class (`evaluate_per_class`):
    {"classes": {name: scores}} in place of the scores.
    """
    from cstrack.evaluation import SequenceTables, evaluate_sequence, frame_window, guess_benchmark

    sequence = source.sequence
    frames = source.frames if frames is None else frames
    tables = SequenceTables(sequence.read_gt(), results, sequence.info.seq_length)
    gt, results, last = frame_window(tables, frames, gt_path=sequence.gt_path)
    if len(class_names) > 1:
        from cstrack.evaluation import evaluate_per_class

        ids = dict(zip(class_names, mot_class_ids(class_names).tolist()))
        per_class = evaluate_per_class(gt, results, last, ids)
        return {"benchmark": "per class, MOT15 rules", "frames": [frames.first, last], "classes": per_class}
    benchmark = benchmark or guess_benchmark({sequence.name: gt})
    scores = evaluate_sequence(gt, results, last, benchmark, gt_path=sequence.gt_path)
    return {"benchmark": benchmark, "frames": [frames.first, last], **scores}


def check_track_options(
    formats: tuple[str, ...] = ("mot",),
    trails: int = 30,
    min_area: float | None = None,
    max_aspect: float | None = None,
) -> None:
    """Refuse output formats and numbers that `track` cannot use, before any source is opened."""
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


def check_evaluable(sources: list[FrameSource], benchmark: str | None = None) -> None:
    """Refuse --eval before tracking when a source has no (readable) ground truth, or, with a
    `benchmark`, ground truth its rules cannot score (MOT15-style gt under MOT17 rules)."""
    if benchmark is not None:
        from cstrack.evaluation import BENCHMARKS

        if benchmark not in BENCHMARKS:
            raise InputError(None, f"unknown benchmark {benchmark!r}; choose from {', '.join(BENCHMARKS)}")
    for source in sources:
        if source.sequence is None:
            raise InputError(source.origin, "cannot evaluate: not a MOTChallenge sequence with gt/gt.txt")
        if not source.sequence.gt_path.is_file():
            raise InputError(source.sequence.gt_path, "cannot evaluate: this sequence has no ground truth")
        gt = source.sequence.read_gt()  # a malformed gt fails now, not after the whole sequence
        if benchmark is not None:
            from cstrack.evaluation import preprocess_sequence

            nothing = np.zeros((0, 7))
            length = source.sequence.info.seq_length
            preprocess_sequence(gt, nothing, length, benchmark, gt_path=source.sequence.gt_path)


def check_output_folder(folder: str | os.PathLike, sources: list[FrameSource] | None = None) -> None:
    """Refuse an output folder that is a file, lies under one, or cannot be written, before any frame;
    with the `sources` to track into it, also outputs that would merge or overwrite (`check_output_names`).

    Nothing is created: the nearest existing folder on the path is what must be writable.
    """
    if sources is not None:
        check_output_names(sources, Path(folder))
    check_writable(folder)


def check_output_names(sources: list[FrameSource], out_dir: Path) -> None:
    """Refuse, before any frame, outputs that would merge or overwrite: two sequences of one name
    (`D/train/SEQ` and `D/test/SEQ` would both write `SEQ.txt`), or an output file that is an
    input (`cstrack track v.mp4 --output . --save-video` would write `v.mp4` over the video)."""
    check_unique_names(sources)
    inputs = [Path(source.origin) for source in sources]
    for source in sources:
        for suffix in (*SUFFIXES.values(), ".mp4", ".scores.json"):
            path = out_dir / f"{source.name}{suffix}"
            for output in (path, partial_path(path)):
                check_not_input(output, inputs)


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
    complete line and renamed to NAME.partial.txt / .jsonl, unless a newer partial or complete
    file is there (a retried batch task finished the source after its first worker was killed);
    the run's configuration (written whole before its first frame) becomes tracker.partial.yaml.
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
            readable = path.suffix == ".tmp" and target.suffix in (".txt", ".jsonl", ".yaml", ".csv")
            end = _complete_lines_end(path) if readable else 0
            newer = [kept for kept in (partial, target) if kept.exists()]
            if end == 0 or any(kept.stat().st_mtime >= path.stat().st_mtime for kept in newer):
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
    frames: FrameRange | str = ALL_FRAMES,
    evaluate: bool = False,
    benchmark: str | None = None,
    min_area: float | None = None,
    max_aspect: float | None = None,
    progress: bool = True,
    latest: bool = True,
    viewer: FrameViewer | None = None,
    *,
    fps: float | None = None,
    vid_stride: int = 1,
    reconnect: float = RECONNECT_SECONDS,
    observers: tuple[FrameObserver, ...] = (),
    recover: bool = True,
) -> dict[str, SequenceRun]:
    """Track every sequence of `source`; returns each sequence's files (or, without `output`, tracks).

    With `output`, writes `NAME.txt` (MOTChallenge), `NAME.jsonl` (one JSON object per frame),
    `NAME.mp4` (with `save_video`) and `NAME.scores.json` (with `evaluate`, which needs gt; under
    the rules of `benchmark`, one of `cstrack.evaluation.BENCHMARKS`, or when None MOT17's for gt
    with class ids and MOT15's otherwise).
    `min_area` / `max_aspect` are the MOT-file output filter of the JDE-family trackers; the
    scores are those of the filtered rows, as the MOT file would be scored.
    `tracker` is a `Tracker` or what `Tracker(...)` takes as its model (a name or weights file).
    With `output`, the thresholds of a tracker built `Tracker.from_config` (its `.config`) go to
    `tracker.yaml` with the complete results (`tracker.partial.yaml` beside partial ones), a file
    that `--tracker-config` reads back. A run that could read no frame at all writes no results
    (earlier ones stay) and raises InputError.
    `source` may also be the list `open_sources` returned (the frame range is then theirs).
    `latest` (webcams and streams) tracks only the newest frame when tracking is slower than the
    camera, counting the frames dropped (`SequenceRun.dropped_frames`); False tracks every frame.
    `viewer` (e.g. `cstrack.pipeline.viewer.Viewer()`) shows each rendered frame; when it asks to
    stop (q or Esc), the run ends there with complete outputs (scored up to there). It is closed
    at the end.
    `fps` (the frame rate, where the source's is missing or wrong), `vid_stride` (every Nth frame)
    and `reconnect` (how long a stream may stay down; math.inf: forever) go to `open_sources`,
    once, when `source` is opened here; the tracker takes the resulting rate from each source.
    `observers` (`cstrack.pipeline.observers.FrameObserver`: crops, counts) follow every
    sequence's tracks and write beside its results.
    Options, the output folder and the ground truth are checked before the first frame.
    `recover` deals with the temporaries of killed runs in `output` first (`recover_stale_temporaries`);
    the workers of a batch leave that to its driver, which may see other machines' live files.
    """
    check_track_options(formats, trails, min_area, max_aspect)
    if isinstance(source, list):
        if (fps, vid_stride, reconnect) != (None, 1, RECONNECT_SECONDS):
            raise InputError(
                None, "fps, vid_stride and reconnect apply when sources are opened: give them to open_sources"
            )
        sources = source
    else:
        sources = open_sources(source, frames, latest, fps=fps, vid_stride=vid_stride, reconnect=reconnect)
    if evaluate:
        check_evaluable(sources, benchmark)
    elif benchmark is not None:
        raise InputError(None, "a benchmark sets the rules of the scores: it needs evaluate=True (--eval)")
    out_dir = None if output is None else Path(output)
    if out_dir is not None:
        check_output_folder(out_dir, sources)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(
                out_dir, f"cannot create the output folder: {error.strerror or error}"
            ) from error
        if recover:
            recover_stale_temporaries(out_dir)
    if not isinstance(tracker, Tracker):
        tracker = Tracker.from_config(tracker)
    config = getattr(tracker, "config", None)
    record = None
    if out_dir is not None and config is not None:
        # Whole before the first frame, under a temporary name that becomes tracker.yaml with
        # complete results and tracker.partial.yaml beside partial ones (the next run recovers a
        # killed run's so): tracker.yaml always describes the complete results beside it.
        record = _StreamedFile(out_dir / CONFIG_FILE)
        record.write(config.dumps(CONFIG_HEADER))
    runs: dict[str, SequenceRun] = {}
    complete = False
    try:
        for src in sources:
            writer = _SequenceWriter(
                src,
                out_dir,
                formats,
                save_video,
                trails,
                evaluate,
                min_area,
                max_aspect,
                class_names=tracker.class_names,
                viewer=viewer,
                observers=observers,
            )
            run = _track_source(src, tracker, writer, progress)
            runs[src.name] = run
            if evaluate and run.tracked and not run.interrupted:
                window = FrameRange(src.frames.first, writer.last_frame) if run.stopped else None
                run.scores = evaluate_run(writer.table(), src, benchmark, window, writer.class_names)
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
            if run.dropped_frames:
                logger.info(
                    "cstrack: %s: dropped %d frames to keep up with the camera (tracked the newest each "
                    "time; --all-frames tracks every frame)",
                    src.name,
                    run.dropped_frames,
                )
            if run.outages:
                logger.info("cstrack: %s: the stream was lost %d times", src.name, run.outages)
            if run.interrupted or run.stopped:
                break
        complete = not any(run.interrupted for run in runs.values())
    finally:
        if record is not None and any(run.files for run in runs.values()):
            record.close(complete)
        elif record is not None:  # no results, complete or partial, for it to describe
            record.discard()
    if complete and not any(run.tracked for run in runs.values()):
        skipped = sum(len(run.skipped_frames) for run in runs.values())
        origins = ", ".join(source.origin for source in sources)
        raise InputError(origins, f"nothing tracked: none of its {skipped} frames could be read")
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
        class_names: tuple[str, ...] = DEFAULT_CLASS_NAMES,
        viewer: FrameViewer | None = None,
        observers: tuple[FrameObserver, ...] = (),
    ):
        self.source = source
        self.viewer = viewer
        self.observers = observers
        self.save_video = save_video and out_dir is not None
        self.last_frame: int | None = None
        self.class_names = class_names
        # One-class output keeps column 8 at -1 (pedestrian files as MOTChallenge writes them).
        self.class_ids = mot_class_ids(class_names) if len(class_names) > 1 else None
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
        self.renderer = TrackRenderer(trails, class_names) if self.save_video or viewer is not None else None
        self.video: _VideoOutput | None = None
        self.resized = False  # a frame of another size than the video's was scaled (and said)
        for observer in observers:
            observer.open(source, out_dir)

    def add(self, run: SequenceRun, number: int, image: np.ndarray, tracks: list[Track], fps: float) -> bool:
        """Write one tracked frame everywhere; False when the viewer asked to stop after it."""
        self.last_frame = number
        if self.keep_tracks:
            run.frames[number] = tracks
        rows = filter_results(results_rows(number, tracks, self.class_ids), self.min_area, self.max_aspect)
        rows = rows[np.argsort(rows[:, ID], kind="stable")]
        lines = format_results(rows) if "mot" in self.streams or self.rows is not None else ""
        if self.rows is not None:
            # Scored as the MOT file reads back (2 decimals), so `cstrack eval` of it scores the same.
            self.rows.append(_as_written(lines, rows.shape[1]))
        if "mot" in self.streams:
            self.streams["mot"].write(lines)
        if "json" in self.streams:
            self.streams["json"].write(json.dumps(_frame_json(number, tracks, self.class_names)) + "\n")
        for observer in self.observers:
            observer.add(number, image, tracks)
        if self.renderer is None:
            return True
        canvas = self.renderer.draw(image, tracks, fps)
        for observer in self.observers:
            observer.draw(canvas)
        if self.save_video:
            if self.video is None:
                height, width = image.shape[:2]
                path = self.out_dir / f"{self.source.name}.mp4"
                self.video = _VideoOutput(path, self.source.frame_rate, (width, height))
            self.video.write(self._video_sized(canvas, number))
        return self.viewer is None or self.viewer.show(canvas)

    def _video_sized(self, canvas: np.ndarray, number: int) -> np.ndarray:
        """`canvas` at the video's size (its first frame's): a writer drops frames of another size
        without an error, so a folder of mixed sizes is scaled, and said once."""
        assert self.video is not None
        height, width = canvas.shape[:2]
        size = self.video.size
        if (width, height) == size:
            return canvas
        if not self.resized:
            logger.warning(
                "cstrack: %s: frame %d is %d x %d, the video %d x %d (its first frame's): frames of "
                "other sizes are scaled to it in the video",
                self.source.name,
                number,
                width,
                height,
                *size,
            )
            self.resized = True
        return cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)

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
            run.video_codec = self.video.codec
        for kind, output in outputs.items():
            kept = output.close(complete)
            if kept is not None:
                run.files[kind] = kept
        for observer in self.observers:
            run.files.update(observer.close(complete))


def _as_written(lines: str, columns: int) -> np.ndarray:
    """The first `columns` values of `format_results` lines, as a reader of the file gets them."""
    values = [line.split(",")[:columns] for line in lines.splitlines()]
    return np.array(values, dtype=float).reshape(len(values), columns)


def _track_source(
    source: FrameSource, tracker: Tracker, writer: _SequenceWriter, progress: bool
) -> SequenceRun:
    run = SequenceRun(source.name, in_memory=writer.keep_tracks)
    tracker.reset(frame_rate=source.frame_rate)
    bar = tqdm(total=len(source) or None, desc=source.name, unit="frame", disable=not progress, leave=True)
    started = time.perf_counter()
    complete = False
    frames = iter(source)
    try:
        for number, image in frames:
            if image is None:
                run.skipped_frames.append(number)
                bar.update(1)
                continue
            tracks = tracker.update(image)
            run.tracked += 1
            fps = run.tracked / max(time.perf_counter() - started, 1e-9)
            going = writer.add(run, number, image, tracks, fps)
            bar.update(1)
            bar.set_postfix(tracks=len(tracks), refresh=False)
            if not going:
                run.stopped = True
                break
        complete = True
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        bar.close()
        if hasattr(frames, "close"):
            frames.close()  # a live source's reader thread stops now, not when collected
        run.dropped_frames, run.outages = source.dropped_frames, source.outages
        writer.close(run, complete and run.tracked > 0)  # no frame read: earlier results stay
        if writer.viewer is not None:
            writer.viewer.close()
    if run.interrupted:
        logger.warning("cstrack: interrupted: %s", writer.describe_partial(run))
    if run.stopped:
        logger.info("cstrack: %s: stopped from the viewer after frame %d", source.name, writer.last_frame)
    return run


def _frame_json(frame: int, tracks: list[Track], class_names: tuple[str, ...]) -> dict:
    return {
        "frame": frame,
        "tracks": [
            {
                "id": t.track_id,
                "box_xyxy": [round(float(v), 2) for v in t.box_xyxy],
                "score": round(t.score, 4),
                "class": t.cls,
                "class_name": class_names[t.cls],
            }
            for t in tracks
        ],
    }

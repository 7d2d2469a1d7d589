"""Track whole sources: the loop over each sequence's frames, from a frame to its tracks to
what `cstrack.pipeline.outputs` writes of them, and the scores.

`track(source, tracker, ...)` is the engine of `cstrack track`: one pass per sequence, a
progress bar with frames/s, unreadable frames skipped and counted, Ctrl-C (or an error) ending
the run with what was tracked kept as partial files (`outputs`), and the rows scored against the
ground truth with `evaluate`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from tqdm import tqdm

from cstrack.atomic import atomic_write
from cstrack.config import DEFAULT_MODEL, RECONNECT_SECONDS
from cstrack.data.mot import mot_class_ids
from cstrack.data.sources import ALL_FRAMES, FrameRange, FrameSource, open_sources
from cstrack.errors import InputError, check_options
from cstrack.models.classes import DEFAULT_CLASS_NAMES
from cstrack.pipeline.end_to_end import Tracker
from cstrack.pipeline.observers import FrameObserver
from cstrack.pipeline.outputs import (
    CONFIG_HEADER,
    FORMATS,
    OutputOptions,
    SequenceWriter,
    StreamedFile,
    prepare_output_folder,
)
from cstrack.pipeline.tracker_config import TRACKER_CONFIG_FILE
from cstrack.pipeline.viewer import FrameViewer
from cstrack.tracking.rows import results_rows
from cstrack.tracking.track_state import Track

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
    scores: dict[str, Any] | None = None
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


def evaluate_run(
    results: np.ndarray,
    source: FrameSource,
    benchmark: str | None = None,
    frames: FrameRange | None = None,
    class_names: tuple[str, ...] = DEFAULT_CLASS_NAMES,
) -> dict[str, Any]:
    """Scores of a sequence's (M, 7) results against its gt, restricted to the tracked frame range
    (`frames`, default the source's) as `cstrack eval --frames` restricts them (`frame_window`).

    `benchmark` names the rules; None guesses them from the gt's columns (`guess_benchmark`).
    A multi-class model's (M, 8) results are scored per class (`evaluate_per_class`):
    {"classes": {name: scores}} in place of the scores.
    """
    from cstrack.evaluation import SequenceTables, evaluate_sequence, frame_window, guess_benchmark

    sequence = source.sequence
    if sequence is None:
        raise InputError(source.origin, "cannot evaluate: not a MOTChallenge sequence with gt/gt.txt")
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
    evaluate: bool = False,
    benchmark: str | None = None,
) -> None:
    """Refuse output formats and numbers that `track` cannot use, and a `benchmark` without
    `evaluate`, before any source is opened (the one check of `track`'s options: the command
    line calls it before the model loads)."""
    if benchmark is not None and not evaluate:
        raise InputError(None, "a benchmark sets the rules of the scores: it needs evaluate=True (--eval)")
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
        from cstrack.evaluation import benchmark_rules

        benchmark_rules(benchmark)
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


def track(
    source: str | int | os.PathLike[str] | list[FrameSource],
    tracker: Tracker | str | os.PathLike[str] = DEFAULT_MODEL,
    output: str | os.PathLike[str] | None = None,
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
    With `output`, the tracker's settings (its `.config`) go to
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
    check_track_options(formats, trails, min_area, max_aspect, evaluate, benchmark)
    options = OutputOptions(formats, save_video, trails, min_area, max_aspect, evaluate)
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
    out_dir = None if output is None else Path(output)
    if out_dir is not None:
        prepare_output_folder(out_dir, sources, recover)
    if not isinstance(tracker, Tracker):
        tracker = Tracker(tracker)
    record = None
    if out_dir is not None:
        # Whole before the first frame, under a temporary name that becomes tracker.yaml with
        # complete results and tracker.partial.yaml beside partial ones (the next run recovers a
        # killed run's so): tracker.yaml always describes the complete results beside it.
        record = StreamedFile(out_dir / TRACKER_CONFIG_FILE)
        record.write(tracker.config.dumps(CONFIG_HEADER))
    runs: dict[str, SequenceRun] = {}
    complete = False
    try:
        for src in sources:
            writer = SequenceWriter(src, out_dir, options, tracker.class_names, viewer, observers)
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


def _track_source(
    source: FrameSource, tracker: Tracker, writer: SequenceWriter, progress: bool
) -> SequenceRun:
    run = SequenceRun(source.name, in_memory=writer.out_dir is None)
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
            if run.in_memory:
                run.frames[number] = tracks
            going = writer.add(number, image, tracks, fps)
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
        run.files.update(writer.close(complete and run.tracked > 0))  # no frame read: earlier results stay
        run.video_codec = writer.video_codec
        if writer.viewer is not None:
            writer.viewer.close()
    if run.interrupted:
        logger.warning("cstrack: interrupted: %s", writer.describe_partial(run.tracked, run.files))
    if run.stopped:
        logger.info("cstrack: %s: stopped from the viewer after frame %d", source.name, writer.last_frame)
    return run

"""Track many sources in one call: every core of one machine, or a Ray cluster.

    from cstrack import track_many
    batch = track_many(["archive/"], output="runs/archive", workers=8)
    print(batch.summary())

`track_many` expands what it is given (`cstrack.data.source_list.expand_sources`: folders of
videos, globs, `@list.txt`), skips the sources whose complete results are already in `output`
(so a killed batch of thousands restarts where it stopped; `force` redoes them), and tracks the
rest with `track`, one source at a time per worker: in this process (one worker), in a pool of
processes that each build their own tracker (`concurrent.futures`), or as Ray tasks (`ray`, see
`cstrack.pipeline.ray_batch`). Each source's files are streamed to temporaries and renamed when
complete, exactly as a sequential run writes them, so the results are the same bytes however
they were spread. A source that fails is reported in its `SourceResult` and the others go on; a
worker process that dies (killed, out of memory) takes its unfinished sources to a new pool, up to
`retries` times.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from cstrack.atomic import check_writable
from cstrack.config import DEFAULT_MODEL, RuntimeConfig
from cstrack.data.source_list import SourceItem, expand_sources
from cstrack.data.sources import ALL_FRAMES, FrameRange, live_target, open_sources
from cstrack.errors import InputError
from cstrack.models.registry import weights_file
from cstrack.pipeline.end_to_end import Tracker
from cstrack.pipeline.outputs import recover_stale_temporaries, result_paths
from cstrack.pipeline.runner import check_evaluable, check_track_options, track
from cstrack.pipeline.tracker_config import TrackerConfig

DONE, SKIPPED, FAILED, INTERRUPTED = "done", "skipped", "failed", "interrupted"
logger = logging.getLogger(__name__)
#: How many times the sources of a worker that died are tried again (Ray's `max_retries` too).
DEFAULT_RETRIES = 2
#: What `track` takes that a batch sets itself (per worker) or that cannot cross processes.
#: The numbers of `track` that `check_track_options` checks.
NUMBERS = ("trails", "min_area", "max_aspect")
_BATCH_OWNED = frozenset({"source", "tracker", "output", "progress", "viewer", "recover"})


def available_cores() -> int:
    """The cores this process may run on (its affinity, as a container or `taskset` limits it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers(sources: int, cores: int | None = None) -> int:
    """The processes for `sources` sources: one per core, up to one per source (the cores left
    over go to each process as intra-op threads). Processes run the parts of a small tracker that
    one thread does (decoding, NMS, association) side by side, where threads idle through them;
    benchmarks/batch.py measures the choice on a machine."""
    return max(1, min(sources, cores or available_cores()))


@dataclass
class SourceResult:
    """What became of one source: `status` is done, skipped (complete results were there),
    failed (`error` says why, in one line) or interrupted (partial files kept)."""

    name: str
    spec: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)
    scores: dict[str, Any] | None = None
    error: str | None = None

    def ms_per_frame(self) -> float | None:
        """Wall-clock milliseconds per tracked frame in its worker (opening and writing included)."""
        return 1000 * self.seconds / self.frames if self.frames else None


@dataclass
class BatchResult:
    """Every source's result, in the order given, and the batch's wall-clock time.

    `combined` holds TrackEval's combination over every scored sequence (with `evaluate`, single-
    class models, one benchmark's rules for all), as `cstrack eval` computes it from the files.
    """

    sources: list[SourceResult]
    seconds: float
    workers: int
    combined: dict[str, Any] | None = None
    interrupted: bool = False

    @property
    def failed(self) -> list[SourceResult]:
        return [result for result in self.sources if result.status == FAILED]

    @property
    def frames(self) -> int:
        return sum(result.frames for result in self.sources)

    def summary(self) -> str:
        """The table `cstrack track` prints: a row per source, the combined scores, the totals."""
        from cstrack.evaluation.metrics import COMBINED

        scored = any(result.scores for result in self.sources)
        header = ["source", "status", "frames", "ms/frame"] + (["HOTA", "MOTA", "IDF1"] * scored)
        rows = [header]
        for result in self.sources:
            speed = result.ms_per_frame()
            row = [result.name, result.status, str(result.frames or "-"), f"{speed:.1f}" if speed else "-"]
            rows.append(row + (_score_cells(result.scores) if scored else []))
        if self.combined is not None:
            rows.append([COMBINED, "", str(self.frames), "", *_score_cells(self.combined)])
        widths = [max(len(row[k]) for row in rows) for k in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
        counts = Counter(result.status for result in self.sources)
        done = ", ".join(
            f"{counts[status]} {status}" for status in (DONE, SKIPPED, FAILED, INTERRUPTED) if counts[status]
        )
        speed = self.frames / self.seconds if self.seconds > 0 else 0.0
        lines.append(
            f"{len(self.sources)} sources ({done}): {self.frames} frames in {self.seconds:.1f} s, "
            f"{speed:.1f} frames/s with {self.workers} worker(s)"
        )
        lines += [f"failed: {result.name}: {result.error}" for result in self.failed]
        return "\n".join(lines)


def _score_cells(scores: dict[str, Any] | None) -> list[str]:
    if not scores or "HOTA" not in scores:  # not scored, or scored per class
        return ["-"] * 3
    return [f"{100 * scores[key]:.1f}" for key in ("HOTA", "MOTA", "IDF1")]


@dataclass(frozen=True)
class BatchJob:
    """Everything a worker needs besides its source: how to build its own tracker (a `Tracker`
    cannot cross processes, its recipe can) and how and where to write."""

    model: str
    config: TrackerConfig
    runtime: RuntimeConfig
    tracker_options: dict[str, Any]
    threads: int | None  # None: as torch has them
    output: Path
    track_options: dict[str, Any]

    def build_tracker(self) -> Tracker:
        """The worker's tracker, its intra-op threads (torch's, which ONNX Runtime follows, and
        OpenCV's, for decoding and camera motion) set first: workers x threads fit the cores."""
        if self.threads is not None:
            import cv2
            import torch

            torch.set_num_threads(self.threads)
            cv2.setNumThreads(self.threads)
        return Tracker(self.model, self.config, self.runtime, **self.tracker_options)

    def complete(self, item: SourceItem) -> bool:
        """Whether every file a complete run of `item` writes is in the output folder."""
        if live_target(item.spec) is not None:
            return False  # a camera's results are never complete
        return all(path.is_file() for path in self._result_paths(item))

    def _result_paths(self, item: SourceItem) -> list[Path]:
        options = self.track_options
        formats = options.get("formats", ("mot",))
        save_video, evaluate = options.get("save_video", False), options.get("evaluate", False)
        leaf = PurePosixPath(item.name).name
        return result_paths(self.output / item.folder, leaf, formats, save_video, evaluate)

    def skipped(self, item: SourceItem) -> SourceResult:
        """The result of a source whose complete results were already there (scores read back)."""
        paths = self._result_paths(item)
        scores = next(
            (json.loads(path.read_text()) for path in paths if path.name.endswith(".scores.json")), None
        )
        return SourceResult(
            item.name, str(item.spec), SKIPPED, files={p.name: str(p) for p in paths}, scores=scores
        )

    def run(self, item: SourceItem, tracker: Tracker) -> SourceResult:
        """Track one source into its folder of the output; any failure becomes a failed result."""
        started = time.perf_counter()
        try:
            runs = track(
                item.spec,
                tracker,
                self.output / item.folder,
                progress=False,
                recover=False,
                **self.track_options,
            )
        except InputError as error:
            return SourceResult(item.name, str(item.spec), FAILED, error=str(error))
        except Exception as error:  # noqa: BLE001 - one source's failure must not stop the others
            return SourceResult(item.name, str(item.spec), FAILED, error=f"{type(error).__name__}: {error}")
        (run,) = runs.values()
        return SourceResult(
            item.name,
            str(item.spec),
            INTERRUPTED if run.interrupted else DONE,
            frames=run.tracked,
            seconds=time.perf_counter() - started,
            files={kind: str(path) for kind, path in run.files.items()},
            scores=run.scores,
        )


# The tracker of a pool's worker process, built once by `_start_worker`.
_worker: tuple[BatchJob, Tracker] | None = None


def _start_worker(job: BatchJob) -> None:
    global _worker
    _worker = (job, job.build_tracker())


def _track_in_worker(item: SourceItem) -> SourceResult:
    assert _worker is not None, "a pool worker runs _start_worker first"
    job, tracker = _worker
    return job.run(item, tracker)


def track_many(
    sources: Sequence[str | int | PathLike[str]],
    model: str | PathLike[str] = DEFAULT_MODEL,
    output: str | PathLike[str] = "runs/track",
    *,
    config: TrackerConfig = TrackerConfig(),
    runtime: RuntimeConfig = RuntimeConfig(),
    tracker_options: Mapping[str, Any] | None = None,
    workers: int | None = None,
    threads: int | None = None,
    ray: str | bool | None = None,
    gpus_per_task: float = 0.0,
    retries: int = DEFAULT_RETRIES,
    force: bool = False,
    progress: bool = True,
    formats: tuple[str, ...] = ("mot",),
    save_video: bool = False,
    frames: FrameRange = ALL_FRAMES,
    evaluate: bool = False,
    benchmark: str | None = None,
    **track_options: Any,
) -> BatchResult:
    """Track every source that `sources` name into `output` (`OUT/NAME.txt` ..., relative paths
    kept) and return what became of each.

    `model`, `config` (a `TrackerConfig`), `runtime` (a `cstrack.config.RuntimeConfig`) and
    `tracker_options` (other keywords of `Tracker`: arch, recheck, classes) are what each worker
    builds its tracker from.
    `workers` processes run at once (default: one per core, up to one per source, see
    `default_workers`), each with `threads` intra-op threads (default: the cores shared out).
    `ray` sends each source to a Ray task instead: True starts a local Ray cluster for the call
    (on 127.0.0.1, `workers` CPUs or all), "auto" joins the cluster this machine is in, any other
    string is a cluster's address; a Ray already initialised in this process is used as it is.
    Each task asks for `threads` CPUs and `gpus_per_task` GPUs (a fraction shares one GPU).
    `retries`: how many times the sources of a worker that died are tried again. `force` tracks
    sources whose complete results are already in `output` again. `formats`, `save_video`,
    `frames`, `evaluate` and `benchmark` are `track`'s, and so are the other keywords (`trails`,
    `min_area`, `latest`, `fps` ...). Options, sources, ground truth (with `evaluate`), the output
    folder and the model are checked here, before any worker starts.
    """
    started = time.perf_counter()
    _check_batch_options(workers, threads, retries, gpus_per_task, track_options)
    numbers = {name: track_options[name] for name in NUMBERS if name in track_options}
    check_track_options(formats, **numbers, evaluate=evaluate, benchmark=benchmark)
    items = expand_sources(sources)
    if evaluate:  # cameras fail alone, when tracked: opening one here would take it
        for item in items:
            if live_target(item.spec) is None:
                check_evaluable(open_sources(item.spec, frames), benchmark)
    check_writable(output)
    chosen = dict(
        formats=formats, save_video=save_video, frames=frames, evaluate=evaluate, benchmark=benchmark
    )
    options = {**chosen, **track_options}
    job = BatchJob(str(model), config, runtime, dict(tracker_options or {}), threads, Path(output), options)
    todo = [item for item in items if force or not job.complete(item)]
    workers = workers or (None if ray else default_workers(len(todo)))
    here = not ray and workers == 1
    shared = str(model) if here else _shared_weights(model)
    # The model and the tracker's options fail here, once (a GPU that only the cluster has aside);
    # in this process, it is the tracker; otherwise only a check, with this process's threads kept.
    checked = job if here else replace(job, threads=None)
    tracker = None if ray and runtime.device not in ("auto", "cpu") else checked.build_tracker()
    if not here:
        spare = 1 if ray else max(1, available_cores() // (workers or 1))
        job = replace(job, model=shared, threads=threads or spare)
    by_name = {item.name: item for item in items}
    waiting = {item.name for item in todo}
    results = {item.name: job.skipped(item) for item in items if item.name not in waiting}
    folders = {job.output / item.folder for item in todo}
    _recover(folders)
    with tqdm(total=len(todo), unit="source", disable=not progress or not todo, desc="sources") as bar:

        def report(result: SourceResult) -> None:
            bar.update(1)
            if result.status == FAILED:
                logger.warning("cstrack: %s: failed: %s", result.name, result.error)

        if ray:
            from cstrack.pipeline.ray_batch import run_on_ray

            done, workers = run_on_ray(todo, job, ray, workers, gpus_per_task, retries, report)
        elif here:
            assert tracker is not None
            done = _run_here(todo, job, tracker, report)
        else:
            done = _run_in_pool(todo, job, workers or 1, retries, report)
    results.update((result.name, result) for result in done)
    _recover(folders)  # a killed worker's temporaries: removed where a retry completed the source
    ordered = [results[item.name] for item in items if item.name in results]
    combined = _combined_scores(ordered, job, by_name) if evaluate and "mot" in formats else None
    interrupted = any(result.status == INTERRUPTED for result in done)
    return BatchResult(ordered, time.perf_counter() - started, workers or 0, combined, interrupted)


def _recover(folders: set[Path]) -> None:
    """The temporaries of killed runs in the output folders: the driver deals with them, before
    and after the batch; its workers, which may be on other machines, cannot tell whose are live."""
    for folder in folders:
        if folder.is_dir():
            recover_stale_temporaries(folder)


def _check_batch_options(
    workers: int | None,
    threads: int | None,
    retries: int,
    gpus_per_task: float,
    track_options: Mapping[str, Any],
) -> None:
    for name, value, minimum in (("workers", workers, 1), ("threads", threads, 1), ("retries", retries, 0)):
        if value is not None and (not isinstance(value, int) or value < minimum):
            raise InputError(None, f"{name} must be an integer >= {minimum}, got {value!r}")
    if not (math.isfinite(gpus_per_task) and gpus_per_task >= 0):
        raise InputError(None, f"gpus_per_task must be >= 0, got {gpus_per_task!r}")
    known = set(inspect.signature(track).parameters) - _BATCH_OWNED
    unknown = sorted(set(track_options) - known)
    if unknown:
        raise InputError(
            None, f"track_many: unknown option {unknown[0]!r}; track's options are {', '.join(sorted(known))}"
        )


def _shared_weights(model: str | PathLike[str]) -> str:
    """The weights file every worker loads: a model without one (a randomly initialised variant)
    would give each worker its own random weights, and so other tracks than a sequential run."""
    path = weights_file(model)
    if path is None:
        raise InputError(
            None,
            f"model {str(model)!r} has no weights file: each worker would draw its own random weights; "
            "give a .safetensors file or a bundled model, or track with one worker",
        )
    return str(path)


def _run_here(
    todo: list[SourceItem], job: BatchJob, tracker: Tracker, report: Callable[[SourceResult], None]
) -> list[SourceResult]:
    """One source after another with this process's tracker; Ctrl-C ends the batch there."""
    done = []
    for item in todo:
        result = job.run(item, tracker)
        report(result)
        done.append(result)
        if result.status == INTERRUPTED:
            break
    return done


def _run_in_pool(
    todo: list[SourceItem], job: BatchJob, workers: int, retries: int, report: Callable[[SourceResult], None]
) -> list[SourceResult]:
    """The sources in `workers` spawned processes, each building its tracker once. A process that
    dies breaks the pool (every unfinished future fails): the unfinished sources go to a new pool,
    each at most `retries` more times, then are reported failed. Ctrl-C cancels the sources not
    started; those being tracked keep their frames as partial files (each worker gets the signal)."""
    attempts: Counter[SourceItem] = Counter()
    left, done = list(todo), []
    context = multiprocessing.get_context("spawn")  # fork would copy a parent's torch threads' locks
    while left:
        again = []
        with ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(job,)) as pool:
            futures: dict[Future[SourceResult], SourceItem] = {
                pool.submit(_track_in_worker, item): item for item in left
            }
            try:
                for future in as_completed(futures):
                    item = futures[future]
                    try:
                        result = future.result()
                    except BrokenProcessPool as error:
                        attempts[item] += 1
                        if attempts[item] <= retries:
                            again.append(item)
                            continue
                        result = SourceResult(
                            item.name, str(item.spec), FAILED, error=f"its worker died: {error}"
                        )
                    report(result)
                    done.append(result)
            except KeyboardInterrupt:
                for future in futures:
                    future.cancel()
                done += [
                    _interrupted(futures[future], future) for future in futures if not future.cancelled()
                ]
                return done
        left = again
    return done


def _interrupted(item: SourceItem, future: Future[SourceResult]) -> SourceResult:
    """What a source being tracked at Ctrl-C became: its worker's result, or interrupted."""
    try:
        return future.result()
    except (BrokenProcessPool, KeyboardInterrupt):
        return SourceResult(item.name, str(item.spec), INTERRUPTED)


def _combined_scores(
    results: list[SourceResult], job: BatchJob, by_name: Mapping[str, SourceItem]
) -> dict[str, Any] | None:
    """TrackEval's combination of every scored sequence, from the MOT files as `cstrack eval`
    reads them; None when some sequence was scored per class or under other rules."""
    from cstrack.data.mot import read_results
    from cstrack.evaluation import SequenceTables, evaluate_tables

    tables: dict[str, SequenceTables] = {}
    rules: set[str] = set()
    for result in results:
        if not result.scores or "HOTA" not in result.scores:
            continue
        rules.add(result.scores["benchmark"])
        (source,) = open_sources(by_name[result.name].spec, job.track_options["frames"])
        assert source.sequence is not None  # scored, so a sequence with gt
        gt = source.sequence.read_gt()
        path = job.output / f"{result.name}.txt"
        tables[result.name] = SequenceTables(gt, read_results(path), source.sequence.info.seq_length)
    if not tables or len(rules) != 1:
        return None
    combined: dict[str, Any] = evaluate_tables(tables, rules.pop(), job.track_options["frames"])["combined"]
    return combined

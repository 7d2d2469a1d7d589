"""Tuning the tracker's thresholds on sequences with ground truth: detect once, associate per trial.

    cache = cache_detections(open_sources("data/PETS09-S2L1", FrameRange(1, 600)), detector)
    result = tune(cache, parse_space("conf,track_buffer"), trials=50, metric="HOTA")
    result.best_config.save("best.yaml")

The network runs once per sequence (`cache_detections`), at the lowest detection threshold and
re-check heat threshold of the search space; each trial then only filters those detections by
its own thresholds, runs the association (`Tracker` over a ready detector, `CachedDetections`)
and scores with `cstrack.evaluation.evaluate_tables`. Filtering is exact: greedy NMS keeps the
boxes above a threshold whatever it did with the boxes below (they come later in score order),
a score above the threshold implies an objectness above it (score = objectness x class
probability), and the re-check's top-k peaks are taken before its heat threshold. The NMS IoU
changes which boxes survive, so it is fixed for a study (`nms_iou` of the base configuration).

OMC's re-check candidates depend on the live tracks' templates, which differ between trials;
the network's feature maps that would let each trial re-run the re-check head cost ~14 MB per
frame at 768 x 576, too much to keep. So the candidates are those of a *reference run*: the
base configuration's own tracking (with its templates) during the detection pass. Trials with
other thresholds get the reference run's re-check candidates, not their own: the base trial is
exact, the others approximate the re-check (measure the best config with `cstrack track --eval`,
as the how-to does). `recheck=False` tunes without re-check, exactly, and leaves its thresholds
out of the search.

Camera-motion compensation (`cmc`) needs the frames, which trials do not see: the reference run
estimates every frame's warp with each method the study may use (`cmc_methods`), masked on the
candidates it associates, and trials replay them (`ReplayedMotion`): exact for the base trial,
the same masks (not their own) for the others.

The base configuration is enqueued as trial 0, so the best trial scores at least as well as it
does by construction (ties keep the base).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from cstrack.atomic import temporary_path
from cstrack.data.mot import ID, filter_results, format_results
from cstrack.data.sources import FrameRange, FrameSource
from cstrack.errors import InputError
from cstrack.evaluation import SCORE_FIELDS, SequenceTables, evaluate_tables, frame_window, guess_benchmark
from cstrack.models.inference import DetectionResult
from cstrack.pipeline.camera_motion import CameraMotion, Warp, identity_warp
from cstrack.pipeline.end_to_end import Tracker
from cstrack.pipeline.tracker_config import RULES, TrackerConfig
from cstrack.tracking.track_state import results_rows

logger = logging.getLogger(__name__)

#: The search space of `cstrack tune` when --params is not given: field -> (low, high). A
#: `float?` field (BYTE's low threshold) is searched as off or in the range.
DEFAULT_SPACE: dict[str, tuple[float, float]] = {
    "conf": (0.35, 0.7),
    "new_track_thresh": (0.35, 0.8),
    "embedding_match_thresh": (0.2, 0.7),
    "appearance_weight": (0.5, 1.0),
    "gate_thresh": (2.0, 50.0),
    "iou_match_thresh": (0.3, 0.9),
    "unconfirmed_match_thresh": (0.5, 0.95),
    "track_buffer": (10, 150),
    "duplicate_iou": (0.5, 0.95),
    "template_momentum": (0.5, 0.99),
    "byte_low_threshold": (0.1, 0.3),
    "byte_match_thresh": (0.3, 0.9),
    "fusion_eps": (0.2, 0.9),
    "recheck_threshold": (0.1, 0.6),
    "recheck_starts_tracks": (0, 1),
    "reid_seconds": (0, 60),
    "reid_match_thresh": (0.05, 0.3),
}
#: "choice" fields (see `TrackerConfig`'s SPEC), searched over all their names unless --params
#: names some (`cmc=none:sof`).
DEFAULT_CHOICES = ("cmc",)
#: Searched on a log scale.
LOG_SCALE = frozenset({"gate_thresh"})
#: Fields that matter only when another is set (not None): searched only then.
NEEDS = {"byte_match_thresh": "byte_low_threshold", "reid_match_thresh": "reid_seconds"}
#: Fields of OMC's re-check, left out when tuning without it.
RECHECK_FIELDS = frozenset({"fusion_eps", "recheck_threshold", "recheck_starts_tracks"})
#: Fields that cached detections cannot follow, and why.
NOT_TUNABLE = {
    "nms_iou": "it changes which boxes the detector keeps, so each trial would need the network again",
    "reid_capacity": "it bounds the memory of long re-identification; set it, do not search it",
}
#: Metrics where lower is better; every other key of SCORE_FIELDS is maximised.
LOWER_IS_BETTER = frozenset({"IDSW", "FP", "FN", "IDFP", "IDFN", "ML", "Frag"})
METRICS = tuple(name for name in SCORE_FIELDS if name != "PT")
#: The suffix of the on/off switch of a `float?` field among a trial's parameters.
ON = ".on"
#: The thresholds in a cache's key below which nothing is kept: a cache made lower serves higher.
FLOORS = frozenset({"conf", "recheck_threshold"})
# The frame the association is given with cached detections: Tracker checks frames, nothing reads it.
_FRAME = np.zeros((1, 1, 3), np.uint8)
_CACHE_FORMAT = 1


class Param(NamedTuple):
    """One searched field: its kind (as in `TrackerConfig`'s SPEC), range and scale, or the names
    a "choice" field is searched over."""

    name: str
    kind: str
    low: float
    high: float
    log: bool = False
    choices: tuple[str, ...] = ()


def parse_space(text: str | None, recheck: bool = True) -> list[Param]:
    """The search space of `--params`: 'conf,track_buffer=20:90,...' (a range overrides the default
    one), None for every field of `DEFAULT_SPACE` (without the re-check ones when `recheck` is off);
    in `TrackerConfig` field order. A name or range the config does not accept is an InputError."""
    if text is None:
        wanted: dict[str, str | None] = {
            name: None for name in (*DEFAULT_SPACE, *DEFAULT_CHOICES) if recheck or name not in RECHECK_FIELDS
        }
    else:
        wanted = {}
        for item in (part.strip() for part in text.split(",")):
            name, _, bounds = item.partition("=")
            name = name.strip()
            if name in NOT_TUNABLE:
                raise InputError(
                    None, f"--params: {name} cannot be tuned over cached detections: {NOT_TUNABLE[name]}"
                )
            if name not in RULES:
                raise InputError(
                    None,
                    f"--params: unknown field {name!r}; choose from {', '.join((*DEFAULT_SPACE, *DEFAULT_CHOICES))}",
                )
            if name in RECHECK_FIELDS and not recheck:
                raise InputError(None, f"--params: {name} is a re-check threshold; tuning without re-check")
            wanted[name] = bounds.strip() or None
    space = []
    for name in RULES:  # field order: BYTE's low threshold before what needs it
        if name not in wanted:
            continue
        rule = RULES[name]
        if rule.kind == "choice":
            names = rule.choices if wanted[name] is None else _parse_choices(name, str(wanted[name]))
            space.append(Param(name, rule.kind, 0, 0, choices=names))
            continue
        low, high = DEFAULT_SPACE[name]
        if wanted[name] is not None:
            low, high = _parse_range(name, str(wanted[name]), rule.kind)
        space.append(Param(name, rule.kind, low, high, name in LOG_SCALE))
    return space


def _parse_choices(name: str, text: str) -> tuple[str, ...]:
    """The names of `--params NAME=A:B:...`, each one the field takes, at least two."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(":")))
    rule = RULES[name]
    if len(names) < 2 or not all(rule.accepts(value) for value in names):
        raise InputError(
            None, f"--params: {name}={text}: give two or more of {', '.join(rule.choices)}, ':'-separated"
        )
    return names


def _parse_range(name: str, text: str, kind: str) -> tuple[float, float]:
    rule = RULES[name]
    if kind == "bool":
        raise InputError(None, f"--params: {name} is true or false; give it without a range")
    first, sep, second = text.partition(":")
    try:
        low, high = (int(first), int(second)) if kind == "int" else (float(first), float(second))
    except ValueError:
        low = high = math.nan
    if not sep or not (rule.accepts(low) and rule.accepts(high) and low < high):
        raise InputError(None, f"--params: {name}={text}: give LOW:HIGH, LOW < HIGH, each {rule.words()}")
    return low, high


def detection_floor(space: Sequence[Param], base: TrackerConfig) -> tuple[float, float]:
    """The detection score and re-check heat thresholds to cache at: the lowest any trial uses."""
    ranges = {param.name: param.low for param in space}
    scores = [base.conf, ranges.get("conf", base.conf)]
    if base.byte_low_threshold is not None:
        scores.append(base.byte_low_threshold)
    if "byte_low_threshold" in ranges:
        scores.append(ranges["byte_low_threshold"])
    heat = min(base.recheck_threshold, ranges.get("recheck_threshold", base.recheck_threshold))
    return min(scores), heat


def _threshold(result: DetectionResult, config: TrackerConfig, transductive: bool) -> DetectionResult:
    """The detections a detector at `config`'s thresholds would give (see the module docstring)."""
    floor = config.conf if config.byte_low_threshold is None else config.byte_low_threshold
    keep = result.scores > floor
    trans = (
        result.trans_scores > config.recheck_threshold
        if transductive
        else np.zeros(len(result.trans_scores), bool)
    )
    return result.select(keep, trans)


class CachedDetections:
    """A ready detector for `Tracker`: one sequence's cached frames, thresholded as `config` says.

    Called once per frame in order (the frame itself is not looked at). Re-check candidates are
    the cached ones (the reference run's), given only when the tracker asks with templates.
    """

    def __init__(self, frames: Sequence[DetectionResult], config: TrackerConfig, has_recheck: bool):
        self.frames = frames
        self.config = config
        self.has_recheck = has_recheck
        self.position = 0

    def __call__(self, frame_bgr: np.ndarray, templates: np.ndarray | None = None) -> DetectionResult:
        result = self.frames[self.position]
        self.position += 1
        return _threshold(result, self.config, templates is not None)


class ReplayedMotion:
    """A `MotionEstimator` for `Tracker` that gives one sequence's cached warps in order."""

    def __init__(self, warps: np.ndarray):
        self.warps = warps
        self.position = 0

    def __call__(self, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> Warp:
        warp: Warp = self.warps[self.position]
        self.position += 1
        return warp

    def reset(self) -> None:
        self.position = 0


class _MotionRecorder:
    """The reference run's camera motion: every method's warp of a frame, on the candidates the
    run masks; gives the run its own method's warp (the identity when it has none)."""

    def __init__(self, methods: Sequence[str], own: str):
        self.estimators = {method: CameraMotion(method) for method in methods}
        self.own = own
        self.warps: dict[str, list[Warp]] = {method: [] for method in methods}

    def __call__(self, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> Warp:
        for method, estimator in self.estimators.items():
            self.warps[method].append(estimator(frame_bgr, boxes_xyxy))
        return self.warps[self.own][-1] if self.own in self.warps else identity_warp()

    def reset(self) -> None:
        for estimator in self.estimators.values():
            estimator.reset()


class _Recorder:
    """The detector of the reference run: keeps every low-threshold result, gives the thresholded one."""

    def __init__(self, detector: Any, config: TrackerConfig):
        self.detector = detector
        self.config = config
        self.has_recheck = detector.has_recheck
        self.results: list[DetectionResult] = []

    def __call__(self, frame_bgr: np.ndarray, templates: np.ndarray | None = None) -> DetectionResult:
        result = self.detector(frame_bgr, templates)
        self.results.append(result)
        return _threshold(result, self.config, templates is not None)


@dataclass
class CachedSequence:
    """One sequence's detections, frame numbers, ground truth and the window scored."""

    name: str
    frame_rate: float
    frame_numbers: list[int]
    results: list[DetectionResult]
    gt: np.ndarray
    seq_length: int
    window: FrameRange
    gt_path: Path
    #: Camera-motion method -> every frame's warp (F, 2, 3), for the methods the cache was made with.
    warps: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class DetectionCache:
    """Every sequence's cached detections and what they were computed with: `key` for the
    detections (model, score threshold, NMS ...), `recheck_key` for the re-check candidates
    (heat threshold, reference configuration), None when re-check was off."""

    sequences: list[CachedSequence]
    recheck: bool
    reference: TrackerConfig
    key: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # the detection pass
    recheck_key: dict[str, Any] | None = None
    model_has_recheck: bool = False  # the detector's: without it, no cache has re-check candidates

    def benchmark(self, benchmark: str | None = None) -> str:
        """`benchmark`, or the rules the sequences' ground truth asks for (one for all)."""
        return benchmark or guess_benchmark({sequence.name: sequence.gt for sequence in self.sequences})


def _sequence_of(source: FrameSource) -> tuple[Any, np.ndarray]:
    sequence = source.sequence
    if sequence is None or not sequence.gt_path.is_file():
        raise InputError(source.origin, "cannot tune on it: not a MOTChallenge sequence with gt/gt.txt")
    return sequence, sequence.read_gt()


def cache_detections(
    sources: Sequence[FrameSource],
    detector: Any,
    reference: TrackerConfig | None = None,
    recheck: bool = True,
    progress: bool = True,
    key: dict[str, Any] | None = None,
    recheck_key: dict[str, Any] | None = None,
    cmc_methods: Sequence[str] = (),
) -> DetectionCache:
    """Run `detector` (built at `detection_floor`'s thresholds) once over every frame of `sources`.

    `cmc_methods` (sof, ecc, orb) are the camera-motion methods whose warps are estimated on every
    frame, with the reference's own, for trials that compensate the camera's motion (see the
    module docstring).

    The reference run tracks with `reference` (default: the defaults) and, with `recheck` and a
    model that has it, hands the re-check network that run's track templates; every frame's full
    low-threshold result is kept. Unreadable frames are skipped, as `track` skips them.
    """
    reference = TrackerConfig() if reference is None else reference
    recheck = recheck and bool(detector.has_recheck)
    sequences = []
    methods = sorted({*cmc_methods, reference.cmc} - {"none"})
    started = time.perf_counter()
    for source in sources:
        sequence, gt = _sequence_of(source)
        recorder = _Recorder(detector, reference)
        tracker = Tracker.from_config(recorder, reference, recheck=recheck, frame_rate=source.frame_rate)
        motion = _MotionRecorder(methods, reference.cmc)
        if methods:
            tracker.camera_motion = motion
        numbers = []
        bar = tqdm(
            total=len(source) or None, desc=f"detect {source.name}", unit="frame", disable=not progress
        )
        with bar:
            for number, image in source:
                bar.update(1)
                if image is None:
                    continue
                tracker.update(image)
                numbers.append(number)
        sequences.append(
            CachedSequence(
                source.name,
                source.frame_rate,
                numbers,
                recorder.results,
                gt,
                sequence.info.seq_length,
                source.frames,
                sequence.gt_path,
                {method: np.array(warps).reshape(-1, 2, 3) for method, warps in motion.warps.items()},
            )
        )
    seconds = time.perf_counter() - started
    recheck_key = dict(recheck_key or {}) if recheck else None
    has_recheck = bool(detector.has_recheck)
    return DetectionCache(sequences, recheck, reference, dict(key or {}), seconds, recheck_key, has_recheck)


def add_camera_motion(
    cache: DetectionCache, sources: Sequence[FrameSource], methods: Sequence[str], progress: bool = True
) -> None:
    """Estimate every cached frame's camera-motion warp with each of `methods` it lacks (sof, ecc,
    orb; none needs nothing), masked on the cached detections, into the sequences' `warps`: for a
    cache made without them (the detections at the floor threshold mask a few more boxes)."""
    for sequence, source in zip(cache.sequences, sources):
        estimators = {
            method: CameraMotion(method)
            for method in methods
            if method != "none" and method not in sequence.warps
        }
        if not estimators:
            continue
        warps: dict[str, list[Warp]] = {method: [] for method in estimators}
        results = iter(sequence.results)
        bar = tqdm(
            total=len(sequence.results),
            desc=f"camera motion {source.name}",
            unit="frame",
            disable=not progress,
        )
        with bar:
            for _, image in source:
                if image is None:
                    continue
                bar.update(1)
                boxes = next(results).boxes_xyxy
                for method, estimator in estimators.items():
                    warps[method].append(estimator(image, boxes))
        sequence.warps.update(
            {method: np.array(values).reshape(-1, 2, 3) for method, values in warps.items()}
        )


def track_cached(sequence: CachedSequence, config: TrackerConfig, recheck: bool) -> np.ndarray:
    """The results table (M, 7) of tracking one cached sequence with `config`, as `track` writes it."""
    tracker = Tracker.from_config(
        CachedDetections(sequence.results, config, recheck),
        config,
        recheck=recheck,
        frame_rate=sequence.frame_rate,
    )
    if config.cmc != "none":
        if config.cmc not in sequence.warps:
            raise InputError(None, f"the detection cache holds no {config.cmc} camera-motion warps")
        tracker.camera_motion = ReplayedMotion(sequence.warps[config.cmc])
    rows = []
    for number in sequence.frame_numbers:
        frame_rows = filter_results(results_rows(number, tracker.update(_FRAME)))
        rows.append(frame_rows[np.argsort(frame_rows[:, ID], kind="stable")])
    if not rows:
        return np.zeros((0, 7))
    # Scored as `track` scores them: as the MOT file reads back (2 decimals), rows by id in a frame.
    lines = format_results(np.vstack(rows)).splitlines()
    return np.array([line.split(",")[:7] for line in lines], dtype=float).reshape(len(lines), 7)


def score_config(
    cache: DetectionCache, config: TrackerConfig, benchmark: str | None = None
) -> dict[str, Any]:
    """`evaluate_tables`'s scores ({"sequences": ..., "combined": ...}) of `config` on the cache."""
    tables = {
        sequence.name: frame_window(
            SequenceTables(sequence.gt, track_cached(sequence, config, cache.recheck), sequence.seq_length),
            sequence.window,
            gt_path=sequence.gt_path,
        )
        for sequence in cache.sequences
    }
    return evaluate_tables(tables, cache.benchmark(benchmark))


@dataclass
class Trial:
    """One trial: its number, configuration, scores (combined) and state ('COMPLETE', 'PRUNED')."""

    number: int
    config: TrackerConfig | None
    scores: dict[str, Any] | None
    state: str
    seconds: float = 0.0


@dataclass
class TuneResult:
    metric: str
    base: TrackerConfig
    base_scores: dict[str, Any]
    best: Trial
    trials: list[Trial]

    @property
    def best_config(self) -> TrackerConfig:
        assert self.best.config is not None
        return self.best.config


def direction(metric: str) -> str:
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"


def _suggest(trial: Any, space: Sequence[Param], base: TrackerConfig) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for param in space:
        needed = NEEDS.get(param.name)
        if needed is not None and not values.get(needed, getattr(base, needed)):
            continue  # e.g. BYTE's IoU limit while BYTE is off
        if param.kind == "choice":
            values[param.name] = trial.suggest_categorical(param.name, list(param.choices))
        elif param.kind == "bool":
            values[param.name] = trial.suggest_categorical(param.name, [False, True])
        elif param.kind == "float?":
            on = trial.suggest_categorical(param.name + ON, [False, True])
            values[param.name] = trial.suggest_float(param.name, param.low, param.high) if on else None
        elif param.kind == "int":
            values[param.name] = trial.suggest_int(param.name, int(param.low), int(param.high))
        else:
            values[param.name] = trial.suggest_float(param.name, param.low, param.high, log=param.log)
    return values


def _rounded(values: dict[str, Any], base: TrackerConfig) -> dict[str, Any]:
    """Floats to 3 significant digits, for configurations that read well; the base's own values
    (trial 0) as they are. Trials are scored with the rounded values."""
    return {
        name: float(f"{value:.3g}") if isinstance(value, float) and value != getattr(base, name) else value
        for name, value in values.items()
    }


def _base_params(space: Sequence[Param], base: TrackerConfig) -> dict[str, Any]:
    """The trial parameters that give `base` (enqueued as trial 0)."""
    params: dict[str, Any] = {}
    for param in space:
        value = getattr(base, param.name)
        if param.kind == "float?":
            params[param.name + ON] = value is not None
            if value is None:
                continue
        params[param.name] = value
    return params


def tune(
    cache: DetectionCache,
    space: Sequence[Param],
    trials: int = 50,
    metric: str = "HOTA",
    seed: int = 0,
    base: TrackerConfig | None = None,
    benchmark: str | None = None,
    progress: bool = True,
    on_trial: Callable[[Trial], None] | None = None,
) -> TuneResult:
    """Search `space` with Optuna's TPE sampler (seeded) for the best `metric` on `cache`.

    Trial 0 is `base` (default: the cache's reference configuration), so the best is never worse
    than it. A trial whose values are inconsistent (BYTE's low threshold not below conf) is pruned.
    """
    optuna = require_optuna()
    if metric not in METRICS:
        raise InputError(None, f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    if trials < 1:
        raise InputError(None, f"--trials must be >= 1, got {trials}")
    base = cache.reference if base is None else base
    benchmark = cache.benchmark(benchmark)
    done: list[Trial] = []

    def objective(trial: Any) -> float:
        started = time.perf_counter()
        try:
            config = base.replace(**_rounded(_suggest(trial, space, base), base))
        except InputError as error:
            done.append(Trial(trial.number, None, None, "PRUNED", time.perf_counter() - started))
            raise optuna.TrialPruned(error.problem) from None
        scores = score_config(cache, config, benchmark)["combined"]
        record = Trial(trial.number, config, scores, "COMPLETE", time.perf_counter() - started)
        done.append(record)
        if on_trial is not None:
            on_trial(record)
        return float(scores[metric])

    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction=direction(metric), sampler=sampler)
    study.enqueue_trial(_base_params(space, base))
    with tqdm(total=trials, desc="tune", unit="trial", disable=not progress) as bar:

        def advance(_study: Any, frozen: Any) -> None:
            bar.update(1)
            if frozen.value is not None:
                bar.set_postfix(
                    {metric: f"{frozen.value:.4g}", "best": f"{_study.best_value:.4g}"}, refresh=False
                )

        study.optimize(objective, n_trials=trials, callbacks=[advance])
    complete = [trial for trial in done if trial.scores is not None]
    sign = -1 if direction(metric) == "minimize" else 1
    best = max(complete, key=lambda trial: sign * float(trial.scores[metric]))  # type: ignore[index]
    assert done[0].scores is not None, "the base trial is never pruned"
    return TuneResult(metric, base, done[0].scores, best, done)


def require_optuna() -> Any:
    from cstrack.optional import require

    optuna = require("optuna", "tune", feature="cstrack tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# --- the cache on disk: numpy .npz (no pickle), one array per field per frame, and a JSON key.


def save_cache(cache: DetectionCache, path: str | PathLike[str]) -> Path:
    """Write the detections to an .npz (atomically); the gt is read from the sequences again."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    sequences = []
    for index, sequence in enumerate(cache.sequences):
        sequences.append({"name": sequence.name, "frames": sequence.frame_numbers})
        for method, warps in sequence.warps.items():
            arrays[f"{index}/warps/{method}"] = warps
        for position, result in enumerate(sequence.results):
            for item in dataclasses.fields(result):
                value = getattr(result, item.name)
                if value is not None:
                    arrays[f"{index}/{position}/{item.name}"] = np.asarray(value)
    meta = {
        "format": _CACHE_FORMAT,
        "key": cache.key,
        "recheck": cache.recheck,
        "recheck_key": cache.recheck_key,
        "model_has_recheck": cache.model_has_recheck,
        "reference": cache.reference.as_dict(),
        "sequences": sequences,
        "seconds": cache.seconds,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    temporary = temporary_path(path, ".tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(temporary, allow_pickle=False, **arrays)
        temporary.replace(path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise InputError(path, f"cannot write the detection cache: {error.strerror or error}") from error
    return path


def load_cache(
    path: str | PathLike[str],
    sources: Sequence[FrameSource],
    key: dict[str, Any],
    recheck_key: dict[str, Any] | None = None,
) -> DetectionCache | None:
    """The cache at `path` if it was made for `sources` with `key` (model, thresholds ...) and, when
    `recheck_key` is given, re-check candidates made with it; else None. A cache made at lower
    thresholds (`FLOORS`) serves too, its detections filtered as every trial filters them; and
    without `recheck_key` so does one made with re-check (its detections do not depend on the
    templates), as a cache without re-check."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != _CACHE_FORMAT or not _serves(meta.get("key"), key):
                return None
            with_recheck = meta["recheck"] and _serves(meta["recheck_key"], recheck_key or {})
            if recheck_key is not None and not (with_recheck or not meta.get("model_has_recheck", True)):
                return None  # no re-check candidates for a model that has re-check
            names = [source.name for source in sources]
            if [entry["name"] for entry in meta["sequences"]] != names:
                return None
            fields = [item.name for item in dataclasses.fields(DetectionResult)]
            sequences = []
            for index, (source, entry) in enumerate(zip(sources, meta["sequences"])):
                sequence, gt = _sequence_of(source)
                results = [
                    DetectionResult(
                        **{
                            name: data[f"{index}/{position}/{name}"]
                            for name in fields
                            if f"{index}/{position}/{name}" in data
                        }
                    )
                    for position in range(len(entry["frames"]))
                ]
                sequences.append(
                    CachedSequence(
                        source.name,
                        source.frame_rate,
                        list(entry["frames"]),
                        results,
                        gt,
                        sequence.info.seq_length,
                        source.frames,
                        sequence.gt_path,
                        {
                            name.rsplit("/", 1)[1]: data[name]
                            for name in data.files
                            if name.startswith(f"{index}/warps/")
                        },
                    )
                )
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise InputError(path, f"cannot read the detection cache: {error}") from None
    reference = TrackerConfig(**meta["reference"])
    recheck = recheck_key is not None and bool(meta["recheck"])
    seconds = float(meta.get("seconds", 0.0))
    recheck_key = recheck_key if recheck else None
    has_recheck = bool(meta.get("model_has_recheck", True))
    return DetectionCache(sequences, recheck, reference, key, seconds, recheck_key, has_recheck)


def _serves(stored: Any, wanted: dict[str, Any]) -> bool:
    """Whether a cache made with `stored` holds what `wanted` needs: the same values, but a floor
    (`FLOORS`) at most the one wanted."""
    wanted = _as_json(wanted)
    if not isinstance(stored, dict) or set(stored) != set(wanted):
        return False
    for name, value in wanted.items():
        if name in FLOORS:
            if not (isinstance(stored[name], (int, float)) and stored[name] <= value):
                return False
        elif stored[name] != value:
            return False
    return True


def _as_json(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), to compare with a stored key."""
    return json.loads(json.dumps(value))

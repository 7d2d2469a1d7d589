"""The detection cache of `cstrack tune`: the network run once per sequence, every trial then
associating the cached detections (`score_config`), and the cache on disk.

The network runs once per sequence (`cache_detections`), at the lowest detection threshold and
re-check heat threshold of the search space; each trial then only filters those detections by
its own thresholds (`DetectionResult.above`, exact), associates them (`Tracker.associate`, a
tracker without a detector) and scores the rows as `track` writes them with
`cstrack.evaluation.evaluate_tables`. The NMS IoU changes which boxes survive, so it is fixed for
a study (`nms_iou` of the base configuration).

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
candidates it associates, and trials replay them (`JDETracker.compensate_camera`): exact for the
base trial, the same masks (not their own) for the others.
"""

from __future__ import annotations

import dataclasses
import json
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cstrack.atomic import temporary_path
from cstrack.data.mot import MotSequence
from cstrack.data.sources import FrameRange, FrameSource
from cstrack.errors import InputError
from cstrack.evaluation import SequenceTables, evaluate_tables, frame_window, guess_benchmark
from cstrack.pipeline.camera_motion import CameraMotion, Warp, identity_warp
from cstrack.pipeline.end_to_end import RecordingDetector, Tracker
from cstrack.pipeline.tracker_config import TrackerConfig
from cstrack.tracking.detections import DetectionResult
from cstrack.tracking.protocols import FrameDetector
from cstrack.tracking.rows import written_rows

#: The thresholds in a cache's key below which nothing is kept: a cache made lower serves higher.
FLOORS = frozenset({"conf", "recheck_threshold"})
_CACHE_FORMAT = 1


def _thresholds(config: TrackerConfig) -> tuple[float, float]:
    """The detection score and re-check heat that the detector of `config` keeps above (with BYTE
    on, its low threshold is the detector's)."""
    byte_low = config.association.byte_low_threshold
    return config.detector.conf if byte_low is None else byte_low, config.recheck.recheck_threshold


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


def _sequence_of(source: FrameSource) -> tuple[MotSequence, np.ndarray]:
    sequence = source.sequence
    if sequence is None or not sequence.gt_path.is_file():
        raise InputError(source.origin, "cannot tune on it: not a MOTChallenge sequence with gt/gt.txt")
    return sequence, sequence.read_gt()


def cache_detections(
    sources: Sequence[FrameSource],
    detector: FrameDetector,
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
    model that has it, hands the re-check network that run's track templates, every active one
    (no cover selection: the candidates serve every trial); every frame's full low-threshold
    result is kept. Unreadable frames are skipped, as `track` skips them.
    """
    reference = TrackerConfig() if reference is None else reference
    recheck = recheck and bool(detector.has_recheck)
    sequences = []
    methods = sorted({*cmc_methods, reference.association.cmc} - {"none"})
    started = time.perf_counter()
    for source in sources:
        sequence, gt = _sequence_of(source)
        results: list[DetectionResult] = []
        recorder = RecordingDetector(detector, *_thresholds(reference), results.append)
        tracker = Tracker(recorder, reference, recheck=recheck, frame_rate=source.frame_rate)
        motion = _MotionRecorder(methods, reference.association.cmc)
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
                results,
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
    """The rows (M, 7) of tracking one cached sequence with `config`, as `track` writes them."""
    warps = None
    cmc = config.association.cmc
    if cmc != "none":
        if cmc not in sequence.warps:
            raise InputError(None, f"the detection cache holds no {cmc} camera-motion warps")
        warps = sequence.warps[cmc]
    # The reference run's warps are replayed: the tracker estimates none (it sees no frames).
    tracker = Tracker(None, config.replace(cmc="none"), recheck=recheck, frame_rate=sequence.frame_rate)
    score, heat = _thresholds(config)
    rows = []
    for position, (number, result) in enumerate(zip(sequence.frame_numbers, sequence.results)):
        if warps is not None:
            tracker.association.compensate_camera(warps[position])
        rechecked = tracker.recheck_templates() is not None
        tracks = tracker.associate(result.above(score, heat if rechecked else None))
        rows.append(written_rows(number, tracks))
    return np.vstack(rows) if rows else np.zeros((0, 7))


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
    reference = TrackerConfig().replace(**meta["reference"])
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

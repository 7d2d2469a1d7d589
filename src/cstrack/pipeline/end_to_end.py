"""Frames in, tracks out: the CSTrack/OMC network and the JDE cascade as one object.

    from cstrack import Tracker
    tracker = Tracker()                 # the bundled model; or a model name, a .safetensors file,
                                        # a module or a Detector
    tracks = tracker.update(frame_bgr)  # list of Track
    tracker.reset()

With an OMC model each frame's active track templates go to the re-check network, and its
transductive detections join the candidates through OMC's fusion (paper eq. 10) before
association. The model and the association are timed separately.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from torch import nn

from cstrack.errors import InputError
from cstrack.models.classes import DEFAULT_CLASS_NAMES
from cstrack.models.inference import check_frame
from cstrack.models.pretrained import DEFAULT_PRETRAINED
from cstrack.pipeline.backends import DEFAULT_BACKEND, build_detector
from cstrack.pipeline.camera_motion import MotionEstimator, build_camera_motion
from cstrack.tracking.candidates import (
    Candidates,
    drop_flat,
    fuse_candidates,
    join_candidates,
    split_candidates,
    take_candidates,
)
from cstrack.tracking.jde_tracker import JDETracker
from cstrack.tracking.track_state import Track

if TYPE_CHECKING:
    from cstrack.pipeline.tracker_config import TrackerConfig


@dataclass
class Timing:
    """Seconds spent in the network, in association and in camera-motion estimation (`cmc`,
    counted apart from association), and the frames they cover."""

    model: float = 0.0
    association: float = 0.0
    frames: int = 0
    cmc: float = 0.0

    def ms_per_frame(self) -> tuple[float, float]:
        count = max(self.frames, 1)
        return 1000 * self.model / count, 1000 * self.association / count

    def cmc_ms_per_frame(self) -> float:
        return 1000 * self.cmc / max(self.frames, 1)


DEFAULT_MODEL = DEFAULT_PRETRAINED


class Tracker:
    """The end-to-end one-shot tracker: a `cstrack.models.Detector` plus the JDE cascade.

    `model` is a registry name, a .safetensors file, a network module (any variant: a
    `cstrack.models.TrackingNetwork`), or a ready detector:
    a `cstrack.models.Detector` or any callable `(frame_bgr, templates) -> DetectionResult` with a
    `has_recheck` attribute (then `arch`, `img_size`, `device`, `half`, `backend`, `providers` and
    `conf` are not used). `backend` is auto (ONNX Runtime on the CPU when it is installed, else
    PyTorch), torch or onnx, `providers` ONNX Runtime's execution providers (see
    `cstrack.pipeline.backends`). `recheck` enables OMC's re-check when the model has it; `fusion_eps` is eq. 10's
    epsilon; re-check candidates only continue existing tracks unless `recheck_starts_tracks` (the
    release lets them start tracks too, which adds false positives on occlusion-heavy synthetic
    sequences). `recheck_cover_iou` re-checks only the tracks that no detection covers (IoU at
    least this with the track's next box), and runs no re-check network when every track is
    covered: eq. 10 would drop what the search finds near a detection anyway (None: every track,
    every frame, as the paper). Other keyword arguments go to `JDETracker` (its thresholds); `detector_options`
    to the `Detector` built here (`iou_threshold`, `recheck_threshold` ...). `from_config` builds
    one from a `cstrack.pipeline.tracker_config.TrackerConfig`, every threshold in one object.

    `byte_low_threshold` (off by default) turns on ByteTrack's BYTE second stage: the detector
    built here then keeps boxes down to that score (objectness and score thresholds lowered to
    it), the tracker treats those scoring >= `conf` as detections proper, and matches tracked
    tracks to the rest by IoU only (see `JDETracker`). A ready detector must return the low
    boxes itself; `conf` is then only the tracker's high threshold. OMC's re-check fusion sees
    the detections proper only, and re-check candidates always go through the cascade.

    `cmc` (none, sof, ecc or orb; see `cstrack.pipeline.camera_motion`) estimates the camera's
    motion between frames, with the frame's candidates masked out, and moves the tracks by it
    before association; `reid_seconds` (a `JDETracker` option) keeps lost tracks that long for
    re-identification by appearance.

    With a multi-class model every candidate carries its class and tracks keep theirs
    (`class_aware=False`, a JDETracker option, associates across classes); `classes` keeps only
    the detections of those classes (indices or names). `class_names` are the detector's.
    """

    def __init__(
        self,
        model: Any = DEFAULT_MODEL,
        *,
        arch: str | None = None,
        img_size: tuple[int, int] | None = None,
        device: str = "auto",
        half: bool = False,
        backend: str = DEFAULT_BACKEND,
        providers: str | Sequence[str] | None = None,
        conf: float = 0.5,
        frame_rate: float = 30.0,
        recheck: bool = True,
        fusion_eps: float = 0.5,
        recheck_starts_tracks: bool = False,
        recheck_cover_iou: float | None = 0.5,
        byte_low_threshold: float | None = None,
        classes: Sequence[int | str] | None = None,
        cmc: str = "ecc",
        detector_options: Mapping[str, Any] | None = None,
        **tracker_options: Any,
    ):
        from cstrack.pipeline.tracker_config import TrackerConfig  # it reads this module's defaults

        own = {
            "conf": conf,
            "fusion_eps": fusion_eps,
            "recheck_starts_tracks": recheck_starts_tracks,
            "recheck_cover_iou": recheck_cover_iou,
        }
        TrackerConfig.from_options({**tracker_options, **own, "byte_low_threshold": byte_low_threshold},
                                   detector_options or {})  # fmt: skip
        if byte_low_threshold is not None:
            tracker_options = {"byte_high_threshold": conf, **tracker_options}
            tracker_options["byte_low_threshold"] = byte_low_threshold
        self._tracker_options = tracker_options
        self.association = JDETracker(frame_rate=frame_rate, **tracker_options)  # checks them first
        #: Estimates each frame's camera motion (None: off); any `MotionEstimator` may replace it.
        self.camera_motion: MotionEstimator | None = build_camera_motion(cmc)
        self.byte_high_threshold = (
            None if byte_low_threshold is None else self.association.byte_high_threshold
        )
        if isinstance(model, (str, PathLike, nn.Module)):
            detector_conf = conf if byte_low_threshold is None else byte_low_threshold
            detector = build_detector(
                model,
                arch,
                img_size,
                device,
                half,
                backend,
                detector_conf,
                providers=providers,
                **(detector_options or {}),
            )
        elif callable(model) and hasattr(model, "has_recheck"):
            detector = model
        else:
            raise TypeError(
                "model must be a model name, a .safetensors path, a network module or a detector "
                f"(a callable with has_recheck), not {type(model).__name__}"
            )
        self.detector = detector
        self.recheck = recheck and detector.has_recheck
        self.fusion_eps = fusion_eps
        self.recheck_starts_tracks = recheck_starts_tracks
        self.recheck_cover_iou = recheck_cover_iou
        self.class_names: tuple[str, ...] = tuple(getattr(detector, "class_names", DEFAULT_CLASS_NAMES))
        self.classes = None if classes is None else class_indices(classes, self.class_names)
        self.timing = Timing()
        #: The configuration `from_config` built this tracker with (None when built from keywords).
        self.config: TrackerConfig | None = None

    @classmethod
    def from_config(
        cls, model: Any = DEFAULT_MODEL, config: TrackerConfig | None = None, **options: Any
    ) -> Tracker:
        """A tracker with every threshold of `config` (default: the defaults), kept as `.config`;
        `options` are the other keywords of `Tracker` (device, recheck, frame_rate ...)."""
        from cstrack.pipeline.tracker_config import TrackerConfig

        config = TrackerConfig() if config is None else config
        tracker = cls(model, **config.tracker_options(), **options)
        tracker.config = config
        return tracker

    def reset(self, frame_rate: float | None = None) -> None:
        """Start a new sequence: no tracks, ids from 1, timing kept."""
        if frame_rate is not None and frame_rate != self.association.frame_rate:
            self.association = JDETracker(frame_rate=frame_rate, **self._tracker_options)
        else:
            self.association.reset()
        if self.camera_motion is not None:
            self.camera_motion.reset()

    def update(self, frame_bgr: np.ndarray, detections: ArrayLike | None = None) -> list[Track]:
        """Detect, re-check and associate one frame; returns the confirmed tracked tracks.

        The frame is what OpenCV reads: a BGR uint8 HxWx3 numpy array, H, W >= 1. Anything else
        (None, RGBA, grey, float or uint16 images) raises InputError naming what was given, since
        the network would track it as garbage. Detected boxes of zero width or height are dropped.

        `detections`, (N, 5) or (N, 6) x1, y1, x2, y2, score[, class] in frame pixels from any
        detector, replace the network's own: appearance is read from the network's embedding map
        at their boxes (`Detector.__call__`), so association still matches by appearance, and
        each track's `detection_index` is the row it matched this frame (-1: an OMC re-check
        candidate). Scores below the new-track threshold (`new_track_thresh`) start no
        tracks; classes are the detector's own indices (what `classes=` then selects).
        """
        start = time.perf_counter()
        check_frame(frame_bgr)
        if detections is not None and not getattr(self.detector, "takes_detections", False):
            raise InputError(
                None, "detections= needs a cstrack Detector, which reads appearance at the boxes"
            )
        templates: Any = None
        if self.recheck:
            active = self.association.active_templates()
            templates = active if len(active) else None
            if (
                templates is not None
                and self.recheck_cover_iou is not None
                and getattr(self.detector, "selects_templates", False)
            ):
                templates = partial(self.association.uncovered_templates, cover_iou=self.recheck_cover_iou)
        if detections is None:
            result = self.detector(frame_bgr, templates)
        else:
            result = self.detector(frame_bgr, templates, detections)
        middle = time.perf_counter()
        candidates = self._wanted(
            Candidates(
                result.boxes_xyxy,
                result.scores,
                result.embeddings,
                _classes(result, "classes"),
                np.arange(len(result.scores)),
            )
        )
        weak = None
        if self.byte_high_threshold is not None:
            candidates, weak = split_candidates(candidates, candidates.scores >= self.byte_high_threshold)
        may_start = None
        if templates is not None:
            basic = len(candidates.scores)
            transductive = self._wanted(
                Candidates(
                    result.trans_boxes_xyxy,
                    result.trans_scores,
                    result.trans_embeddings,
                    _classes(result, "trans_classes"),
                    np.full(len(result.trans_scores), -1),
                )
            )
            candidates = fuse_candidates(candidates, transductive, self.fusion_eps)
            if not self.recheck_starts_tracks:
                may_start = np.arange(len(candidates.scores)) < basic
        low_score = None
        if weak is not None:  # BYTE: the low-score boxes go last, marked as such
            low_score = np.arange(len(candidates.scores) + len(weak.scores)) >= len(candidates.scores)
            if may_start is not None:
                may_start = np.concatenate([may_start, np.zeros(len(weak.scores), bool)])
            candidates = join_candidates(candidates, weak)
        boxes, scores, embeddings, classes, detection = candidates
        cmc_seconds = 0.0
        if self.camera_motion is not None:
            estimated = time.perf_counter()
            self.association.compensate_camera(self.camera_motion(frame_bgr, boxes))
            cmc_seconds = time.perf_counter() - estimated
        tracks = self.association.update(boxes, scores, embeddings, may_start, low_score, classes, detection)
        end = time.perf_counter()
        self.timing.model += middle - start
        self.timing.association += end - middle - cmc_seconds
        self.timing.cmc += cmc_seconds
        self.timing.frames += 1
        return tracks

    def _wanted(self, candidates: Candidates) -> Candidates:
        """The candidates of the wanted classes, without flat boxes."""
        candidates = drop_flat(candidates)
        if self.classes is None:
            return candidates
        classes = candidates.classes
        if classes is None:
            classes = np.zeros(len(candidates.scores), dtype=np.int64)
        return take_candidates(candidates, np.isin(classes, self.classes))


def class_indices(classes: Sequence[int | str], class_names: tuple[str, ...]) -> np.ndarray:
    """Sorted class indices of `classes`, each an index (int or digits) or a name of `class_names`."""
    known = {
        **{name: index for index, name in enumerate(class_names)},
        **{str(i): i for i in range(len(class_names))},
    }
    unknown = [item for item in classes if str(item) not in known]
    if unknown:
        choices = ", ".join(f"{i} {name}" for i, name in enumerate(class_names))
        raise InputError(None, f"unknown class {unknown[0]!r}: the model's classes are {choices}")
    return np.unique(np.array([known[str(item)] for item in classes], dtype=np.int64))


def _classes(result: Any, name: str) -> np.ndarray | None:
    """A DetectionResult's class indices (`classes` or `trans_classes`); None from a detector that
    predates them or has one class."""
    values = getattr(result, name, None)
    return None if values is None else np.asarray(values, dtype=np.int64)

"""Frames in, tracks out: the CSTrack/OMC network and the JDE cascade as one object.

    from cstrack import Tracker
    tracker = Tracker()                 # the bundled model; or a model name, a .safetensors file,
                                        # a module or a Detector
    tracks = tracker.update(frame_bgr)  # list of Track
    tracker.reset()

`update(frame)` is `associate(detect(frame), frame)`: `detect` runs the detector, with OMC's
re-check searching for the active track templates; `associate` takes any ready
`cstrack.tracking.DetectionResult` (cached detections, a detector run at other thresholds), joins
its re-check candidates through OMC's fusion (paper eq. 10) and runs the JDE cascade. The model
and the association are timed separately.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from os import PathLike
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from torch import nn

from cstrack.backends.choice import build_detector
from cstrack.config import DEFAULT_FRAME_RATE, DEFAULT_MODEL, RuntimeConfig
from cstrack.errors import InputError
from cstrack.models.classes import DEFAULT_CLASS_NAMES
from cstrack.models.inference import check_frame
from cstrack.pipeline.camera_motion import MotionEstimator, build_camera_motion
from cstrack.pipeline.tracker_config import TrackerConfig
from cstrack.tracking.detections import DetectionResult, Templates, fuse_candidates
from cstrack.tracking.jde_tracker import JDETracker
from cstrack.tracking.protocols import FrameDetector
from cstrack.tracking.track_state import Track


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


class Tracker:
    """The end-to-end one-shot tracker: a `cstrack.models.Detector` plus the JDE cascade.

    `model` is a registry name, a .safetensors file, a network module (any variant: a
    `cstrack.models.TrackingNetwork`), a ready detector (a `cstrack.models.Detector` or any
    `cstrack.tracking.FrameDetector`), or None: no detector, for a tracker that only associates
    ready results (`associate`), which carry re-check candidates when `recheck`. `config` (a
    `TrackerConfig`, checked when made; `TrackerConfig.load` reads `tracker.yaml`) holds every
    setting: the detector's (`config.detector`, used for the detector built here), the
    association's (`config.association`, `JDETracker`'s) and OMC's re-check's (`config.recheck`).
    `runtime` (`cstrack.config.RuntimeConfig`: backend, device, half, providers) and `arch` say
    how the detector built here runs; with a ready detector or None they are not used.

    `recheck` enables OMC's re-check when the model has it; re-check candidates join through
    OMC's fusion (eq. 10, `fusion_eps`) and only continue existing tracks unless
    `recheck_starts_tracks` (the release lets them start tracks too, which adds false positives
    on occlusion-heavy synthetic sequences). `recheck_cover_iou` re-checks only the tracks that
    no detection covers (IoU at least this with the track's next box), and runs no re-check
    network when every track is covered: eq. 10 would drop what the search finds near a
    detection anyway (None: every track, every frame, as the paper).

    `byte_low_threshold` (off by default) turns on ByteTrack's BYTE second stage: the detector
    built here then keeps boxes down to that score (its `conf` lowered to it), the tracker treats
    those scoring >= `conf` as detections proper, and matches tracked tracks to the rest by IoU
    only (see `JDETracker`). A ready detector must return the low boxes itself; `conf` is then
    only the tracker's high threshold. OMC's re-check fusion sees the detections proper only,
    and re-check candidates always go through the cascade.

    `cmc` (see `cstrack.pipeline.camera_motion`) estimates the camera's motion between frames,
    with the frame's candidates masked out, and moves the tracks by it before association.

    With a multi-class model every candidate carries its class and tracks keep theirs (unless
    `class_aware` is off); `classes` keeps only the detections of those classes (indices or
    names). `class_names` are the detector's.
    """

    def __init__(
        self,
        model: Any = DEFAULT_MODEL,
        config: TrackerConfig = TrackerConfig(),
        runtime: RuntimeConfig = RuntimeConfig(),
        *,
        arch: str | None = None,
        frame_rate: float = DEFAULT_FRAME_RATE,
        recheck: bool = True,
        classes: Sequence[int | str] | None = None,
    ):
        self.config = config
        low = config.association.byte_low_threshold
        #: BYTE's high threshold: detections scoring below it go to its low-score stage (None: off).
        self.byte_high_threshold = None if low is None else config.detector.conf
        self.association = self._association(frame_rate)
        #: Estimates each frame's camera motion (None: off); any `MotionEstimator` may replace it.
        self.camera_motion: MotionEstimator | None = build_camera_motion(config.association.cmc)
        if isinstance(model, (str, PathLike, nn.Module)):
            # With BYTE on, the detector keeps the low-score boxes too.
            kept = config.detector if low is None else dataclasses.replace(config.detector, conf=low)
            detector = build_detector(model, kept, config.recheck, runtime, arch=arch)
        elif model is None or (callable(model) and hasattr(model, "has_recheck")):
            detector = model
        else:
            raise TypeError(
                "model must be a model name, a .safetensors path, a network module, a detector "
                f"(a callable with has_recheck) or None, not {type(model).__name__}"
            )
        self.detector: FrameDetector | None = detector
        self.recheck = recheck and (detector is None or detector.has_recheck)
        self.class_names: tuple[str, ...] = tuple(getattr(detector, "class_names", DEFAULT_CLASS_NAMES))
        self.classes = None if classes is None else selected_class_indices(classes, self.class_names)
        self.timing = Timing()

    def _association(self, frame_rate: float) -> JDETracker:
        return JDETracker(
            self.config.association, frame_rate=frame_rate, byte_high_threshold=self.byte_high_threshold
        )

    def reset(self, frame_rate: float | None = None) -> None:
        """Start a new sequence: no tracks, ids from 1, timing kept."""
        if frame_rate is not None and frame_rate != self.association.frame_rate:
            self.association = self._association(frame_rate)
        else:
            self.association.reset()
        if self.camera_motion is not None:
            self.camera_motion.reset()

    def update(self, frame_bgr: np.ndarray, detections: ArrayLike | None = None) -> list[Track]:
        """Detect, re-check and associate one frame (`associate(detect(frame_bgr, detections),
        frame_bgr)`); returns the confirmed tracked tracks.

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
        return self.associate(self.detect(frame_bgr, detections), frame_bgr)

    def recheck_templates(self) -> Templates | None:
        """What OMC's re-check searches for in the next frame: the confirmed tracked tracks'
        templates, or, with `recheck_cover_iou` and a detector that `selects_templates`, the
        function of its detected boxes that picks those of the tracks no box covers; None: no
        re-check (it is off, or no track has a template yet)."""
        if not self.recheck:
            return None
        active = self.association.active_templates()
        if len(active) == 0:
            return None
        cover_iou = self.config.recheck.recheck_cover_iou
        if cover_iou is not None and getattr(self.detector, "selects_templates", False):
            return partial(self.association.uncovered_templates, cover_iou=cover_iou)
        return active

    def detect(self, frame_bgr: np.ndarray, detections: ArrayLike | None = None) -> DetectionResult:
        """The detector's result for one frame, with the re-check candidates of
        `recheck_templates`; `detections` (another detector's boxes) as `update` takes them."""
        start = time.perf_counter()
        if not getattr(self.detector, "checks_frames", False):  # the frame is checked once
            check_frame(frame_bgr)
        if self.detector is None:
            raise InputError(None, "this tracker has no detector: give associate() ready detections")
        if detections is not None and not getattr(self.detector, "takes_detections", False):
            raise InputError(
                None, "detections= needs a cstrack Detector, which reads appearance at the boxes"
            )
        templates = self.recheck_templates()
        if detections is None:
            result = self.detector(frame_bgr, templates)
        else:
            result = self.detector(frame_bgr, templates, detections)
        self.timing.model += time.perf_counter() - start
        return result

    def associate(self, result: DetectionResult, frame_bgr: np.ndarray | None = None) -> list[Track]:
        """Associate one frame's detections (`detect`'s, or any ready result); returns the
        confirmed tracked tracks.

        Boxes of zero width or height are dropped (clipping to the image flattens the boxes lying
        outside it; a flat box has no aspect ratio to track, and `cstrack eval` refuses the
        zero-size rows such a track would write), and with `classes` those of other classes. With
        BYTE on, the detections scoring below `conf` go to its low-score stage. With the re-check
        on, the re-check candidates join through OMC's fusion (`fuse_candidates`); off, they are
        ignored. Each detection reports its position in `result` as `Track.detection_index`
        unless `result` names its own. `frame_bgr`, the frame of `result`, is what camera-motion
        estimation reads: it is needed while `camera_motion` is on.
        """
        start = time.perf_counter()
        if self.camera_motion is not None and frame_bgr is None:
            raise InputError(
                None, "camera-motion estimation reads the frame: give associate() frame_bgr, or use cmc none"
            )
        result = self._wanted(result)
        if self.byte_high_threshold is not None:
            low = ~(result.scores >= self.byte_high_threshold)
            result = dataclasses.replace(result, low_score=low)
        fusion = self.config.recheck
        result = fuse_candidates(result, fusion.fusion_eps, fusion.recheck_starts_tracks)
        cmc_seconds = 0.0
        if self.camera_motion is not None and frame_bgr is not None:
            estimated = time.perf_counter()
            self.association.compensate_camera(self.camera_motion(frame_bgr, result.boxes_xyxy))
            cmc_seconds = time.perf_counter() - estimated
        tracks = self.association.update(result)
        self.timing.association += time.perf_counter() - start - cmc_seconds
        self.timing.cmc += cmc_seconds
        self.timing.frames += 1
        return tracks

    def _wanted(self, result: DetectionResult) -> DetectionResult:
        """`result` as it is associated: each detection indexed (its position, unless `result`
        names its own), flat boxes and the detections of unwanted classes dropped, and the
        re-check candidates too when the re-check is off."""
        if result.detection_index is None:
            result = dataclasses.replace(result, detection_index=np.arange(len(result.scores)))
        keep = _has_size(result.boxes_xyxy)
        keep_transductive = _has_size(result.trans_boxes_xyxy) & self.recheck
        if self.classes is not None:
            keep &= np.isin(_class_column(result.classes, len(keep)), self.classes)
            keep_transductive &= np.isin(
                _class_column(result.trans_classes, len(keep_transductive)), self.classes
            )
        if keep.all() and keep_transductive.all():
            return result
        return result.select(keep, keep_transductive)


class RecordingDetector:
    """A detector run at lower thresholds than the tracker's (for AP, for a detection cache): it
    hands every full result to `record` and gives the tracker the detections scoring above
    `score` and the re-check candidates above `heat` (`DetectionResult.above`: what the detector
    at those thresholds gives).

    It asks the re-check for every active track (it selects no templates), so that what it
    records does not depend on the tracker's thresholds, and takes no boxes of another detector.
    """

    selects_templates = False
    takes_detections = False

    @property
    def checks_frames(self) -> bool:
        return bool(getattr(self.detector, "checks_frames", False))

    def __init__(
        self, detector: FrameDetector, score: float, heat: float, record: Callable[[DetectionResult], None]
    ):
        self.detector = detector
        self.score = score
        self.heat = heat
        self.record = record

    @property
    def has_recheck(self) -> bool:
        return self.detector.has_recheck

    def __call__(
        self, frame_bgr: np.ndarray, templates: Templates | None = None, detections: ArrayLike | None = None
    ) -> DetectionResult:
        result = self.detector(frame_bgr, templates)
        self.record(result)
        return result.above(self.score, None if templates is None else self.heat)


def selected_class_indices(classes: Sequence[int | str], class_names: tuple[str, ...]) -> np.ndarray:
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


def _has_size(boxes: np.ndarray) -> np.ndarray:
    """Which boxes are not flat (zero width or height); inverted and NaN boxes stay, for the
    association to refuse."""
    flat: np.ndarray = (boxes[:, 3] == boxes[:, 1]) | (boxes[:, 2] == boxes[:, 0])
    return ~flat


def _class_column(classes: np.ndarray | None, count: int) -> np.ndarray:
    """Class indices of `count` detections: `classes`, or all 0 (a single-class detector)."""
    return np.zeros(count, dtype=np.int64) if classes is None else classes

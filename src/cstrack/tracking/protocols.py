"""Structural types of the tracking library: what a detector offers a tracker, and what an
association offers.

Implementations satisfy them without naming them (`typing.Protocol`): `JDETracker` is an
`Associator`, `cstrack.models.Detector` a `FrameDetector`, and so can be any other class with the
same members. Code that only needs the members (`replay.replay_detections`,
`cstrack.pipeline.Tracker`) asks for the Protocol, not the class.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cstrack.tracking.detections import DetectionResult, Templates
from cstrack.tracking.track_state import Track


@runtime_checkable
class Associator(Protocol):
    """An online association, fed one frame's detections at a time, as `JDETracker` is.

    `update` takes the frame's `DetectionResult` and returns the tracks reported for that frame;
    `reset` forgets every track, for the next sequence. isinstance() checks only that both
    methods exist (not their signatures): mypy checks the signatures.
    """

    def update(self, detections: DetectionResult) -> list[Track]: ...

    def reset(self) -> None: ...


@runtime_checkable
class FrameDetector(Protocol):
    """A detector for `cstrack.pipeline.Tracker`: one BGR uint8 frame (H, W, 3) in, its
    `DetectionResult` out, as `cstrack.models.Detector` is.

    `templates` (None: no re-check) asks a detector whose network `has_recheck` for OMC's re-check
    candidates of those track templates; when `selects_templates`, they may also be a function of
    the detected boxes that picks them (`Templates`). `detections`, another detector's boxes
    (N, 5 or 6: x1, y1, x2, y2, score[, class]), are given only to one that `takes_detections`:
    its result then holds them, with their appearance. A detector without the two flags is taken
    to have them False (the tracker reads them with a default), so any callable with
    `has_recheck` serves. The tracker checks each frame (`cstrack.models.inference.check_frame`)
    unless the detector has a true `checks_frames`: it refuses such frames itself, as
    `cstrack.models.Detector` does.
    """

    @property
    def has_recheck(self) -> bool: ...

    @property
    def selects_templates(self) -> bool: ...

    @property
    def takes_detections(self) -> bool: ...

    def __call__(
        self,
        frame_bgr: NDArray[np.uint8],
        templates: Templates | None = None,
        detections: ArrayLike | None = None,
    ) -> DetectionResult: ...

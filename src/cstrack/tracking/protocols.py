"""Structural types of the tracking library: what a detections-to-tracks tracker offers.

`JDETracker` satisfies `DetectionTracker` without naming it (a `typing.Protocol`), and so can any
other tracker with the same two methods; code that only feeds detections in and reads tracks out
(`offline.track_detections`) asks for the Protocol, not the class.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from numpy.typing import ArrayLike

from cstrack.tracking.track_state import Track


@runtime_checkable
class DetectionTracker(Protocol):
    """An online tracker fed one frame's detections at a time, as `JDETracker` is.

    `update` takes the frame's boxes (N, 4) x1, y1, x2, y2 in pixels, their scores (N,) and
    optionally re-ID embeddings (N, D) (a multi-class tracker also takes `classes=`), and returns
    the tracks reported for that frame; `reset`
    forgets every track, for the next sequence. isinstance() checks only that both methods
    exist (not their signatures): mypy checks the signatures.
    """

    def update(
        self, boxes_xyxy: ArrayLike, scores: ArrayLike, embeddings: ArrayLike | None = None
    ) -> list[Track]: ...

    def reset(self) -> None: ...

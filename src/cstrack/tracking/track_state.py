"""Track states and the track records the tracker hands out."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray


def results_rows(
    frame: int, tracks: list[Track], class_ids: NDArray[np.int64] | None = None
) -> NDArray[np.float64]:
    """One frame's tracks as MOTChallenge result rows (N, 7): frame,id,x,y,w,h,score; with
    `class_ids` (the file's class value of each class index) an 8th column, the class."""
    table = np.empty((len(tracks), 7 if class_ids is None else 8))
    if tracks and class_ids is not None:
        table[:, 7] = class_ids[[t.cls for t in tracks]]
    if tracks:
        boxes = np.array([t.box_xyxy for t in tracks])
        table[:, 0] = frame
        table[:, 1] = [t.track_id for t in tracks]
        table[:, 2:4] = boxes[:, :2]
        table[:, 4:6] = boxes[:, 2:] - boxes[:, :2]
        table[:, 6] = [t.score for t in tracks]
    return table


class TrackState(IntEnum):
    """Lifecycle of a track: tracked while matched, lost while coasting; removed ones are dropped."""

    TRACKED = 1
    LOST = 2
    REMOVED = 3


class Track(NamedTuple):
    """A snapshot of one track after an update (immutable; the tracker owns the live state)."""

    track_id: int
    box_xyxy: NDArray[np.float64]
    score: float
    state: TrackState
    confirmed: bool
    start_frame: int
    last_frame: int
    #: Class index of the detections it was made from (0 for single-class detectors).
    cls: int = 0
    #: Index of the input detection it matched in this frame, so that a caller can join its own
    #: per-detection data (masks, labels) to the track; -1 when it matched none (lost, or an OMC
    #: re-check candidate).
    detection_index: int = -1

    @property
    def box_xywh(self) -> NDArray[np.float64]:
        """Top-left corner, width and height, the MOTChallenge box layout."""
        x0, y0, x1, y1 = self.box_xyxy
        return np.array([x0, y0, x1 - x0, y1 - y0])

"""Track states and the track records the tracker hands out."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray


class TrackState(IntEnum):
    """Lifecycle of a track: tracked while matched, lost while coasting; a track removed is
    dropped from the tracker, so no state names it."""

    TRACKED = 1
    LOST = 2


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

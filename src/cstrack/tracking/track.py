"""Track states and the track records the tracker hands out."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np


class TrackState(IntEnum):
    """Lifecycle of a track: tracked while matched, lost while coasting; removed ones are dropped."""

    TRACKED = 1
    LOST = 2
    REMOVED = 3


class Track(NamedTuple):
    """A snapshot of one track after an update (immutable; the tracker owns the live state)."""

    track_id: int
    box_xyxy: np.ndarray
    score: float
    state: TrackState
    confirmed: bool
    start_frame: int
    last_frame: int

    @property
    def box_xywh(self) -> np.ndarray:
        """Top-left corner, width and height, the MOTChallenge box layout."""
        x0, y0, x1, y1 = self.box_xyxy
        return np.array([x0, y0, x1 - x0, y1 - y0])

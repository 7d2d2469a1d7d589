"""What follows the tracks of every frame beside the result files: crops, counts, anything built on
`Track`s rather than on the network.

`track(..., observers=[...])` opens each observer once per sequence, hands it every tracked frame
and its tracks, lets it draw on the rendered frame, and closes it with the other outputs (complete,
or partial after an interruption); `cstrack.pipeline.crops.CropSaver` and
`cstrack.pipeline.counting.Counter` are the two the command line offers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from cstrack.data.sources import FrameSource
from cstrack.tracking.track_state import Track


class FrameObserver(Protocol):
    """One sequence at a time: `open`, then `add` (and `draw` when frames are rendered) per tracked
    frame, then `close`."""

    def open(self, source: FrameSource, out_dir: Path | None) -> None:
        """Start on `source`, writing under `out_dir` (None: tracking into memory)."""

    def add(self, number: int, image: np.ndarray, tracks: list[Track]) -> None:
        """Follow frame `number` (the BGR image as read) and its output tracks."""

    def draw(self, canvas: np.ndarray) -> None:
        """Draw on the rendered frame, in place (after `add` of the same frame)."""

    def close(self, complete: bool) -> dict[str, Path]:
        """End the sequence; the files written, by kind (partial ones when not `complete`)."""

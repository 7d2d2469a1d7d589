"""Crops of the tracked people: one image per track every N frames, for reviewing a run or as
re-identification data (the folder of one id holds one identity).

`CropSaver` is a `cstrack.pipeline.observers.FrameObserver`: `track(..., observers=[CropSaver()])`
or `cstrack track --save-crops` write `OUT/crops/NAME/ID/FRAME.jpg`, each file whole (written
under a temporary name and renamed), so an interrupted run keeps every crop it wrote.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from cstrack.atomic import atomic_write_bytes
from cstrack.config import CROP_EVERY
from cstrack.data.sources import FrameSource
from cstrack.errors import InputError
from cstrack.tracking.track_state import Track

CROPS_FOLDER = "crops"

logger = logging.getLogger(__name__)


class CropSaver:
    """Saves the box of each output track (cut to the frame) the first time the track is output and
    then once at least `every` frames later, and so on."""

    def __init__(self, every: int = CROP_EVERY):
        if not (isinstance(every, int) and every >= 1):
            raise InputError(None, f"crops: every must be an integer >= 1, got {every!r}")
        self.every = every
        self.folder: Path | None = None
        self.written = 0
        self._last: dict[int, int] = {}

    def open(self, source: FrameSource, out_dir: Path | None) -> None:
        if out_dir is None:
            raise InputError(None, "crops are written to files: give an output folder")
        self.folder = out_dir / CROPS_FOLDER / source.name
        self.written = 0
        self._last.clear()

    def add(self, number: int, image: np.ndarray, tracks: list[Track]) -> None:
        assert self.folder is not None, "open() first"
        height, width = image.shape[:2]
        for track in tracks:
            last = self._last.get(track.track_id)
            if last is not None and number - last < self.every:
                continue
            x0, y0, x1, y1 = np.rint(track.box_xyxy).astype(int).tolist()
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
            if x1 <= x0 or y1 <= y0:  # wholly outside the frame
                continue
            ok, encoded = cv2.imencode(".jpg", image[y0:y1, x0:x1])
            if not ok:
                continue
            atomic_write_bytes(self.folder / str(track.track_id) / f"{number:06d}.jpg", encoded.tobytes())
            self._last[track.track_id] = number
            self.written += 1
        # A track last cropped `every` frames ago is cropped when next seen, remembered or not:
        # forgetting it keeps the memory of a camera that runs for days bounded.
        self._last = {k: last for k, last in self._last.items() if number - last < self.every}

    def draw(self, canvas: np.ndarray) -> None:
        """Crops leave the rendered frame as it is."""

    def close(self, complete: bool) -> dict[str, Path]:
        if not self.written or self.folder is None:
            return {}
        logger.info("cstrack: %d crops in %s", self.written, self.folder)
        return {"crops": self.folder}

"""A person walking down a small image folder, and a detector that sees exactly them: the tracks of
crops and counts are then known in advance."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.tracking import DetectionResult

WALK_FRAMES, WALK_STEP = 12, 8  # the walker's feet go from y = 40 to y = 128 of a 160 x 160 frame


def walker_box(frame: int) -> np.ndarray:
    """The walker's box (x0, y0, x1, y1) in frame `frame` (1-based): 20 x 40 pixels, moving down."""
    bottom = 40 + WALK_STEP * (frame - 1)
    return np.array([70, bottom - 40, 90, bottom], np.float32)


class WalkerDetector:
    """Detects the walker of `walking_frames` with a fixed embedding, frame after frame."""

    has_recheck = False

    def __init__(self) -> None:
        self.frame = 0

    def __call__(self, frame_bgr: np.ndarray, templates: object = None) -> DetectionResult:
        self.frame += 1
        empty = np.zeros((0, 4), np.float32)
        return DetectionResult(
            walker_box(self.frame)[None],
            np.array([0.9], np.float32),
            np.eye(1, 16, dtype=np.float32),
            np.zeros(1, np.int64),
            empty,
            np.zeros(0, np.float32),
            np.zeros((0, 16), np.float32),
        )


@pytest.fixture
def walking_frames(tmp_path: Path) -> Path:
    """WALK_FRAMES 160 x 160 images of a bright walker on grey, in `tmp_path/walk`."""
    folder = tmp_path / "walk"
    folder.mkdir()
    for frame in range(1, WALK_FRAMES + 1):
        image = np.full((160, 160, 3), 90, np.uint8)
        x0, y0, x1, y1 = walker_box(frame).astype(int)
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), (40, 200, 240), -1)
        cv2.imwrite(str(folder / f"{frame:03d}.png"), image)
    return folder

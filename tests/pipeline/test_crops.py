"""Crops of each track every N frames, written whole under OUT/crops/NAME/ID/."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from cstrack.errors import InputError
from cstrack.pipeline.crops import CropSaver
from cstrack.pipeline.end_to_end import Tracker
from cstrack.pipeline.runner import track
from cstrack.pipeline.tracker_config import TrackerConfig

from .conftest import WALK_FRAMES, WalkerDetector, walker_box

NO_CMC = TrackerConfig().replace(cmc="none")


def test_one_crop_per_track_every_n_frames(walking_frames: Path, tmp_path: Path):
    runs = track(walking_frames, Tracker(WalkerDetector(), NO_CMC), output=tmp_path / "out",
                 progress=False, observers=(CropSaver(every=4),))  # fmt: skip
    folder = runs["walk"].files["crops"]
    assert folder == tmp_path / "out" / "crops" / "walk"
    (identity,) = folder.iterdir()
    frames = [int(path.stem) for path in sorted(identity.glob("*.jpg"))]
    assert frames[1:] == list(range(frames[0] + 4, WALK_FRAMES + 1, 4))
    x0, y0, x1, y1 = walker_box(frames[0]).astype(int)
    crop = cv2.imread(str(identity / f"{frames[0]:06d}.jpg"))
    assert crop.shape[:2] == (y1 - y0, x1 - x0) and crop.mean(axis=(0, 1))[2] > 200  # the walker
    assert not list(identity.glob(".*"))


def test_crops_need_an_output_folder_and_a_positive_interval(walking_frames: Path):
    with pytest.raises(InputError, match="integer >= 1"):
        CropSaver(every=0)
    with pytest.raises(InputError, match="give an output folder"):
        track(walking_frames, Tracker(WalkerDetector(), NO_CMC), progress=False, observers=(CropSaver(),))

"""Frame sources: what `cstrack track SOURCE` accepts, read lazily with 1-based frame numbers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data.sources import FrameRange, ImageFolderSource, SequenceSource, VideoSource, open_sources
from cstrack.errors import InputError


def frame(k: int) -> np.ndarray:
    image = np.full((48, 64, 3), 40, np.uint8)
    cv2.rectangle(image, (2 * k, 10), (2 * k + 10, 40), (0, 0, 255), -1)
    return image


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "walk.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (64, 48))
    for k in range(8):
        writer.write(frame(k))
    writer.release()
    return path


def test_frame_range_parsing():
    assert FrameRange.parse("601-795") == FrameRange(601, 795)
    assert FrameRange.parse("5-") == FrameRange(5, None)
    assert FrameRange.parse("7") == FrameRange(7, 7)
    assert 3 in FrameRange(2, 4) and 5 not in FrameRange(2, 4)
    for bad in ("a-b", "0-3", "5-2"):
        with pytest.raises(InputError):
            FrameRange.parse(bad)


def test_video_file(video: Path):
    (source,) = open_sources(video)
    assert isinstance(source, VideoSource)
    assert source.name == "walk" and source.frame_rate == pytest.approx(12.0)
    frames = list(source)
    assert [n for n, _ in frames] == list(range(1, 9)) and len(source) == 8
    assert frames[0][1].shape == (48, 64, 3)
    ranged = list(VideoSource(video, FrameRange(3, 5)))
    assert [n for n, _ in ranged] == [3, 4, 5]


def test_image_folder_with_an_unreadable_image(tmp_path: Path):
    for k in range(4):
        cv2.imwrite(str(tmp_path / f"{k:04d}.png"), frame(k))
    (tmp_path / "0002.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    (source,) = open_sources(tmp_path)
    assert isinstance(source, ImageFolderSource) and len(source) == 4
    images = dict(source)
    assert images[3] is None and all(images[k] is not None for k in (1, 2, 4))


def test_sequence_and_dataset_root(shared_data: Path):
    (source,) = open_sources(shared_data / "PETS09-S2L1", FrameRange(601, 603))
    assert isinstance(source, SequenceSource)
    assert source.frame_rate == 7 and source.sequence.gt_path.is_file()
    assert [n for n, _ in source] == [601, 602, 603]
    sequences = sorted(p.name for p in shared_data.iterdir() if (p / "seqinfo.ini").is_file())
    assert "PETS09-S2L1" in sequences
    assert [s.name for s in open_sources(shared_data)] == sequences


def test_bad_sources(tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        open_sources(tmp_path / "missing.mp4")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError, match="cannot decode"):
        open_sources(corrupt)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images"):
        open_sources(empty)

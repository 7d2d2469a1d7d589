"""Frame sources: what `cstrack track SOURCE` accepts, read lazily with 1-based frame numbers."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data.sources import (
    FrameRange,
    ImageFolderSource,
    SequenceSource,
    VideoSource,
    jpeg_is_complete,
    natural_key,
    open_sources,
)
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


def test_image_folder_is_in_natural_order(tmp_path: Path):
    for k in (10, 2, 1, 11):
        cv2.imwrite(str(tmp_path / f"{k}.png"), frame(k))
    (source,) = open_sources(tmp_path)
    assert [p.name for _, p in source._numbered] == ["1.png", "2.png", "10.png", "11.png"]
    assert sorted(["b10.jpg", "a2.jpg", "b9.jpg", "A1.jpg"], key=natural_key) == [
        "A1.jpg",
        "a2.jpg",
        "b9.jpg",
        "b10.jpg",
    ]


def jpeg(k: int, **params: int) -> bytes:
    flags = [flag for name, value in params.items() for flag in (getattr(cv2, name), value)]
    ok, data = cv2.imencode(".jpg", frame(k), flags)
    assert ok
    return data.tobytes()


def test_jpeg_end_marker_check():
    for data in (jpeg(1), jpeg(2, IMWRITE_JPEG_PROGRESSIVE=1), jpeg(3, IMWRITE_JPEG_RST_INTERVAL=1)):
        assert jpeg_is_complete(data)
        assert jpeg_is_complete(data + b"\x00" * 7 + b"trailer after the image")
        assert not any(jpeg_is_complete(data[:cut]) for cut in range(2, len(data) - 1, 37))
        assert not jpeg_is_complete(data[:-2])
    # An APP segment holding a whole thumbnail (with its own FFD9) is skipped by its length.
    thumbnail = jpeg(4)
    app1 = b"\xff\xe1" + (len(thumbnail) + 2).to_bytes(2, "big") + thumbnail
    main = jpeg(5)
    assert jpeg_is_complete(main[:2] + app1 + main[2:])
    assert not jpeg_is_complete(main[:2] + app1 + main[2:-300])
    assert jpeg_is_complete(b"\x89PNG not a jpeg: the decoder judges")


def test_truncated_jpeg_is_skipped_with_a_warning(tmp_path: Path, caplog):
    for k in range(3):
        (tmp_path / f"{k:04d}.jpg").write_bytes(jpeg(k))
    truncated = tmp_path / "0001.jpg"
    truncated.write_bytes(truncated.read_bytes()[:-200])
    assert cv2.imread(str(truncated)) is not None  # what OpenCV alone would have tracked
    (source,) = open_sources(tmp_path)
    with caplog.at_level(logging.WARNING, logger="cstrack.data.sources"):
        images = dict(source)
    assert images[2] is None and images[1] is not None and images[3] is not None
    assert [r.getMessage() for r in caplog.records] == [
        f"cstrack: {truncated}: truncated JPEG (no end-of-image marker); frame skipped"
    ]


def test_frame_range_outside_the_sequence(tmp_path: Path, video: Path, caplog):
    for k in range(4):
        cv2.imwrite(str(tmp_path / f"{k:04d}.png"), frame(k))
    for spec in (tmp_path, video):
        with pytest.raises(InputError, match=r"frames 9-12 are outside this sequence of \d frames") as error:
            open_sources(spec, FrameRange(9, 12))
        assert error.value.path == str(spec)
    with caplog.at_level(logging.WARNING, logger="cstrack.data.sources"):
        (source,) = open_sources(tmp_path, FrameRange(3, 10))
    assert [n for n, _ in source] == [3, 4]
    assert "frames 3-10: the sequence ends at frame 4" in caplog.text
    assert len(open_sources(tmp_path, FrameRange(4, None))[0]) == 1

"""Frame sources: what `cstrack track SOURCE` accepts, read lazily with 1-based frame numbers."""

from __future__ import annotations

import logging
import math
import queue
import re
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.config import DEFAULT_FRAME_RATE
from cstrack.data.sources import (
    FrameRange,
    ImageFolderSource,
    SequenceSource,
    StreamSource,
    VideoSource,
    jpeg_is_complete,
    natural_key,
    open_sources,
    retry_delays,
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


class FakeCamera:
    """A capture whose frames the test hands over: `read` takes the next item put in `frames`
    (an image, or None for a failed read) and counts its calls, so a test can wait until the
    reader has read (and stored) what was put, without sleeping."""

    def __init__(self, fps: float = 25.0):
        self.frames: queue.Queue[np.ndarray | None] = queue.Queue()
        self.fps = fps
        self.reads = 0
        self.released = False
        self._changed = threading.Condition()

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def get(self, prop: int) -> float:
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self) -> tuple[bool, np.ndarray | None]:
        with self._changed:
            self.reads += 1
            self._changed.notify_all()
        image = self.frames.get(timeout=60)
        return (False, None) if image is None else (True, image)

    def release(self) -> None:
        self.released = True

    def wait_for_reads(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.reads >= count, timeout=60)

    def feed(self, *images: np.ndarray | None) -> None:
        for image in images:
            self.frames.put(image)


class EndlessCamera(FakeCamera):
    """A camera that never waits: frame after frame, as fast as it is read."""

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.reads += 1
        return True, frame(self.reads % 20)


def opener(*captures):
    """`open_capture` handing out `captures` in turn (the first one is the probe for the fps)."""
    remaining = list(captures)
    return lambda target: remaining.pop(0)


def test_latest_frame_mode_hands_a_slow_consumer_the_newest_frame_and_counts_the_dropped():
    camera = FakeCamera()
    source = StreamSource(0, reconnect=0, open_capture=opener(FakeCamera(fps=12.0), camera))
    assert source.frame_rate == 12.0 and source.latest and source.name == "camera0"
    frames = iter(source)
    camera.feed(frame(1))
    number, image = next(frames)
    assert number == 1 and np.array_equal(image, frame(1))
    # The consumer is busy while the camera delivers frames 2, 3 and 4.
    camera.feed(frame(2), frame(3), frame(4))
    camera.wait_for_reads(5)  # frames 2-4 read and stored; the 5th read waits for the camera
    number, image = next(frames)
    assert number == 4 and np.array_equal(image, frame(4)) and source.dropped_frames == 2
    camera.feed(frame(5))
    camera.wait_for_reads(6)
    assert next(frames)[0] == 5 and source.dropped_frames == 2  # one frame behind: nothing dropped
    camera.feed(None)  # the stream ends (no reconnects)
    assert list(frames) == [] and source.dropped_frames == 2 and camera.released
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("cstrack-reader")]


def test_every_frame_mode_and_files_drop_nothing(video: Path):
    camera = FakeCamera()
    source = StreamSource(0, reconnect=0, latest=False, open_capture=opener(FakeCamera(), camera))
    camera.feed(frame(1), frame(2), frame(3), frame(4), None)
    assert [number for number, _ in source] == [1, 2, 3, 4] and source.dropped_frames == 0
    (from_file,) = open_sources(video, latest=True)
    assert [number for number, _ in from_file] == list(range(1, 9)) and from_file.dropped_frames == 0


def test_a_free_running_camera_loses_no_frame_uncounted():
    """However the threads interleave: increasing numbers, the last frame taken, and every frame
    either taken or counted as dropped."""
    camera = FakeCamera()
    source = StreamSource("rtsp://camera/live", reconnect=0, open_capture=opener(FakeCamera(), camera))
    camera.feed(*(frame(k % 20) for k in range(200)), None)
    numbers = [number for number, _ in source]
    assert numbers == sorted(set(numbers)) and numbers[-1] == 200
    assert len(numbers) + source.dropped_frames == 200


class FakeClock:
    """A clock that moves `step` seconds each time it is read: outages last as long as the test says."""

    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_retry_delays_back_off_up_to_the_longest_and_stop_at_the_limit():
    assert list(retry_delays(0)) == []
    assert list(retry_delays(10, first=1, longest=4, clock=FakeClock(1.5))) == [1, 2, 4, 4, 2.5, 1]
    forever = retry_delays(math.inf, first=0.5, longest=30, clock=FakeClock(1000))
    assert [next(forever) for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


@pytest.mark.parametrize("latest", [True, False])
def test_a_stream_reconnects_numbers_on_and_counts_its_outages(caplog, latest: bool):
    first, second, third, fourth = FakeCamera(), FakeCamera(), FakeCamera(), FakeCamera()
    source = StreamSource(
        0,
        reconnect=10,
        retry_seconds=0,
        latest=latest,
        open_capture=opener(FakeCamera(), first, second, third, fourth),
        clock=FakeClock(4),  # two attempts per outage: the third reading of the clock is past 10 s
    )
    frames = iter(source)
    first.feed(frame(1))
    assert next(frames)[0] == 1
    first.feed(None)  # the stream drops: reopened
    second.feed(frame(2))
    assert next(frames)[0] == 2
    second.feed(frame(3), None)  # it drops again after a frame: reopened twice, in vain
    third.feed(None)
    fourth.feed(None)
    with caplog.at_level(logging.INFO, logger="cstrack"):
        assert [number for number, _ in frames] == [3]
    assert source.outages == 2 and all(c.released for c in (first, second, third, fourth))
    assert "stream lost after frame 3 (outage 2); reconnecting for up to 10 s" in caplog.text
    assert "stream ended: still down after" in caplog.text


def test_stopping_early_stops_the_reader_and_a_reader_error_reaches_the_consumer():
    camera = EndlessCamera()
    source = StreamSource(0, open_capture=opener(FakeCamera(), camera))
    frames = iter(source)
    numbers = [next(frames)[0] for _ in range(3)]
    frames.close()
    assert numbers == sorted(set(numbers)) and camera.released
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("cstrack-reader")]

    class Gone(FakeCamera):
        def isOpened(self) -> bool:  # noqa: N802
            return False

    source = StreamSource(0, open_capture=opener(FakeCamera(), Gone()))
    with pytest.raises(InputError, match="cannot open this camera or stream"):
        next(iter(source))


def test_fps_replaces_the_reported_rate_and_vid_stride_takes_every_nth_frame(tmp_path: Path, video: Path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(7):
        cv2.imwrite(str(folder / f"{k}.png"), frame(k))
    (plain,) = open_sources(folder)
    assert plain.frame_rate == DEFAULT_FRAME_RATE
    (source,) = open_sources(folder, FrameRange(2, 7), fps=12.5, vid_stride=2)
    assert source.frame_rate == 6.25 and len(source) == 3
    assert [number for number, _ in source] == [2, 4, 6]
    (clip,) = open_sources(video, vid_stride=3)
    assert clip.frame_rate == 4.0 and len(clip) == 3
    numbered = list(clip)
    assert [number for number, _ in numbered] == [1, 4, 7]
    assert np.array_equal(numbered[1][1], next(image for n, image in VideoSource(video) if n == 4))
    camera = FakeCamera()
    stream = StreamSource(0, reconnect=0, latest=False, open_capture=opener(FakeCamera(), camera))
    stream.stride = 2
    camera.feed(*(frame(k) for k in range(5)), None)
    assert [number for number, _ in stream] == [1, 3, 5]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"fps": 0}, "fps=0 (must be a finite number > 0)"),
        ({"fps": math.nan}, "fps=nan"),
        ({"vid_stride": 0}, "vid_stride=0 (must be an integer >= 1)"),
        ({"reconnect": -1}, "reconnect=-1"),
    ],
)
def test_bad_source_options_are_refused_before_opening(tmp_path: Path, options: dict, message: str):
    with pytest.raises(InputError, match=re.escape(message)):
        open_sources(tmp_path / "missing", **options)

"""Frame sources for tracking: a video file, an image folder, a MOTChallenge sequence or dataset
root, a webcam index, or a camera stream URL, all read one frame at a time.

`open_sources(spec)` turns what the user typed into one source per sequence. Every source yields
`(frame_number, image_or_None)` with 1-based frame numbers; None marks a frame that could not be
read (or a truncated JPEG), so callers can skip and count it without losing the numbering.

Webcams and streams are read in latest-frame mode by default: a reader thread takes frames as
the camera delivers them and keeps only the newest, so when tracking is slower than the camera
each frame tracked is at most one frame old instead of ever later; the frames overwritten before
they were taken are counted (`FrameSource.dropped_frames`) and leave gaps in the numbering.
Files and folders never drop a frame. A stream that drops is reopened with growing waits for as
long as `reconnect` seconds (`math.inf`: forever); each outage is counted (`FrameSource.outages`)
and logged, and the frame numbers go on from where they were.

`fps` replaces a frame rate that is missing or wrong (image folders have none: 30 is assumed), and
`vid_stride` N yields every Nth frame only (the frame rate divided by N; frame numbers stay the
source's).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

from cstrack.config import DEFAULT_FRAME_RATE, RECONNECT_SECONDS
from cstrack.data.mot import MotSequence, find_sequences
from cstrack.errors import InputError, check_options

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
STREAM_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://")
JPEG_EXTENSIONS = (".jpg", ".jpeg")
# The most pixels a frame may declare (8192 x 8192, 200 MB decoded): a larger image is skipped
# before it is decoded.
MAX_IMAGE_PIXELS = 1 << 26
# How long closing a live source waits for its reader thread to leave a blocking read.
READER_JOIN_SECONDS = 5.0
# The waits between reconnect attempts (`RECONNECT_SECONDS` in all): the first, doubled after each
# failed attempt up to the longest.
FIRST_RETRY_SECONDS = 0.5
LONGEST_RETRY_SECONDS = 30.0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameRange:
    """Inclusive 1-based frame range; `last` None means to the end."""

    first: int = 1
    last: int | None = None

    @classmethod
    def parse(cls, text: str) -> FrameRange:
        """'A-B', 'A-' or 'A' (a single frame)."""
        first, sep, last = text.partition("-")
        try:
            start = int(first)
            stop = int(last) if last else (None if sep else start)
        except ValueError:
            raise InputError(None, f"frame range {text!r} must look like A-B, A- or A") from None
        if start < 1 or (stop is not None and stop < start):
            raise InputError(None, f"frame range {text!r} must satisfy 1 <= A <= B")
        return cls(start, stop)

    def __contains__(self, frame: int) -> bool:
        return frame >= self.first and (self.last is None or frame <= self.last)

    def __str__(self) -> str:
        return f"{self.first}-{'' if self.last is None else self.last}"


ALL_FRAMES = FrameRange()


def frame_range(frames: FrameRange | str | None) -> FrameRange | None:
    """`frames` as a FrameRange: 'A-B', 'A-' or 'A' (what `--frames` takes) parsed by
    `FrameRange.parse`, None kept."""
    return FrameRange.parse(frames) if isinstance(frames, str) else frames


class FrameSource:
    """One sequence of frames with a name (used for output files) and a frame rate."""

    name: str
    frame_rate: float
    #: What the user named (file, folder, camera index or URL), for error messages.
    origin: str
    #: The frame range read; --eval scores this window of the ground truth.
    frames: FrameRange = ALL_FRAMES
    #: Frames in the whole source before the range is applied; None when unknown (live streams).
    total_frames: int | None = None
    #: Ground-truth sequence folder when the source is a MOTChallenge sequence.
    sequence: MotSequence | None = None
    #: Frames a live source in latest-frame mode dropped to keep up (0 for files and folders).
    dropped_frames: int = 0
    #: Every how many frames one is yielded (`vid_stride`); the frame rate is already divided by it.
    stride: int = 1
    #: Times a live source was lost and reconnection tried (0 for files and folders).
    outages: int = 0

    def __len__(self) -> int:
        """Number of frames that will be yielded, 0 when unknown (live streams)."""
        return 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        raise NotImplementedError


class ImageFolderSource(FrameSource):
    """Image files of a folder in natural order (or a MOTChallenge sequence's img1/)."""

    def __init__(
        self,
        paths: list[Path],
        name: str,
        frame_rate: float,
        frames: FrameRange = ALL_FRAMES,
        origin: str | PathLike | None = None,
    ):
        self.name = name
        self.frame_rate = frame_rate
        self.frames = frames
        self.total_frames = len(paths)
        self.origin = str(origin if origin is not None else paths[0].parent if paths else name)
        self._numbered = [(k, p) for k, p in enumerate(paths, start=1) if k in frames]

    def __len__(self) -> int:
        return len(self._numbered[:: self.stride])

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        for number, path in self._numbered[:: self.stride]:
            yield number, read_image(path)


def read_image(path: Path) -> np.ndarray | None:
    """The BGR image at `path`; None when it is missing, unreadable, or a truncated JPEG.

    OpenCV decodes a truncated JPEG without failing (the missing rows grey), so a JPEG is first
    checked for its end-of-image marker; the bytes are read once for the check and the decoding.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data:
        logger.warning("cstrack: %s: empty file (0 bytes); frame skipped", path)
        return None
    if path.suffix.lower() in JPEG_EXTENSIONS and not jpeg_is_complete(data):
        logger.warning("cstrack: %s: truncated JPEG (no end-of-image marker); frame skipped", path)
        return None
    size = declared_size(data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        logger.warning(
            "cstrack: %s: %d x %d pixels, over the limit of %d pixels per frame; frame skipped",
            path,
            *size,
            MAX_IMAGE_PIXELS,
        )
        return None
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        return None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) that a PNG, JPEG, BMP, WebP or TIFF header declares, read before decoding:
    a 1 MB PNG may declare 30000 x 30000 pixels, which OpenCV would allocate (2.7 GB) before
    failing. None for other formats or a header too short to tell (the decoder decides then)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(b"BM") and len(data) >= 26:
        width = int.from_bytes(data[18:22], "little", signed=True)
        return abs(width), abs(int.from_bytes(data[22:26], "little", signed=True))
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of a TIFF's first directory."""
    order: Any = "little" if data[:2] == b"II" else "big"
    offset = int.from_bytes(data[4:8], order)
    count = int.from_bytes(data[offset : offset + 2], order)
    sizes = {}
    for start in range(offset + 2, min(offset + 2 + 12 * count, len(data) - 11), 12):
        tag, kind = (
            int.from_bytes(data[start : start + 2], order),
            int.from_bytes(data[start + 2 : start + 4], order),
        )
        if tag in (256, 257):
            width = 2 if kind == 3 else 4  # SHORT or LONG
            sizes[tag] = int.from_bytes(data[start + 8 : start + 8 + width], order)
    return (sizes[256], sizes[257]) if len(sizes) == 2 else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a JPEG's start-of-frame segment (SOF0..SOF15, not DHT, JPG, DAC)."""
    position = 2
    while position + 9 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            return int.from_bytes(data[position + 7 : position + 9], "big"), height
        if marker == 0xFF:
            position += 1
            continue
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return None


def jpeg_is_complete(data: bytes) -> bool:
    """Whether a JPEG's marker chain reaches its end-of-image marker (FFD9).

    Segments are skipped by their lengths (so an EXIF thumbnail's own FFD9 does not count) and
    entropy-coded data by searching for the next marker (FF00 stuffing and restart markers
    are not markers), which costs one `bytes.find` per 0xFF byte. Data that does not start as a
    JPEG is left to the decoder. Bytes after the end-of-image marker are allowed.
    """
    if not data.startswith(b"\xff\xd8"):
        return True
    position, size = 2, len(data)
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= size:
            return False
        marker = data[position + 1]
        if marker == 0xD9:
            return True
        if marker in (0x00, 0x01, 0xFF) or 0xD0 <= marker <= 0xD7:
            position += 1 if marker == 0xFF else 2  # stuffing, TEM, fill byte, restart: no length
            continue
        if position + 4 > size:
            return False
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")


class SequenceSource(ImageFolderSource):
    """A MOTChallenge sequence: its frames, its frame rate, and its ground truth for --eval."""

    def __init__(self, sequence: MotSequence, frames: FrameRange = ALL_FRAMES):
        super().__init__(
            sequence.frame_paths(), sequence.name, sequence.info.frame_rate, frames, sequence.path
        )
        self.sequence = sequence


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines (a missing camera prints a dozen) so ours is the only one."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def open_capture(target: int | str) -> cv2.VideoCapture:
    """`cv2.VideoCapture(target)` without OpenCV's log lines."""
    with quiet_opencv():
        return cv2.VideoCapture(target)


class VideoSource(FrameSource):
    """A video file decoded by OpenCV; a frame that fails to decode mid-file is reported as None."""

    def __init__(self, path: Path, frames: FrameRange = ALL_FRAMES):
        capture = open_capture(str(path))
        with quiet_opencv():
            ok, _ = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            capture.release()
            raise InputError(path, "cannot decode this video (corrupt or unsupported format)")
        self.path = path
        self.origin = str(path)
        self.name = path.stem
        self.frame_rate = reported_frame_rate(capture)
        self._count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.total_frames = self._count if self._count > 0 else None
        capture.release()
        self.frames = frames

    def __len__(self) -> int:
        last = self._count if self.frames.last is None else min(self._count, self.frames.last)
        return -(-max(0, last - self.frames.first + 1) // self.stride)

    def _wanted(self, number: int) -> bool:
        """Whether frame `number` is in the range and on the stride (counted from its first frame)."""
        return number in self.frames and (number - self.frames.first) % self.stride == 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        capture = open_capture(str(self.path))
        try:
            number = 0
            failures = 0
            while self.frames.last is None or number < self.frames.last:
                ok = capture.grab()
                number += 1
                if not ok:
                    # Past the reported length this is the end; before it, a damaged frame.
                    failures += 1
                    if number > self._count or failures > 25:
                        return
                    if self._wanted(number):
                        yield number, None
                    continue
                failures = 0
                if self._wanted(number):  # the frames between are grabbed, not decoded
                    ok, image = capture.retrieve()
                    yield number, image if ok else None
        finally:
            capture.release()


def reported_frame_rate(capture: Any) -> float:
    """The frame rate a capture reports, or DEFAULT_FRAME_RATE when it reports none that is plausible."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if 0 < fps < 1000 else DEFAULT_FRAME_RATE


def retry_delays(
    limit: float,
    first: float = FIRST_RETRY_SECONDS,
    longest: float = LONGEST_RETRY_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[float]:
    """The waits before each reconnect attempt of one outage: `first` seconds, doubled after each
    attempt up to `longest` (a camera rebooting is back in seconds, a network may take hours),
    until the outage has lasted `limit` seconds (math.inf: never; 0: no attempt)."""
    start = clock()
    delay = first
    while (left := limit - (clock() - start)) > 0:
        yield min(delay, left)
        delay = min(2 * delay, longest)


class StreamSource(FrameSource):
    """A webcam (by index) or a network stream; reopened when it drops (see `retry_delays`).

    With `latest` (the default), a reader thread reads the camera as fast as it delivers and
    keeps only the newest frame: iterating yields the newest frame not yet yielded, so a tracker
    slower than the camera lags by at most one frame; the frames replaced before they were
    taken are counted in `dropped_frames` (their numbers are skipped: frame numbers count the
    camera's frames). Without `latest`, every frame is yielded in order, however late.
    A stream that stops delivering is reopened, first after `retry_seconds`, then after ever longer
    waits, until it delivers again or has been down for `reconnect` seconds (math.inf: forever);
    each outage is counted in `outages` and logged when it starts and ends.
    `open_capture` (target -> an object with OpenCV's `read`, `get`, `isOpened`, `release`)
    opens the camera and `clock` measures outages; tests inject fakes.
    """

    def __init__(
        self,
        target: int | str,
        reconnect: float = RECONNECT_SECONDS,
        retry_seconds: float = FIRST_RETRY_SECONDS,
        latest: bool = True,
        open_capture: Callable[[int | str], Any] = open_capture,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.target = target
        self.origin = str(target)
        self.name = live_name(target)
        self.reconnect = reconnect
        self.retry_seconds = retry_seconds
        self.latest = latest
        self._open_capture = open_capture
        self._clock = clock
        capture = self._open()
        self.frame_rate = reported_frame_rate(capture)
        capture.release()

    def _open(self) -> Any:
        capture = self._open_capture(self.target)
        if not capture.isOpened():
            raise InputError(str(self.target), "cannot open this camera or stream")
        return capture

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        self.dropped_frames = self.outages = 0
        if not self.latest:
            yield from self._frames(threading.Event())
            return
        slot = LatestFrame()
        stop = threading.Event()
        reader = threading.Thread(
            target=self._read_into, args=(slot, stop), name=f"cstrack-reader-{self.name}", daemon=True
        )
        reader.start()
        try:
            while (item := slot.take()) is not None:
                self.dropped_frames = slot.dropped
                yield item
        finally:
            stop.set()
            reader.join(READER_JOIN_SECONDS)
            self.dropped_frames = slot.dropped

    def _read_into(self, slot: LatestFrame, stop: threading.Event) -> None:
        """The reader thread: every frame into `slot` until the stream ends or `stop` is set."""
        error: BaseException | None = None
        frames = self._frames(stop)
        try:
            for item in frames:
                slot.put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            error = exc
        finally:
            frames.close()
            slot.finish(error)

    def _frames(self, stop: threading.Event) -> Iterator[tuple[int, np.ndarray]]:
        """Every `stride`th frame the camera delivers, numbered from 1 on the camera's count,
        reconnecting after an outage; an outage ends at the first frame read, not at a reopening
        (a stream may open and deliver nothing)."""
        capture = self._open()
        number = 0
        delays: Iterator[float] | None = None  # the waits of the outage under way; None while frames come
        down_since = 0.0
        try:
            while not stop.is_set():
                ok, image = capture.read()
                if ok:
                    if delays is not None:
                        delays = None
                        logger.info(
                            "cstrack: %s: reconnected after %.1f s (outage %d)",
                            self.name,
                            self._clock() - down_since,
                            self.outages,
                        )
                    number += 1
                    if (number - 1) % self.stride == 0:
                        yield number, image
                    continue
                capture.release()
                if delays is None:
                    self.outages += 1
                    down_since = self._clock()
                    delays = retry_delays(self.reconnect, self.retry_seconds, clock=self._clock)
                    patience = "forever" if math.isinf(self.reconnect) else f"for up to {self.reconnect:g} s"
                    logger.warning(
                        "cstrack: %s: stream lost after frame %d (outage %d); reconnecting %s",
                        self.name,
                        number,
                        self.outages,
                        patience,
                    )
                delay = next(delays, None)
                if delay is None:
                    logger.warning(
                        "cstrack: %s: stream ended: still down after %.0f s (outage %d, after frame %d)",
                        self.name,
                        self._clock() - down_since,
                        self.outages,
                        number,
                    )
                    return
                if stop.wait(delay):
                    return
                capture = self._open_capture(self.target)
        finally:
            capture.release()


class LatestFrame:
    """The newest frame a reader thread has put and the consumer not yet taken (one slot).

    `put` replaces an untaken frame (counted in `dropped`) and never waits; `take` waits for a
    frame, or returns None once the reader has finished and nothing is left (raising what the
    reader failed with, if it failed).
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._item: tuple[int, np.ndarray] | None = None
        self._finished = False
        self._error: BaseException | None = None
        self.dropped = 0

    def put(self, item: tuple[int, np.ndarray]) -> None:
        with self._changed:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._changed.notify()

    def finish(self, error: BaseException | None = None) -> None:
        with self._changed:
            self._finished, self._error = True, error
            self._changed.notify()

    def take(self) -> tuple[int, np.ndarray] | None:
        with self._changed:
            self._changed.wait_for(lambda: self._item is not None or self._finished)
            item, self._item = self._item, None
            if item is None and self._error is not None:
                raise self._error
            return item


def live_target(spec: str | int | PathLike) -> int | str | None:
    """The webcam index or stream URL that `spec` names; None for a file or folder (an existing
    file or folder wins over a camera index: a folder named 2024 is a folder)."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit() and not Path(spec).exists()):
        return int(spec)
    if isinstance(spec, str) and spec.lower().startswith(STREAM_SCHEMES):
        return spec
    return None


def live_name(target: int | str) -> str:
    """The output name of a webcam (`camera0`) or a stream (its URL without the scheme, made safe)."""
    if isinstance(target, int):
        return f"camera{target}"
    tail = target.split("://", 1)[-1].rstrip("/")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in tail)[:64] or "stream"


_DIGITS = re.compile(r"(\d+)", re.ASCII)


def natural_key(name: str) -> tuple:
    """Sort key that orders numbers by value, so `2.jpg` comes before `10.jpg`.

    Splitting on digit runs puts text at even and numbers at odd positions, so every comparison
    is text with text or number with number; the name itself breaks ties (`01` vs `1`).
    """
    parts = _DIGITS.split(name)
    return (*(int(part) if k % 2 else part.casefold() for k, part in enumerate(parts)), name)


def _image_files(folder: Path) -> list[Path]:
    images = (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    return sorted(images, key=lambda p: natural_key(p.name))


def check_frame_range(source: FrameSource) -> None:
    """Refuse a frame range that selects no frame of a source of known length; warn when it is cut."""
    total, frames = source.total_frames, source.frames
    if total is None or frames == ALL_FRAMES:
        return
    if frames.first > total:
        raise InputError(source.origin, f"frames {frames} are outside this sequence of {total} frames")
    if frames.last is not None and frames.last > total:
        logger.warning("cstrack: %s: frames %s: the sequence ends at frame %d", source.origin, frames, total)


def check_unique_names(sources: list[FrameSource]) -> None:
    """Refuse two sources of one name (`D/train/SEQ` and `D/test/SEQ`), naming both: their
    results files, scores and cached detections are keyed by the name and would merge."""
    seen: dict[str, str] = {}
    for source in sources:
        if source.name in seen:
            raise InputError(
                source.origin,
                f"two sequences are named {source.name!r} (also {seen[source.name]}): "
                "track or tune them separately",
            )
        seen[source.name] = source.origin


def check_source_options(fps: float | None, vid_stride: int, reconnect: float) -> None:
    """Refuse a frame rate, stride or reconnect time out of range (nan and inf included, but for
    reconnect, where inf means forever) in one InputError."""
    options = SimpleNamespace(fps=fps, vid_stride=vid_stride, reconnect=reconnect)
    check_options(
        "source",
        options,
        {
            "fps": (fps is None or (math.isfinite(fps) and fps > 0), "a finite number > 0"),
            "vid_stride": (isinstance(vid_stride, int) and vid_stride >= 1, "an integer >= 1"),
            "reconnect": (reconnect >= 0, "seconds >= 0, or math.inf for forever"),
        },
    )


def open_sources(
    spec: str | int | PathLike,
    frames: FrameRange | str = ALL_FRAMES,
    latest: bool = True,
    *,
    fps: float | None = None,
    vid_stride: int = 1,
    reconnect: float = RECONNECT_SECONDS,
) -> list[FrameSource]:
    """One source per sequence for what the user named; InputError when it cannot be read or
    `frames` (a FrameRange or 'A-B', 'A-', 'A') selects no frame of it. `latest` (webcams and streams only) keeps only the newest
    frame when tracking falls behind (see `StreamSource`); False tracks every frame.
    `fps` replaces the rate the source reports (a folder reports none: DEFAULT_FRAME_RATE);
    `vid_stride` N yields every Nth frame (at a rate N times lower); `reconnect` is how long a
    stream may stay down (math.inf: forever)."""
    check_source_options(fps, vid_stride, reconnect)
    sources = _open_sources(spec, frame_range(frames) or ALL_FRAMES, latest, reconnect)
    for source in sources:
        check_frame_range(source)
        source.frame_rate = (fps or source.frame_rate) / vid_stride
        source.stride = vid_stride
    return sources


def _open_sources(
    spec: str | int | PathLike, frames: FrameRange, latest: bool, reconnect: float
) -> list[FrameSource]:
    target = live_target(spec)
    if target is not None:
        return [StreamSource(target, reconnect=reconnect, latest=latest)]
    path = Path(spec)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    try:
        return _open_path(path, frames)
    except OSError as error:  # a folder or file without read permission, a vanished disk
        raise InputError(error.filename or path, f"cannot read: {error.strerror or error}") from None


def _open_path(path: Path, frames: FrameRange) -> list[FrameSource]:
    """The sources of an existing file or folder."""
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return [ImageFolderSource([path], path.stem, DEFAULT_FRAME_RATE, frames, path)]
        return [VideoSource(path, frames)]
    if (path / "seqinfo.ini").is_file():
        return [SequenceSource(MotSequence.open(path), frames)]
    if (path / "img1").is_dir():
        path = path / "img1"
    images = _image_files(path)
    if images:
        name = path.parent.name if path.name == "img1" else path.name
        return [ImageFolderSource(images, name, DEFAULT_FRAME_RATE, frames, path)]
    try:
        sequences = find_sequences(path)
    except InputError as error:
        if error.path != str(path):  # a sequence's own problem (a bad seqinfo.ini): name it
            raise
        raise InputError(path, "no images, video or MOTChallenge sequences found here") from None
    return [SequenceSource(sequence, frames) for sequence in sequences]

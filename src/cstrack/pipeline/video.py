"""Writing rendered videos that browsers play: H.264 through PyAV where its build has an encoder,
else MPEG-4 Part 2 (`mp4v`) through OpenCV, which plays in VLC and most desktop players but not
in most browsers.

PyAV is the `video` extra (`pip install 'cstrack[video]'`); its PyPI wheels carry libx264. The
H.264 files are yuv420p (the sizes cut to even numbers, as 4:2:0 needs) with the index at the
start (`+faststart`), so a browser starts playing before the whole file has arrived.
`open_video_writer` picks the writer; both have OpenCV's `write(image_bgr)` and `release()`.
"""

from __future__ import annotations

import importlib.util
import logging
from fractions import Fraction
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np

from cstrack.errors import InputError

if TYPE_CHECKING:  # PyAV is the optional `video` extra, imported only where it is used
    from av.video.stream import VideoStream

# Software H.264 encoders, in order of preference (hardware ones need a device to open).
H264_ENCODERS = ("libx264", "libopenh264")
X264_OPTIONS = {"preset": "veryfast", "crf": "23"}

logger = logging.getLogger(__name__)


def h264_encoder() -> str | None:
    """The first software H.264 encoder of the installed PyAV, or None (no PyAV, or none built in)."""
    if importlib.util.find_spec("av") is None:
        return None
    import av

    for name in H264_ENCODERS:
        if name not in av.codecs_available:
            continue
        try:
            av.Codec(name, "w")
        except ValueError:  # a decoder only under that name
            continue
        return name
    return None


class OpenCVVideoWriter:
    """OpenCV's mp4v writer; `codec` names what it writes."""

    codec = "mp4v"

    def __init__(self, path: str | PathLike[str], frame_rate: float, size: tuple[int, int]):
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), frame_rate, size)
        if not self.writer.isOpened():
            raise InputError(path, "cannot open a video writer here")

    def write(self, image: np.ndarray) -> None:
        self.writer.write(image)

    def release(self) -> None:
        self.writer.release()


class PyAVVideoWriter:
    """H.264 (yuv420p, even width and height: an odd last row or column is cut) through PyAV."""

    codec = "h264"

    def __init__(self, path: str | PathLike[str], frame_rate: float, size: tuple[int, int], encoder: str):
        import av

        self.width, self.height = size[0] // 2 * 2, size[1] // 2 * 2
        if self.width < 2 or self.height < 2:
            raise InputError(path, f"cannot encode H.264 frames of {size[0]} x {size[1]} pixels")
        self.container: Any = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        try:
            # An H.264 encoder (`H264_ENCODERS`) makes a video stream.
            stream = cast(
                "VideoStream",
                self.container.add_stream(encoder, rate=Fraction(frame_rate).limit_denominator(1001)),
            )
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
            if encoder == "libx264":
                stream.options = dict(X264_OPTIONS)
            # Opens the encoder and the file now (PyAV would wait for the first packet, which the
            # encoder's look-ahead delays): a failure falls back to OpenCV before any frame, and a
            # killed run leaves its temporary file for the next run to clear.
            self.container.start_encoding()
        except BaseException:
            self.container.close()
            raise
        self.stream = stream
        self.frames = 0
        self._frame = av.VideoFrame

    def write(self, image: np.ndarray) -> None:
        image = np.ascontiguousarray(image[: self.height, : self.width])
        frame = self._frame.from_ndarray(image, format="bgr24")
        frame.pts = self.frames
        self.frames += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def release(self) -> None:
        """Flush the encoder's delayed frames and write the index: the file is complete after this."""
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        finally:
            self.container.close()


def open_video_writer(
    path: str | PathLike[str], frame_rate: float, size: tuple[int, int]
) -> OpenCVVideoWriter | PyAVVideoWriter:
    """An mp4 writer at `path` for frames of `size` (width, height): H.264 through PyAV when it has an
    encoder, else (or when PyAV fails to open the file) OpenCV's mp4v."""
    encoder = h264_encoder()
    if encoder is not None:
        import av

        try:
            return PyAVVideoWriter(path, frame_rate, size, encoder)
        except (av.FFmpegError, ValueError) as error:
            logger.warning(
                "cstrack: %s: H.264 through PyAV failed (%s); writing mp4v", Path(path).name, error
            )
    return OpenCVVideoWriter(path, frame_rate, size)

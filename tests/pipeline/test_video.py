"""Rendered videos: H.264 through PyAV where it has an encoder (browsers play it), else OpenCV's mp4v.

Each file must decode with OpenCV, frame for frame, at its frame rate; with PyAV installed it
must be H.264 (yuv420p), also at odd frame sizes (cut to even).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.pipeline import video
from cstrack.pipeline.video import OpenCVVideoWriter, PyAVVideoWriter, h264_encoder, open_video_writer

HAS_AV = importlib.util.find_spec("av") is not None


def frames(count: int, width: int, height: int) -> list[np.ndarray]:
    images = []
    for k in range(count):
        image = np.full((height, width, 3), 30, np.uint8)
        cv2.rectangle(image, (4 * k, 10), (4 * k + 20, 50), (0, 0, 255), -1)
        images.append(image)
    return images


def decoded(path: Path) -> tuple[list[np.ndarray], float, float]:
    capture = cv2.VideoCapture(str(path))
    count, fps = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
    images = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        images.append(image)
    capture.release()
    return images, count, fps


def codec_of(path: Path) -> str:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return f"{stream.codec_context.name} {stream.codec_context.pix_fmt}"


@pytest.mark.parametrize("size", [(160, 96), (161, 97)])
def test_the_written_video_decodes_frame_for_frame(tmp_path: Path, size: tuple[int, int]):
    path = tmp_path / "tracks.mp4"
    writer = open_video_writer(path, 7.0, size)
    images = frames(12, *size)
    for image in images:
        writer.write(image)
    writer.release()
    read, count, fps = decoded(path)
    assert len(read) == count == 12 and fps == pytest.approx(7.0)
    even = (size[1] // 2 * 2, size[0] // 2 * 2, 3)
    # H.264 (yuv420p) needs even sizes; OpenCV's mp4v build may round odd ones down too.
    assert read[0].shape == even if HAS_AV else read[0].shape in (even, (size[1], size[0], 3))  # noqa: E501
    # Lossy, but each frame is the one written (the moving box is where it was drawn).
    for original, back in zip(images, read, strict=True):
        height, width = back.shape[:2]
        assert np.abs(original[:height, :width].astype(int) - back).mean() < 4
    if HAS_AV:
        assert writer.codec == "h264" and codec_of(path) == "h264 yuv420p"
        assert path.read_bytes()[4:8] == b"ftyp" and b"moov" in path.read_bytes()[:4096]  # index first
    else:
        assert writer.codec == "mp4v"


def test_pyav_with_an_h264_encoder_is_what_is_used_here():
    """PyAV's PyPI wheels carry libx264; without PyAV, OpenCV's mp4v is the writer."""
    if not HAS_AV:
        assert h264_encoder() is None
        pytest.skip("PyAV is not installed (pip install 'cstrack[video]')")
    assert h264_encoder() in video.H264_ENCODERS


def test_without_an_encoder_or_when_pyav_fails_opencv_writes_mp4v(tmp_path: Path, monkeypatch, caplog):
    monkeypatch.setattr(video, "h264_encoder", lambda: None)
    writer = open_video_writer(tmp_path / "a.mp4", 10.0, (64, 48))
    assert isinstance(writer, OpenCVVideoWriter) and writer.codec == "mp4v"
    for image in frames(3, 64, 48):
        writer.write(image)
    writer.release()
    assert decoded(tmp_path / "a.mp4")[1] == 3
    if not HAS_AV:
        return
    import av

    def failing(*args, **kwargs):
        raise av.FFmpegError(1, "no encoder today")

    monkeypatch.setattr(video, "h264_encoder", lambda: "libx264")
    monkeypatch.setattr(video, "PyAVVideoWriter", failing)
    with caplog.at_level(logging.WARNING, logger="cstrack.pipeline.video"):
        writer = open_video_writer(tmp_path / "b.mp4", 10.0, (64, 48))
    assert isinstance(writer, OpenCVVideoWriter)
    assert "b.mp4: H.264 through PyAV failed" in caplog.text and "writing mp4v" in caplog.text
    writer.release()


@pytest.mark.skipif(not HAS_AV, reason="PyAV is not installed")
def test_an_unfinished_h264_video_is_complete_once_released(tmp_path: Path):
    """What Ctrl-C does to the video: release() flushes the encoder's delayed frames."""
    path = tmp_path / "partial.mp4"
    writer = PyAVVideoWriter(path, 25.0, (96, 64), h264_encoder())
    for image in frames(5, 96, 64):
        writer.write(image)
    writer.release()
    assert decoded(path)[1] == 5


# A page that plays the video next to it and puts the outcome in its title: "loaded READY_STATE
# DURATION" once the first frame is decoded, "playing READY_STATE DURATION" once playback has
# advanced, or "error CODE" (4: no stream the browser can decode).
PLAYER = """<!doctype html><video muted src="{name}"></video><script>
const video = document.querySelector("video");
const report = (state) => {{ document.title = state; }};
video.addEventListener("error", () => report("error " + video.error.code));
video.addEventListener("loadeddata", () => report(`loaded ${{video.readyState}} ${{video.duration}}`));
video.addEventListener("canplay", () => video.play().catch((e) => report("refused " + e.name)));
video.addEventListener("timeupdate", () => {{
  if (video.currentTime > 0) report(`playing ${{video.readyState}} ${{video.duration}}`);
}});
</script>"""


def browser_playback(chromium: str, path: Path, attempts: int = 3) -> str:
    """What headless Chromium makes of the video at `path` (the page's title, see PLAYER). The page
    is read once its virtual time is up, which a busy machine's decoder may not keep pace with:
    a page that has no outcome yet is loaded again."""
    page = path.with_suffix(".html")
    page.write_text(PLAYER.format(name=path.name))
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
               "--virtual-time-budget=10000", "--dump-dom", page.as_uri()]  # fmt: skip
    for _ in range(attempts):
        shown = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False).stdout
        title = re.search(r"<title>(.+)</title>", shown)
        if title:
            return title[1]
    return "no result"


@pytest.mark.skipif(h264_encoder() is None, reason="PyAV with an H.264 encoder is the video extra")
def test_a_browser_plays_the_h264_video_and_refuses_mp4v(chromium: str, tmp_path: Path):
    """What `make demo` writes (the video extra installed) plays in Chromium; mp4v does not."""
    for name, writer in (("h264", open_video_writer), ("mp4v", OpenCVVideoWriter)):
        output = writer(tmp_path / f"{name}.mp4", 10.0, (160, 96))
        for image in frames(20, 160, 96):
            output.write(image)
        output.release()
    state, ready, duration = browser_playback(chromium, tmp_path / "h264.mp4").split()
    assert state in ("loaded", "playing") and int(ready) >= 2 and float(duration) == pytest.approx(2.0)
    assert browser_playback(chromium, tmp_path / "mp4v.mp4") == "error 4"

"""`track` never destroys what a user owns (issue 23): no output over an input, no two sequences
merged into one file, a configuration file true to the results beside it, and no empty result
over an earlier one when no frame could be read."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data.mot import read_results
from cstrack.errors import InputError
from cstrack.pipeline.end_to_end import Tracker
from cstrack.pipeline.runner import track
from cstrack.pipeline.tracker_config import TRACKER_CONFIG_FILE, TrackerConfig
from cstrack.tracking import DetectionResult

SEQINFO = (
    "[Sequence]\nname=SYNTH-01\nframeRate=30\nseqLength=4\nimWidth=128\nimHeight=96\nimDir=img1\nimExt=.jpg\n"
)


class BoxDetector:
    """One fixed box per frame; Ctrl-C (KeyboardInterrupt) at call `interrupt_at`."""

    has_recheck = False

    def __init__(self, interrupt_at: int | None = None):
        self.calls, self.interrupt_at = 0, interrupt_at

    def __call__(self, frame_bgr: np.ndarray, templates=None) -> DetectionResult:
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return DetectionResult(
            np.array([[10, 10, 50, 80]], np.float32),
            np.array([0.9], np.float32),
            np.ones((1, 4), np.float32) / 2,
            np.zeros(1, np.int64),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 4), np.float32),
        )


def frames(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for k in range(1, count + 1):
        cv2.imwrite(str(folder / f"{k:06d}.jpg"), np.full((96, 128, 3), 40 * k, np.uint8))
    return folder


def test_two_sequences_of_one_name_are_refused_naming_both(tmp_path: Path):
    for split in ("train", "test"):
        frames(tmp_path / "D" / split / "SYNTH-01" / "img1", 4)
        (tmp_path / "D" / split / "SYNTH-01" / "seqinfo.ini").write_text(SEQINFO)
    out = tmp_path / "out"
    with pytest.raises(InputError) as error:
        track(str(tmp_path / "D"), Tracker(BoxDetector()), out, progress=False)
    message = str(error.value)
    assert "two sequences are named 'SYNTH-01'" in message
    assert (
        str(tmp_path / "D" / "train" / "SYNTH-01") in message
        and str(tmp_path / "D" / "test" / "SYNTH-01") in message
    )
    assert not out.exists()


def test_an_output_over_the_input_video_is_refused(tmp_path: Path):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (128, 96))
    for k in range(3):
        writer.write(np.full((96, 128, 3), 60 * k, np.uint8))
    writer.release()
    before = video.read_bytes()
    with pytest.raises(InputError, match="would overwrite the input"):
        track(str(video), Tracker(BoxDetector()), tmp_path, save_video=True, progress=False)
    assert video.read_bytes() == before


def test_the_configuration_file_describes_the_complete_results_after_ctrl_c(tmp_path: Path):
    source, out = frames(tmp_path / "frames", 6), tmp_path / "out"
    first = TrackerConfig()
    track(str(source), Tracker(BoxDetector(), first), out, progress=False)
    assert TrackerConfig.load(out / TRACKER_CONFIG_FILE) == first
    complete = (out / "frames.txt").read_bytes()
    second = TrackerConfig().replace(conf=0.3, track_buffer=5)
    runs = track(str(source), Tracker(BoxDetector(interrupt_at=4), second), out, progress=False)
    assert runs["frames"].interrupted
    assert (out / "frames.txt").read_bytes() == complete
    assert TrackerConfig.load(out / TRACKER_CONFIG_FILE) == first  # still the complete results' own
    assert TrackerConfig.load(out / "tracker.partial.yaml") == second  # beside frames.partial.txt
    assert len(read_results(out / "frames.partial.txt")) == 3
    assert not list(out.glob(".*"))


def test_nothing_readable_is_an_error_and_keeps_the_earlier_result(tmp_path: Path, caplog):
    source, out = frames(tmp_path / "frames", 2), tmp_path / "out"
    track(str(source), Tracker(BoxDetector()), out, progress=False)
    earlier = {path.name: path.read_bytes() for path in out.iterdir()}
    for image in source.iterdir():
        image.write_bytes(b"")  # zero-byte frames: skipped, not a cv2.error traceback
    with (
        caplog.at_level(logging.WARNING),
        pytest.raises(InputError, match="nothing tracked: none of its 2 frames"),
    ):
        track(str(source), Tracker(BoxDetector()), out, progress=False)
    assert "empty file (0 bytes)" in caplog.text
    assert {path.name: path.read_bytes() for path in out.iterdir()} == earlier


def test_a_zero_byte_frame_among_good_ones_is_skipped(tmp_path: Path, caplog):
    source = frames(tmp_path / "frames", 3)
    (source / "000004.jpg").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        runs = track(str(source), Tracker(BoxDetector()), tmp_path / "out", progress=False)
    assert runs["frames"].tracked == 3 and runs["frames"].skipped_frames == [4]
    assert not list((tmp_path / "out").glob("*.partial.*"))


def test_mixed_frame_sizes_are_scaled_into_the_video(tmp_path: Path, caplog):
    source = frames(tmp_path / "frames", 4)
    cv2.imwrite(str(source / "000003.jpg"), np.full((120, 160, 3), 90, np.uint8))
    with caplog.at_level(logging.WARNING):
        runs = track(str(source), Tracker(BoxDetector()), tmp_path / "out", save_video=True, progress=False)
    video = cv2.VideoCapture(str(runs["frames"].files["video"]))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    video.release()
    assert "frame 3 is 160 x 120, the video 128 x 96 (its first frame's)" in caplog.text


def test_frames_too_small_for_a_video_name_the_limit_and_the_real_file(tmp_path: Path):
    source = tmp_path / "frames"
    source.mkdir()
    cv2.imwrite(str(source / "1.png"), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(InputError) as caught:
        track(str(source), Tracker(BoxDetector()), tmp_path / "out", save_video=True, progress=False)
    assert str(caught.value) == (
        f"{tmp_path / 'out' / 'frames.mp4'}: cannot write a video of 1 x 1 frames: the encoders need at "
        "least 2 x 2 pixels (track without --save-video)"
    )

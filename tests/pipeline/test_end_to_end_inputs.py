"""The end-to-end Tracker on bad input: frames and devices refused with one clear InputError."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cstrack.cli.main import main
from cstrack.errors import InputError
from cstrack.models.device import resolve_device
from cstrack.pipeline import Tracker
from cstrack.pipeline.tracker_config import TrackerConfig
from cstrack.tracking import DetectionResult

FRAME = np.zeros((96, 128, 3), np.uint8)
FRAME_RULE = r"a frame must be a BGR uint8 HxWx3 numpy array with H, W >= 1, as OpenCV reads it; got "


class ReadyDetector:
    """A ready detector: hands out fixed boxes (embeddings A) and records the frames it is given."""

    has_recheck = False

    def __init__(self, boxes: list[list[float]], scores: list[float] | None = None):
        self.boxes = np.array(boxes, np.float32).reshape(-1, 4)
        self.scores = (
            np.full(len(self.boxes), 0.9, np.float32) if scores is None else np.array(scores, np.float32)
        )
        self.frames: list[object] = []

    def __call__(self, frame_bgr: np.ndarray, templates: np.ndarray | None) -> DetectionResult:
        self.frames.append(frame_bgr)
        n = len(self.boxes)
        return DetectionResult(
            boxes_xyxy=self.boxes,
            scores=self.scores,
            embeddings=np.tile(np.eye(1, 8, dtype=np.float32), (n, 1)),
            levels=np.zeros(n, np.int64),
            trans_boxes_xyxy=np.zeros((0, 4), np.float32),
            trans_scores=np.zeros(0, np.float32),
            trans_embeddings=np.zeros((0, 8), np.float32),
        )


@pytest.mark.parametrize(
    "frame, described",
    [
        (None, "None"),
        ([[[0, 0, 0]]], "an object of type list"),
        ("frame.jpg", "an object of type str"),
        (np.zeros((0, 0, 3), np.uint8), r"an array of dtype uint8 and shape \(0, 0, 3\)"),
        (np.zeros((96, 128, 3), np.int64), r"an array of dtype int64 and shape \(96, 128, 3\)"),
        (np.zeros((96, 128, 3), bool), "an array of dtype bool"),
        (np.full((96, 128, 3), 0.5, np.float32), "an array of dtype float32"),
        (np.zeros((96, 128, 3), np.uint16), "an array of dtype uint16"),
        (np.full((96, 128, 3), np.nan), "an array of dtype float64"),
        (np.zeros((96, 128), np.uint8), r"an array of dtype uint8 and shape \(96, 128\)$"),
    ],
)
def test_update_refuses_anything_but_a_bgr_uint8_frame(frame, described):
    detector = ReadyDetector([[10, 10, 30, 60]])
    tracker = Tracker(detector)
    with pytest.raises(InputError, match=FRAME_RULE + described):
        tracker.update(frame)
    assert detector.frames == [] and tracker.association.frame_id == 0 and tracker.timing.frames == 0


def test_update_hands_the_frame_on_as_given():
    detector = ReadyDetector([[10, 10, 30, 60]])
    tracker = Tracker(detector)
    view = FRAME[::-1]  # not contiguous: still no copy
    assert [t.track_id for t in tracker.update(view)] == [1]
    assert detector.frames[0] is view


@pytest.mark.parametrize("byte_low_threshold", [None, 0.1])
def test_boxes_the_clip_flattened_are_dropped(byte_low_threshold):
    # A box lying outside the image comes out of the clip with zero height or width: no track,
    # no NaN, and no zero-size row that `cstrack eval` would refuse.
    detector = ReadyDetector(
        [[10, 96, 30, 96], [10, 10, 30, 60], [50, 0, 70, 0], [128, 10, 128, 40]], [0.9, 0.9, 0.3, 0.9]
    )
    tracker = Tracker(detector, TrackerConfig().replace(byte_low_threshold=byte_low_threshold))
    for _ in range(3):
        tracks = tracker.update(FRAME)
    assert [t.track_id for t in tracks] == [1]
    np.testing.assert_allclose(tracks[0].box_xyxy, [10, 10, 30, 60], atol=1e-3)


def test_inverted_boxes_from_a_ready_detector_are_refused():
    tracker = Tracker(ReadyDetector([[30, 10, 10, 60]]))
    with pytest.raises(ValueError, match="boxes_xyxy row 0 has x2 < x1"):
        tracker.update(FRAME)


@pytest.mark.parametrize(
    "device", ["tpu", "gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda0", "", "mps", None]
)
def test_unknown_devices_are_refused_with_the_accepted_forms(device):
    with pytest.raises(InputError, match=rf"unknown device {device!r}: use cpu, cuda, cuda:N .* or auto"):
        resolve_device(device)


def test_known_devices(monkeypatch):
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [resolve_device(d) for d in ("auto", "cuda", "cuda:0", "cuda:1")] == [
        "cuda",
        "cuda",
        "cuda:0",
        "cuda:1",
    ]
    with pytest.raises(InputError, match=r"'cuda:2' asked for but this machine has 2 CUDA device\(s\)"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda:0")


def test_track_command_refuses_an_unknown_device_in_one_line(capsys, tmp_path: Path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000.jpg"), FRAME)
    code = main(["track", str(folder), "--device", "tpu", "--output", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "unknown device 'tpu': use cpu, cuda, cuda:N (N a GPU index) or auto" in err

"""`Tracker` with another detector's boxes (`update(frame, detections)`), and with every variant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cstrack.backends.torch import TorchBackend
from cstrack.cli.main import main
from cstrack.config import DetectorConfig
from cstrack.errors import InputError
from cstrack.models import Detector, create_model, list_models
from cstrack.pipeline import Tracker
from cstrack.pipeline.tracker_config import TrackerConfig
from cstrack.tracking import DetectionResult

LEFT, RIGHT = np.array([30.0, 20, 60, 100]), np.array([120.0, 20, 150, 100])
NO_CMC = TrackerConfig().replace(cmc="none")


def scene(shift: float) -> tuple[np.ndarray, np.ndarray]:
    """A 192 x 128 frame with two figures (a red and a blue one) moved `shift` pixels right, and
    their boxes as another detector gives them: (2, 5) x1, y1, x2, y2, score."""
    frame = np.full((128, 192, 3), 90, np.uint8)
    boxes = np.stack([LEFT, RIGHT]) + [shift, 0, shift, 0]
    for (x0, y0, x1, y1), colour in zip(boxes.astype(int), [(0, 0, 230), (230, 0, 0)]):
        frame[y0:y1, x0:x1] = colour
    return frame, np.column_stack([boxes, [0.9, 0.8]])


def small_tracker(name: str) -> Tracker:
    """`name` with random weights at 192 x 128 (no BatchNorm folding or NHWC copy: seconds)."""
    torch.manual_seed(0)
    backend = TorchBackend(create_model(name), channels_last=False)
    return Tracker(Detector(backend, DetectorConfig(img_size=(192, 128))), NO_CMC)


@pytest.mark.parametrize("name", list_models())
def test_every_variant_tracks_given_boxes_with_their_detection_indices(name: str) -> None:
    tracker = small_tracker(name)
    frame, detections = scene(0)
    first = tracker.update(frame, detections)
    assert [(t.track_id, t.detection_index) for t in first] == [(1, 0), (2, 1)]
    frame, detections = scene(2)
    second = tracker.update(frame, detections[::-1])  # the same people, listed the other way round
    assert {t.track_id: t.detection_index for t in second} == {1: 1, 2: 0}
    np.testing.assert_allclose(second[0].box_xyxy, LEFT + [2, 0, 2, 0], atol=1.0)
    frame, detections = scene(4)
    third = tracker.update(frame, detections[1:])  # the left one missed: lost, or OMC's re-check
    assert {t.track_id: t.detection_index for t in third} in ({2: 0}, {1: -1, 2: 0})
    assert isinstance(tracker.update(frame), list)  # the variant's own head runs too


def test_given_boxes_carry_the_embeddings_read_at_them_into_association() -> None:
    tracker = small_tracker("omc_n")
    frame, detections = scene(0)
    result = tracker.detector(frame, None, detections)
    embeddings = tracker.detector.embed(frame, detections[:, :4])
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(result.embeddings, embeddings, atol=1e-6)
    assert result.boxes_xyxy.tolist() == detections[:, :4].tolist() and result.levels.tolist() == [-1, -1]
    assert result.classes is None and result.scores.tolist() == pytest.approx([0.9, 0.8])
    tracker.update(frame, detections)
    np.testing.assert_allclose(tracker.association.active_templates(), embeddings, atol=1e-6)


def test_given_detections_are_checked_in_one_line() -> None:
    tracker = small_tracker("cstrack_n")
    frame, detections = scene(0)
    with pytest.raises(InputError, match=r"\(N, 5\) or \(N, 6\).*got shape \(2, 4\)"):
        tracker.update(frame, detections[:, :4])
    with pytest.raises(InputError, match="class column"):
        tracker.update(frame, np.column_stack([detections, [0.5, 1]]))
    with pytest.raises(InputError, match="got an object of type str"):
        tracker.update(frame, "boxes")
    classed = tracker.update(frame, np.column_stack([detections, [2, 5]]))
    assert [(t.cls, t.detection_index) for t in classed] == [(2, 0), (5, 1)]
    assert tracker.update(frame, np.zeros((0, 6))) == []


class OwnDetector:
    """A ready detector of the `Tracker(model)` kind, which cannot read appearance at other boxes."""

    has_recheck = False

    def __call__(self, frame_bgr: np.ndarray, templates: object = None) -> None:
        raise AssertionError("not called")


def test_given_detections_need_a_detector_that_reads_appearance() -> None:
    frame, detections = scene(0)
    with pytest.raises(InputError, match="detections= needs a cstrack Detector"):
        Tracker(OwnDetector(), NO_CMC).update(frame, detections)


def snapshot(tracks: list) -> list[tuple]:
    return [(t.track_id, t.box_xyxy.tolist(), t.score, t.detection_index) for t in tracks]


def test_update_is_detect_then_associate_and_ready_results_need_no_detector() -> None:
    """`update(frame)` is `associate(detect(frame), frame)`; a tracker without a detector
    associates ready results (cached detections), with no frame when it estimates no motion."""
    live, split = small_tracker("omc_n"), small_tracker("omc_n")
    ready = Tracker(None, NO_CMC)
    for shift in (0, 2, 4, 6):
        frame, detections = scene(shift)
        expected = snapshot(live.update(frame, detections[:1] if shift == 4 else detections))
        result = split.detect(frame, detections[:1] if shift == 4 else detections)
        assert snapshot(split.associate(result, frame)) == expected
        assert snapshot(ready.associate(result)) == expected
    assert split.timing.frames == ready.timing.frames == 4 and ready.timing.model == 0
    with pytest.raises(InputError, match="no detector"):
        ready.detect(frame)
    with pytest.raises(InputError, match="camera-motion estimation reads the frame"):
        Tracker(None, NO_CMC.replace(cmc="sof")).associate(result)


def test_associate_fuses_recheck_candidates_drops_flat_boxes_and_keeps_given_indices() -> None:
    tracker = Tracker(None, NO_CMC, classes=[0])
    first = DetectionResult(np.stack([LEFT, RIGHT]), [0.9, 0.8], detection_index=[5, 6])
    assert snapshot(tracker.associate(first))[0][3] == 5
    # The left one is missed; the re-check finds it again. A flat box and a car go.
    second = DetectionResult(
        [RIGHT + 1, [0, 0, 0, 50], RIGHT + 40], [0.8, 0.9, 0.9], classes=[0, 0, 1],
        trans_boxes_xyxy=[LEFT + 1, RIGHT + 1], trans_scores=[0.6, 0.7], trans_classes=[0, 0],
    )  # fmt: skip
    tracks = {t.track_id: t.detection_index for t in tracker.associate(second)}
    assert tracks == {1: -1, 2: 0}  # the covered candidate at the right one is not added
    # Without the re-check its candidates are ignored; without `classes` the car is tracked too.
    assert [t.detection_index for t in Tracker(None, NO_CMC, recheck=False).associate(second)] == [0, 2]


def test_cstrack_yolox_nano_tracks_and_exports_from_the_command_line(
    frame_folder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = frame_folder(2)
    size = ["--img-size", "128", "96"]
    assert (
        main(
            [
                "track",
                str(frames),
                "--model",
                "cstrack_yolox_nano",
                *size,
                "--output",
                str(tmp_path / "t"),
                "--quiet",
            ]
        )
        == 0
    )
    assert (tmp_path / "t" / "frames.txt").is_file()
    graph = tmp_path / "nano.onnx"
    assert main(["export", "--model", "cstrack_yolox_nano", *size, "--output", str(graph)]) == 0
    assert graph.is_file() and not graph.with_suffix(".recheck.onnx").exists()
    capsys.readouterr()

"""Camera-motion estimation against a rendered moving camera's exact motion, and the tracker
keeping identities through a fast pan with it (detections simulated from the ground truth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cstrack.data import MotSequence
from cstrack.data.gt_detections import FrameDetections, SimulationConfig, simulate_detections
from cstrack.data.synth.motion import camera_warps
from cstrack.data.synth.scene import SynthConfig
from cstrack.data.synth.write import generate_sequence
from cstrack.errors import InputError
from cstrack.evaluation import SequenceTables, evaluate_tables
from cstrack.pipeline.camera_motion import CameraMotion, build_camera_motion
from cstrack.pipeline.tracker_config import TrackerConfig
from cstrack.tracking import DetectionResult, JDETracker
from cstrack.tracking.rows import results_rows

# A fast pan: the view sweeps 0.6 frame widths and back in 3 s, at 8 fps up to 25 px per frame,
# with the speed changing every frame, so a constant-velocity filter cannot follow it.
PAN = SynthConfig(frames=48, width=320, height=240, fps=8, people=5, camera_motion="pan", camera_period=3)


@pytest.fixture(scope="module")
def pan(tmp_path_factory: pytest.TempPathFactory) -> MotSequence:
    return MotSequence.open(generate_sequence(tmp_path_factory.mktemp("pan"), PAN, seed=3))


@pytest.fixture(scope="module")
def detections(pan: MotSequence) -> list[FrameDetections]:
    simulation = SimulationConfig(false_positives=0, jitter=0.02)
    return simulate_detections(pan.read_gt(), PAN.frames, (PAN.width, PAN.height), simulation)


def true_warps(sequence: MotSequence) -> np.ndarray:
    return camera_warps(np.loadtxt(sequence.path / "camera.txt", delimiter=",")[:, 1:])


def estimated_warps(method: str, sequence: MotSequence, detections: list[FrameDetections]) -> np.ndarray:
    motion = CameraMotion(method)
    return np.array([motion(image, d.boxes_xyxy) for (_, image), d in zip(sequence.frames(), detections)])


@pytest.mark.parametrize(
    ("method", "typical", "worst"), [("sof", 0.1, 0.3), ("orb", 0.5, 3.0), ("ecc", 0.5, 3.0)]
)
def test_estimates_follow_the_rendered_camera(
    method: str, typical: float, worst: float, pan: MotSequence, detections: list[FrameDetections]
) -> None:
    """Errors of the shift in pixels (median and largest) and of the linear part."""
    truth = true_warps(pan)
    assert np.abs(truth[:, 0, 2]).max() > 20  # the pan is fast
    estimated = estimated_warps(method, pan, detections)
    np.testing.assert_array_equal(estimated[0], np.eye(2, 3))  # nothing to compare the first with
    error = np.abs(estimated[:, :, 2] - truth[:, :, 2])
    assert np.median(error) < typical
    assert error.max() < worst
    np.testing.assert_allclose(estimated[:, :, :2], truth[:, :, :2], atol=0.02)


def id_switches(detections: list[FrameDetections], gt: np.ndarray, warps: np.ndarray | None) -> int:
    tracker = JDETracker(frame_rate=PAN.fps)
    rows = []
    for frame, found in enumerate(detections, start=1):
        if warps is not None:
            tracker.compensate_camera(warps[frame - 1])
        tracks = tracker.update(DetectionResult(found.boxes_xyxy, found.scores, found.embeddings))
        rows.append(results_rows(frame, tracks))
    scores = evaluate_tables({"pan": SequenceTables(gt, np.vstack(rows), PAN.frames)})
    return int(scores["combined"]["IDSW"])


def test_compensation_keeps_identities_through_a_fast_pan(
    pan: MotSequence, detections: list[FrameDetections]
) -> None:
    gt = pan.read_gt()
    without = id_switches(detections, gt, None)
    with_sof = id_switches(detections, gt, estimated_warps("sof", pan, detections))
    assert without >= 20
    assert with_sof <= without / 2
    assert with_sof == id_switches(detections, gt, true_warps(pan))  # as good as the exact motion


def test_a_frame_without_texture_gives_the_identity() -> None:
    motion = CameraMotion("sof")
    blank = np.zeros((120, 160, 3), np.uint8)
    for _ in range(2):
        np.testing.assert_array_equal(motion(blank, np.zeros((0, 4))), np.eye(2, 3))


def test_methods_are_checked() -> None:
    assert build_camera_motion("none") is None
    with pytest.raises(InputError, match="camera motion method must be one of sof, ecc, orb"):
        build_camera_motion("sift")
    with pytest.raises(InputError, match="cmc: must be one of none, sof, ecc, orb, got 'sift'"):
        TrackerConfig().replace(cmc="sift")
    assert TrackerConfig().replace(cmc="ecc").association.cmc == "ecc"


def test_config_file_carries_the_new_fields(tmp_path: Path) -> None:
    config = TrackerConfig().replace(cmc="sof", reid_seconds=30.0)
    loaded = TrackerConfig.load(config.save(tmp_path / "tracker.yaml"))
    assert (loaded.association.cmc, loaded.association.reid_seconds) == ("sof", 30.0)

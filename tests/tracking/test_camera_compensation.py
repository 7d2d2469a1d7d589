"""Camera-motion compensation in the tracking library: the warp of Kalman states, and a tracker
keeping its identities through camera jumps that break them without it."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.tracking import DetectionResult, JDETracker, KalmanFilter
from cstrack.tracking.kalman import dense_covariance, warp_states


def similarity(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[cos, -sin, shift[0]], [sin, cos, shift[1]]])


def states(count: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Kalman states after a few predictions and updates, velocities and cross terms non-zero."""
    rng = np.random.default_rng(seed)
    kalman = KalmanFilter()
    measurements = np.column_stack(
        [
            rng.uniform(0, 800, count),
            rng.uniform(0, 600, count),
            rng.uniform(0.3, 0.5, count),
            rng.uniform(50, 200, count),
        ]
    )
    mean, covariance = kalman.initiate(measurements)
    for step in range(3):
        kalman.predict(mean, covariance)
        kalman.update(mean, covariance, measurements + step * np.array([4.0, -2.0, 0.0, 1.0]))
    return mean, covariance


def test_a_similarity_warp_moves_states_as_the_dense_filter_would() -> None:
    """Exact for rotation + uniform scale + shift: the mean and A P A^T of the full 8x8 covariance."""
    mean, covariance = states()
    warp = similarity(0.05, 1.03, (12.0, -7.0))
    linear, shift = warp[:, :2], warp[:, 2]
    expected_mean = mean.copy()
    expected_mean[:, :2] = mean[:, :2] @ linear.T + shift
    expected_mean[:, 4:6] = mean[:, 4:6] @ linear.T
    expected_mean[:, [3, 7]] *= 1.03
    # Full-state map: A on (x, y) and (vx, vy), the scale on h and vh, the aspect kept.
    full = np.eye(8)
    for first in (0, 4):
        full[first : first + 2, first : first + 2] = linear
    full[[3, 7], [3, 7]] = 1.03
    expected_covariance = full @ dense_covariance(covariance) @ full.T
    warp_states(warp, mean, covariance)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(dense_covariance(covariance), expected_covariance, rtol=1e-9, atol=1e-9)


def test_the_identity_and_boxes_alone() -> None:
    mean, covariance = states()
    before = mean.copy(), covariance.copy()
    warp_states(np.eye(2, 3), mean, covariance)
    np.testing.assert_array_equal(mean, before[0])
    np.testing.assert_array_equal(covariance, before[1])
    boxes = mean[:, :4].copy()
    warp_states(similarity(0.0, 2.0, (1.0, 0.0)), boxes)  # xyah boxes: centre moved, height scaled
    np.testing.assert_allclose(boxes[:, :2], 2 * mean[:, :2] + [1.0, 0.0])
    np.testing.assert_allclose(boxes[:, 2:], mean[:, 2:4] * [1.0, 2.0])


def walkers(frames: int, jumps: np.ndarray) -> list[np.ndarray]:
    """Boxes of 6 people walking slowly apart in a row, seen by a camera whose view shifts by
    `jumps[t]` pixels before frame t (the scene moves the other way)."""
    x = np.arange(6) * 90.0 + 50
    camera = np.cumsum(jumps)
    return [
        np.column_stack(
            [x + 1.5 * t - camera[t], np.full(6, 100.0), x + 1.5 * t - camera[t] + 40, np.full(6, 200.0)]
        )
        for t in range(frames)
    ]


def identities(boxes: list[np.ndarray], jumps: np.ndarray | None) -> list[list[int]]:
    tracker = JDETracker(frame_rate=10)
    found = []
    for t, frame in enumerate(boxes):
        if jumps is not None:
            tracker.compensate_camera([[1.0, 0.0, -jumps[t]], [0.0, 1.0, 0.0]])
        tracks = tracker.update(DetectionResult(frame, np.full(len(frame), 0.9)))
        tracks = sorted(tracks, key=lambda track: track.box_xyxy[0])
        found.append([track.track_id for track in tracks])
    return found


def test_compensation_keeps_identities_through_camera_jumps() -> None:
    """The view jumps 45 px (more than a box width) every fifth frame, then stands still."""
    jumps = np.zeros(40)
    jumps[5::5] = 45.0
    boxes = walkers(40, jumps)
    compensated = identities(boxes, jumps)
    assert all(ids == compensated[1] for ids in compensated[1:]) and len(compensated[1]) == 6
    plain = identities(boxes, None)
    assert len({i for ids in plain for i in ids}) > 6  # without it, the jumps start new tracks


def test_bad_warps_are_refused() -> None:
    tracker = JDETracker()
    with pytest.raises(ValueError, match="2x3"):
        tracker.compensate_camera(np.eye(3))
    with pytest.raises(ValueError, match="2x3"):
        tracker.compensate_camera([[1.0, 0.0, np.nan], [0.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="orientation"):
        tracker.compensate_camera([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

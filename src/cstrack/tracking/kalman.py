"""Constant-velocity Kalman filter in (x, y, a, h), vectorised over tracks.

The state is the box centre (x, y), aspect ratio a = w / h, height h and their velocities, as in
JDE/CSTrack (and DeepSORT before them); noise scales with the box height. That filter starts from
a diagonal covariance and its transition and noise matrices never mix coordinates, so its 8x8
covariance always stays four independent 2x2 blocks (position, velocity) per coordinate. We keep
just those blocks: `covariance` is (T, 3, 4) holding, per coordinate, the position variance, the
position-velocity covariance and the velocity variance. The results equal the 8x8 filter's
(`dense_covariance` rebuilds the full matrices); the arithmetic is elementwise and fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

POSITION_VAR, CROSS_COV, VELOCITY_VAR = 0, 1, 2


@dataclass(frozen=True)
class KalmanFilter:
    """Noise model of the filter; the defaults are the reference tracker's."""

    std_weight_position: float = 1.0 / 20
    std_weight_velocity: float = 1.0 / 160

    def _variance(self, h: NDArray[np.float64], weight: float, aspect_std: float) -> NDArray[np.float64]:
        """Per-coordinate noise variances (T, 4): (weight * h)^2 for x, y, h; fixed for aspect."""
        squared = weight * weight
        variance: NDArray[np.float64] = (h * h)[:, None] * np.array([squared, squared, 0.0, squared])
        variance[:, 2] = aspect_std * aspect_std
        return variance

    def initiate(self, measurements: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """New tracks from measurements (M, 4) in xyah: zero velocity, height-scaled spread."""
        mean = np.zeros((len(measurements), 8))
        mean[:, :4] = measurements
        h = measurements[:, 3]
        covariance = np.zeros((len(measurements), 3, 4))
        covariance[:, POSITION_VAR] = self._variance(h, 2 * self.std_weight_position, 1e-2)
        covariance[:, VELOCITY_VAR] = self._variance(h, 10 * self.std_weight_velocity, 1e-5)
        return mean, covariance

    def predict(self, mean: NDArray[np.float64], covariance: NDArray[np.float64]) -> None:
        """One step ahead, in place: x += v, P = F P F^T + Q."""
        h = mean[:, 3]
        position_noise = self._variance(h, self.std_weight_position, 1e-2)
        velocity_noise = self._variance(h, self.std_weight_velocity, 1e-5)
        mean[:, :4] += mean[:, 4:]
        pos, cross, vel = covariance[:, POSITION_VAR], covariance[:, CROSS_COV], covariance[:, VELOCITY_VAR]
        pos += 2 * cross + vel + position_noise
        cross += vel
        vel += velocity_noise

    def project(
        self, mean: NDArray[np.float64], covariance: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Measurement-space mean (T, 4) and innovation variances (T, 4): S is diagonal."""
        noise = self._variance(mean[:, 3], self.std_weight_position, 1e-1)
        return mean[:, :4].copy(), covariance[:, POSITION_VAR] + noise

    def update(
        self, mean: NDArray[np.float64], covariance: NDArray[np.float64], measurements: NDArray[np.float64]
    ) -> None:
        """Correct tracks with their matched measurements (M, 4) xyah, in place."""
        projected_mean, innovation_var = self.project(mean, covariance)
        pos, cross, vel = covariance[:, POSITION_VAR], covariance[:, CROSS_COV], covariance[:, VELOCITY_VAR]
        gain_pos = pos / innovation_var
        gain_vel = cross / innovation_var
        innovation = measurements - projected_mean
        mean[:, :4] += gain_pos * innovation
        mean[:, 4:] += gain_vel * innovation
        vel -= gain_vel * cross
        cross -= gain_pos * cross
        pos -= gain_pos * pos


def squared_mahalanobis(
    projected_mean: NDArray[np.float64],
    innovation_var: NDArray[np.float64],
    measurements: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Squared Mahalanobis distance, row k of means (K, 4) and variances (K, 4) to point k."""
    diff = measurements - projected_mean
    distance: NDArray[np.float64] = np.einsum("ki,ki->k", diff * diff, 1.0 / innovation_var)
    return distance


def dense_covariance(covariance: NDArray[np.float64]) -> NDArray[np.float64]:
    """The full (T, 8, 8) covariances in the order (x, y, a, h, vx, vy, va, vh)."""
    dense = np.zeros((len(covariance), 8, 8))
    diag = np.arange(4)
    dense[:, diag, diag] = covariance[:, POSITION_VAR]
    dense[:, diag, diag + 4] = covariance[:, CROSS_COV]
    dense[:, diag + 4, diag] = covariance[:, CROSS_COV]
    dense[:, diag + 4, diag + 4] = covariance[:, VELOCITY_VAR]
    return dense


def warp_states(
    warp: NDArray[np.float64], mean: NDArray[np.float64], covariance: NDArray[np.float64] | None = None
) -> None:
    """Move states (T, 8) or boxes (T, 4) in xyah, and their covariances, by a 2x3 affine image warp,
    in place: what camera-motion compensation does before the Kalman prediction.

    The centre maps through the whole warp and the velocity through its linear part; the height
    scales with the warp's vertical axis and the aspect ratio with the ratio of its axes. The
    covariance keeps its per-coordinate blocks: x and y take the diagonal of A P A^T, which is exact
    for a similarity warp (rotation, uniform scale, shift: what camera-motion estimates are) since
    the filter keeps x and y with equal variances.
    """
    linear, shift = warp[:, :2], warp[:, 2]
    scale_x, scale_y = math.hypot(linear[0, 0], linear[1, 0]), math.hypot(linear[0, 1], linear[1, 1])
    aspect = scale_x / scale_y
    mean[:, :2] = mean[:, :2] @ linear.T + shift
    mean[:, 2] *= aspect
    mean[:, 3] *= scale_y
    if mean.shape[1] == 8:
        mean[:, 4:6] = mean[:, 4:6] @ linear.T
        mean[:, 6] *= aspect
        mean[:, 7] *= scale_y
    if covariance is None:
        return
    squared = linear * linear
    x, y = covariance[:, :, 0].copy(), covariance[:, :, 1].copy()
    covariance[:, :, 0] = squared[0, 0] * x + squared[0, 1] * y
    covariance[:, :, 1] = squared[1, 0] * x + squared[1, 1] * y
    covariance[:, :, 2] *= aspect * aspect
    covariance[:, :, 3] *= scale_y * scale_y

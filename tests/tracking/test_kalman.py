"""The factored Kalman filter against a textbook 8x8 implementation and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.tracking.kalman import KalmanFilter, dense_covariance, squared_mahalanobis

WP, WV = 1 / 20, 1 / 160


def textbook_step(mean, cov, measurement):
    """One predict + update of the reference's 8x8 filter, written out with full matrices."""
    h = mean[3]
    motion = np.eye(8)
    motion[:4, 4:] = np.eye(4)
    q = np.diag(np.square([WP * h, WP * h, 1e-2, WP * h, WV * h, WV * h, 1e-5, WV * h]))
    mean = motion @ mean
    cov = motion @ cov @ motion.T + q
    h = mean[3]
    r = np.diag(np.square([WP * h, WP * h, 1e-1, WP * h]))
    project = np.eye(4, 8)
    s = project @ cov @ project.T + r
    gain = cov @ project.T @ np.linalg.inv(s)
    mean = mean + gain @ (measurement - project @ mean)
    cov = cov - gain @ s @ gain.T
    return mean, cov


def test_initiate_matches_reference_spread():
    kf = KalmanFilter()
    mean, cov = kf.initiate(np.array([[100.0, 50.0, 0.5, 80.0]]))
    assert mean[0].tolist() == [100.0, 50.0, 0.5, 80.0, 0, 0, 0, 0]
    expected = np.square(
        [2 * WP * 80, 2 * WP * 80, 1e-2, 2 * WP * 80, 10 * WV * 80, 10 * WV * 80, 1e-5, 10 * WV * 80]
    )
    np.testing.assert_allclose(np.diag(dense_covariance(cov)[0]), expected)


def test_predict_by_hand():
    kf = KalmanFilter()
    mean, cov = kf.initiate(np.array([[10.0, 20.0, 0.5, 40.0]]))
    mean[0, 4:] = [1.0, -2.0, 0.0, 0.5]
    kf.predict(mean, cov)
    assert mean[0, :4].tolist() == [11.0, 18.0, 0.5, 40.5]
    # x variance: (2 * 40/20)^2 + (10 * 40/160)^2 + (40/20)^2 = 16 + 6.25 + 4
    assert cov[0, 0, 0] == pytest.approx(26.25)
    # x-vx covariance: the velocity variance 6.25; velocity variance grows by (40/160)^2
    assert cov[0, 1, 0] == pytest.approx(6.25)
    assert cov[0, 2, 0] == pytest.approx(6.25 + 0.0625)


def test_update_by_hand():
    kf = KalmanFilter()
    mean = np.array([[0.0, 0.0, 0.5, 100.0, 0, 0, 0, 0]])
    cov = np.zeros((1, 3, 4))
    cov[0, 0] = [20.0, 20.0, 1.0, 20.0]
    kf.update(mean, cov, np.array([[10.0, 0.0, 0.5, 100.0]]))
    # S_x = 20 + (100/20)^2 = 45, gain 20/45: x moves 10 * 20/45, variance 20 - 20^2/45
    assert mean[0, 0] == pytest.approx(200 / 45)
    assert cov[0, 0, 0] == pytest.approx(20 - 400 / 45)


def test_many_steps_equal_textbook_filter():
    rng = np.random.default_rng(3)
    kf = KalmanFilter()
    start = np.array([[300.0, 200.0, 0.4, 120.0], [50.0, 60.0, 0.6, 30.0]])
    mean, cov = kf.initiate(start)
    ref = [(mean[i].copy(), dense_covariance(cov)[i]) for i in range(2)]
    for step in range(20):
        z = start + np.array([3.0, -1.0, 0.0, 0.5]) * step + rng.normal(0, 1, (2, 4)) * [2, 2, 0.01, 1]
        kf.predict(mean, cov)
        kf.update(mean, cov, z)
        ref = [textbook_step(m, c, z[i]) for i, (m, c) in enumerate(ref)]
    for i in range(2):
        np.testing.assert_allclose(mean[i], ref[i][0], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(dense_covariance(cov)[i], ref[i][1], rtol=1e-9, atol=1e-12)


def test_mahalanobis_equals_dense_inverse():
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 5, (6, 4))
    var = rng.uniform(1, 10, (6, 4))
    points = rng.normal(0, 5, (6, 4))
    dense = [(points[k] - mean[k]) @ np.linalg.inv(np.diag(var[k])) @ (points[k] - mean[k]) for k in range(6)]
    np.testing.assert_allclose(squared_mahalanobis(mean, var, points), dense)

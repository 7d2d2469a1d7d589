"""Association steps: IoU, gating, cosine costs and the limited assignment."""

from __future__ import annotations

import itertools

import lap
import numpy as np
import pytest

from cstrack.tracking.kalman import squared_mahalanobis
from cstrack.tracking.matching import (
    Pairs,
    assign,
    cosine_distance_pairs,
    gate_pairs,
    iou_matrix,
    linear_assignment,
    paired_iou,
    xyah_to_xyxy,
    xyxy_to_xyah,
)


def test_iou_by_hand():
    a = np.array([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 2.0, 2.0]])
    b = np.array([[5.0, 5.0, 15.0, 15.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 10.0]])
    expected = np.array([[25 / 175, 0.0, 1.0], [0.0, 0.0, 4 / 100]])
    np.testing.assert_allclose(iou_matrix(a, b), expected)
    np.testing.assert_allclose(paired_iou(a, b[[0, 2]]), [25 / 175, 4 / 100])


def test_box_conversions_round_trip():
    boxes = np.array([[10.0, 20.0, 50.0, 120.0]])
    xyah = xyxy_to_xyah(boxes)
    np.testing.assert_allclose(xyah, [[30.0, 70.0, 0.4, 100.0]])
    np.testing.assert_allclose(xyah_to_xyxy(xyah), boxes)


def brute_force_cost(cost: np.ndarray, limit: float) -> float:
    """Best total over every partial matching, each unmatched row or column costing limit / 2."""
    rows, cols = cost.shape
    best = (rows + cols) * limit / 2
    for k in range(1, min(rows, cols) + 1):
        for chosen_rows in itertools.combinations(range(rows), k):
            for chosen_cols in itertools.permutations(range(cols), k):
                pairs = cost[list(chosen_rows), list(chosen_cols)]
                if np.all(pairs < limit):
                    best = min(best, pairs.sum() + (rows + cols - 2 * k) * limit / 2)
    return best


def total_cost(result, cost: np.ndarray, limit: float) -> float:
    unmatched = len(result.unmatched_rows) + len(result.unmatched_cols)
    return cost[result.rows, result.cols].sum() + unmatched * limit / 2


@pytest.mark.parametrize("seed", range(40))
def test_assignment_is_optimal_and_matches_lapjv(seed):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, 5, size=2)
    cost = rng.uniform(0, 1, (rows, cols))
    cost[rng.uniform(size=cost.shape) < 0.4] = np.inf
    result = linear_assignment(cost, 0.5)
    assert total_cost(result, cost, 0.5) == pytest.approx(brute_force_cost(cost, 0.5))
    assert sorted(set(range(rows)) - set(result.rows.tolist())) == result.unmatched_rows.tolist()
    assert sorted(set(range(cols)) - set(result.cols.tolist())) == result.unmatched_cols.tolist()
    if rows and cols:
        _, x, _ = lap.lapjv(np.where(np.isinf(cost), 1e6, cost), extend_cost=True, cost_limit=0.5)
        lap_pairs = {(r, c) for r, c in enumerate(x.tolist()) if c >= 0}
        assert set(zip(result.rows.tolist(), result.cols.tolist())) == lap_pairs


def test_assignment_respects_limit_and_resolves_conflicts():
    # Row 0 prefers column 0 (0.1), row 1 also (0.15) but can take column 1 (0.2): total 0.3 wins.
    cost = np.array([[0.1, 0.9], [0.15, 0.2], [0.6, 0.7]])
    result = linear_assignment(cost, 0.5)
    assert dict(zip(result.rows.tolist(), result.cols.tolist())) == {0: 0, 1: 1}
    assert result.unmatched_rows.tolist() == [2]
    lone = assign(Pairs(np.array([0]), np.array([0]), np.array([0.5])), 1, 1, 0.5)
    assert len(lone.rows) == 0


def test_gate_pairs_equal_dense_gate():
    rng = np.random.default_rng(1)
    means = np.column_stack(
        [rng.uniform(0, 500, 40), rng.uniform(0, 300, 40), rng.uniform(0.3, 0.6, 40), rng.uniform(30, 90, 40)]
    )
    variances = rng.uniform(5, 60, (40, 4))
    variances[:, 2] = rng.uniform(1e-3, 1e-2, 40)
    points = means[rng.integers(0, 40, 60)] + rng.normal(0, 6, (60, 4)) * [1, 1, 0.02, 1]
    pairs = gate_pairs(means, variances, points, threshold=9.4877)
    rows, cols = np.meshgrid(np.arange(40), np.arange(60), indexing="ij")
    dense = squared_mahalanobis(means[rows.ravel()], variances[rows.ravel()], points[cols.ravel()]).reshape(
        40, 60
    )
    expected = set(zip(*np.nonzero(dense <= 9.4877)))
    found = set(zip(pairs.rows.tolist(), pairs.cols.tolist()))
    assert found == {(int(r), int(c)) for r, c in expected}
    assert len(found) > 20
    np.testing.assert_allclose(pairs.costs, dense[pairs.rows, pairs.cols])


def test_cosine_distance_pairs():
    templates = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    embeddings = np.array([[2.0, 0.0], [-1.0, 1.0]], dtype=np.float32)
    norms = 1 / np.linalg.norm(embeddings, axis=1)
    dist = cosine_distance_pairs(
        templates, embeddings, np.array([0, 1, 0]), np.array([0, 1, 1]), norms[[0, 1, 1]]
    )
    np.testing.assert_allclose(dist, [0.0, 1 - np.sqrt(0.5), 1 + np.sqrt(0.5)], rtol=1e-6)

"""Association steps as short pure functions over numpy arrays.

Costs are kept sparse: a list of candidate (track, detection) pairs with their costs. Gating and
cost limits discard almost every pair in real scenes, so working on the survivors keeps a frame
with a thousand live tracks well under a millisecond, where dense T x N matrices would not.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

import lap
import numpy as np
from numpy.typing import NDArray

from cstrack.config import CHI2_95_4DOF
from cstrack.tracking.kalman import squared_mahalanobis

#: A float dtype: IoUs keep their boxes' precision (float32 detections, float64 Kalman boxes).
_Float = TypeVar("_Float", bound=np.floating[Any])


class Pairs(NamedTuple):
    """Candidate pairs: track rows, detection columns and their costs, all of length K."""

    rows: NDArray[np.intp]
    cols: NDArray[np.intp]
    costs: NDArray[np.float64]


class Assignment(NamedTuple):
    """Result of an assignment: matched (row, col) pairs and what stayed unmatched."""

    rows: NDArray[np.intp]
    cols: NDArray[np.intp]
    unmatched_rows: NDArray[np.intp]
    unmatched_cols: NDArray[np.intp]


def xyxy_to_xyah(boxes: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """Corner boxes (N, 4) to centre, aspect ratio w/h and height, the Kalman measurement."""
    xyah = np.empty((len(boxes), 4))
    xyah[:, 3] = boxes[:, 3] - boxes[:, 1]
    xyah[:, 2] = (boxes[:, 2] - boxes[:, 0]) / xyah[:, 3]
    xyah[:, :2] = (boxes[:, :2] + boxes[:, 2:]) / 2
    return xyah


def xyah_to_xyxy(xyah: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """Inverse of xyxy_to_xyah, for (N, >=4) Kalman means."""
    half = np.empty((len(xyah), 2))
    half[:, 1] = xyah[:, 3] / 2
    half[:, 0] = xyah[:, 2] * half[:, 1]
    return np.hstack([xyah[:, :2] - half, xyah[:, :2] + half])


def iou_matrix(boxes_a: NDArray[_Float], boxes_b: NDArray[_Float]) -> NDArray[_Float]:
    """IoU of every box in (A, 4) with every box in (B, 4), xyxy in continuous coordinates."""
    top_left = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = np.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    wh = np.clip(bottom_right - top_left, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    iou: NDArray[_Float] = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou


def paired_iou(boxes_a: NDArray[_Float], boxes_b: NDArray[_Float]) -> NDArray[_Float]:
    """IoU of row k of (K, 4) with row k of (K, 4)."""
    wh = np.clip(
        np.minimum(boxes_a[:, 2:], boxes_b[:, 2:]) - np.maximum(boxes_a[:, :2], boxes_b[:, :2]), 0, None
    )
    inter = wh[:, 0] * wh[:, 1]
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    union = area_a + area_b - inter
    iou: NDArray[_Float] = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou


def iou_pairs(track_boxes: NDArray[np.float64], det_boxes: NDArray[np.float64], limit: float) -> Pairs:
    """IoU-distance pairs (1 - IoU) below the cost limit, the cost of stages 2 and 3."""
    if len(track_boxes) == 0 or len(det_boxes) == 0:
        return _no_pairs()
    cost = 1.0 - iou_matrix(track_boxes, det_boxes)
    rows, cols = np.nonzero(cost < limit)
    return Pairs(rows, cols, cost[rows, cols])


def same_class_pairs(pairs: Pairs, row_classes: NDArray[np.int64], col_classes: NDArray[np.int64]) -> Pairs:
    """The pairs whose track (row) and detection (column) have the same class: tracks never
    switch class. `row_classes` and `col_classes` are indexed by the pairs' rows and columns."""
    keep = row_classes[pairs.rows] == col_classes[pairs.cols]
    if keep.all():
        return pairs
    return Pairs(pairs.rows[keep], pairs.cols[keep], pairs.costs[keep])


def gate_pairs(
    projected_mean: NDArray[np.float64],
    innovation_var: NDArray[np.float64],
    measurements: NDArray[np.float64],
    threshold: float = CHI2_95_4DOF,
) -> Pairs:
    """Pairs whose squared Mahalanobis distance is within the gate, with that distance as cost.

    A pair can only pass if each coordinate alone does (|dx| <= sqrt(threshold * S_xx)), so a
    sort-and-sweep over x followed by a y test finds the few candidates before the exact test.
    """
    num_tracks, num_dets = len(projected_mean), len(measurements)
    if num_tracks == 0 or num_dets == 0:
        return _no_pairs()
    reach = np.sqrt(threshold * innovation_var[:, :2])
    order = np.argsort(measurements[:, 0], kind="stable")
    sorted_x = measurements[order, 0]
    lo = np.searchsorted(sorted_x, projected_mean[:, 0] - reach[:, 0], side="left")
    hi = np.searchsorted(sorted_x, projected_mean[:, 0] + reach[:, 0], side="right")
    counts = hi - lo
    rows = np.repeat(np.arange(num_tracks), counts)
    cols = order[np.arange(len(rows)) + np.repeat(lo - (np.cumsum(counts) - counts), counts)]
    near = np.abs(measurements[cols, 1] - projected_mean[rows, 1]) <= reach[rows, 1]
    rows, cols = rows[near], cols[near]
    distance = squared_mahalanobis(projected_mean[rows], innovation_var[rows], measurements[cols])
    keep = distance <= threshold
    return Pairs(rows[keep], cols[keep], distance[keep])


def cosine_distance_pairs(
    templates: NDArray[np.float32],
    embeddings: NDArray[np.float32],
    rows: NDArray[np.intp],
    cols: NDArray[np.intp],
    inverse_norms: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """1 - cosine similarity of unit templates[rows] and embeddings[cols], clipped at 0.

    `inverse_norms` (K,) are 1 / |embeddings[cols]| when the embeddings are not unit vectors.
    """
    similarity: NDArray[np.float32] = np.einsum("kd,kd->k", templates[rows], embeddings[cols])
    if inverse_norms is not None:
        similarity *= inverse_norms
    distance: NDArray[np.float32] = np.maximum(0.0, 1.0 - similarity)
    return distance


def assign(pairs: Pairs, num_rows: int, num_cols: int, limit: float) -> Assignment:
    """Minimum-cost assignment over candidate pairs, leaving a row or column unmatched for limit/2.

    Equal to JDE's lapjv(cost, extend_cost=True, cost_limit=limit) on the dense matrix. Pairs that
    share no row or column with another pair are their own component and need no solver; the rest
    are solved together by lapjv on the compact sub-matrix of the rows and columns they touch.
    """
    keep = pairs.costs < limit
    rows, cols, costs = pairs.rows[keep], pairs.cols[keep], pairs.costs[keep]
    if len(rows) == 0:
        return Assignment(rows, cols, np.arange(num_rows), np.arange(num_cols))
    row_degree = np.bincount(rows, minlength=num_rows)
    col_degree = np.bincount(cols, minlength=num_cols)
    alone = (row_degree[rows] == 1) & (col_degree[cols] == 1)
    matched_rows, matched_cols = [rows[alone]], [cols[alone]]
    if not alone.all():
        sub_rows, row_index = np.unique(rows[~alone], return_inverse=True)
        sub_cols, col_index = np.unique(cols[~alone], return_inverse=True)
        dense = np.full((len(sub_rows), len(sub_cols)), limit + 1.0)
        dense[row_index, col_index] = costs[~alone]
        _, row_to_col, _ = lap.lapjv(dense, extend_cost=True, cost_limit=limit)
        solved = np.flatnonzero(row_to_col >= 0)
        matched_rows.append(sub_rows[solved])
        matched_cols.append(sub_cols[row_to_col[solved]])
    matched_r = np.concatenate(matched_rows)
    matched_c = np.concatenate(matched_cols)
    return Assignment(
        matched_r, matched_c, _complement(matched_r, num_rows), _complement(matched_c, num_cols)
    )


def linear_assignment(cost: NDArray[np.float64], limit: float) -> Assignment:
    """Dense front end of `assign` for a (rows, cols) cost matrix; inf marks forbidden pairs."""
    rows, cols = np.nonzero(cost < limit)
    return assign(Pairs(rows, cols, cost[rows, cols]), cost.shape[0], cost.shape[1], limit)


def _complement(indices: NDArray[np.intp], size: int) -> NDArray[np.intp]:
    free = np.ones(size, dtype=bool)
    free[indices] = False
    return np.flatnonzero(free)


def _no_pairs() -> Pairs:
    empty = np.zeros(0, dtype=np.intp)
    return Pairs(empty, empty, np.zeros(0))

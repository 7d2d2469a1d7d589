"""Per-class scores: each class of a multi-class results table scored against its own gt rows."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.data.mot import mot_class_ids
from cstrack.evaluation import evaluate_per_class, evaluate_sequence, has_classes


def gt_rows(frames: int, track_id: int, x: float, cls: int) -> list[list[float]]:
    #        frame, id,       x,          y,  w,  h, mark, class, visibility
    return [[f, track_id, x + 2 * f, 50.0, 30, 60, 1, cls, 1.0] for f in range(1, frames + 1)]


def test_each_class_is_scored_on_its_own_rows() -> None:
    gt = np.array(gt_rows(10, 1, 0, 1) + gt_rows(10, 2, 200, 3), dtype=float)
    # Perfect pedestrians; the car is found in half the frames only.
    ped = [[f, 7, 2 * f, 50, 30, 60, 0.9, 1, -1, -1] for f in range(1, 11)]
    car = [[f, 8, 200 + 2 * f, 50, 30, 60, 0.9, 3, -1, -1] for f in range(1, 6)]
    results = np.array(ped + car, dtype=float)
    assert has_classes(results) and not has_classes(results[:, :7])
    scores = evaluate_per_class(gt, results, 10, {"pedestrian": 1, "car": 3})
    assert scores["pedestrian"]["HOTA"] == pytest.approx(1.0) and scores["pedestrian"]["FN"] == 0
    assert (
        scores["car"]["FN"] == 5
        and scores["car"]["FP"] == 0
        and scores["car"]["Recall"] == pytest.approx(0.5)
    )
    # A class's scores equal scoring that class alone.
    alone = evaluate_sequence(gt[gt[:, 7] == 3], results[results[:, 7] == 3][:, :7], 10, "MOT15")
    assert scores["car"] == alone


def test_per_class_scores_need_a_gt_class_column() -> None:
    with pytest.raises(ValueError, match="class column"):
        evaluate_per_class(np.zeros((0, 7)), np.zeros((0, 7)), 5, {"pedestrian": 1})


def test_mot_class_ids_follow_motchallenge_names() -> None:
    assert mot_class_ids(["pedestrian", "car"]).tolist() == [1, 3]
    assert mot_class_ids(["pedestrian", "dog"]).tolist() == [1, 2]  # not all MOTChallenge names

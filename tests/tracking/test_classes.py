"""Multi-class association: a track keeps its class unless told to associate across classes."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.config import AssociationConfig
from cstrack.tracking import DetectionResult, JDETracker, fuse_candidates
from cstrack.tracking.matching import Pairs, same_class_pairs

# Two targets at one place, frame after frame: a pedestrian (class 0) and, from frame 3 on,
# a box of class 1 exactly where the pedestrian was, the pedestrian having moved away.
PERSON = np.array([100.0, 100.0, 140.0, 200.0])


def run(
    tracker: JDETracker, frames: list[tuple[list[list[float]], list[int]]]
) -> list[list[tuple[int, int]]]:
    """(track id, class) of each frame's output tracks."""
    out = []
    for boxes, classes in frames:
        tracks = tracker.update(
            DetectionResult(np.array(boxes, float).reshape(-1, 4), np.full(len(boxes), 0.9), classes=classes)
        )
        out.append(sorted((t.track_id, t.cls) for t in tracks))
    return out


def frames_with_swap() -> list[tuple[list[list[float]], list[int]]]:
    """One box per frame at the same place; its class flips from 0 to 1 at the 4th frame."""
    return [([PERSON.tolist()], [0])] * 3 + [([PERSON.tolist()], [1])] * 3


def test_a_track_never_matches_a_detection_of_another_class() -> None:
    out = run(JDETracker(), frames_with_swap())
    assert out[:3] == [[(1, 0)]] * 3
    # The class-1 box starts its own track (confirmed on its second frame); track 1 is lost.
    assert out[3] == [] and out[4] == [(2, 1)] and out[5] == [(2, 1)]


def test_across_classes_a_track_takes_its_latest_class() -> None:
    out = run(JDETracker(AssociationConfig(class_aware=False)), frames_with_swap())
    assert out == [[(1, 0)]] * 3 + [[(1, 1)]] * 3


def test_two_classes_side_by_side_keep_their_ids_and_classes() -> None:
    car = [300.0, 150.0, 420.0, 210.0]
    frames = [([(PERSON + [5 * k, 0, 5 * k, 0]).tolist(), car], [0, 1]) for k in range(6)]
    out = run(JDETracker(), frames)
    assert out[-1] == [(1, 0), (2, 1)] and all(frame == out[0] for frame in out)


def test_duplicates_are_only_of_one_class() -> None:
    # A lost class-0 track and a tracked class-1 track at one place are not duplicates.
    tracker = JDETracker(AssociationConfig(track_buffer=30))
    run(tracker, frames_with_swap())
    lost = tracker.tracks(include_lost=True)
    assert sorted((t.track_id, t.cls, t.state.name) for t in lost) == [(1, 0, "LOST"), (2, 1, "TRACKED")]


def test_byte_low_score_boxes_keep_to_their_class() -> None:
    def after_low_box(low_class: int) -> list[str]:
        tracker = JDETracker(AssociationConfig(byte_low_threshold=0.1))
        for _ in range(3):
            tracker.update(DetectionResult(PERSON[None], [0.9], classes=[0]))
        tracker.update(DetectionResult(PERSON[None], [0.3], classes=[low_class]))
        return [t.state.name for t in tracker.tracks(include_lost=True)]

    assert after_low_box(0) == ["TRACKED"]  # BYTE keeps the track on a low box of its class
    assert after_low_box(1) == ["LOST"]  # not on one of another class


def test_class_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match=r"classes must have shape \(1,\)"):
        DetectionResult(PERSON[None], [0.9], classes=[0, 1])
    with pytest.raises(ValueError, match="classes must be integer indices"):
        DetectionResult(PERSON[None], [0.9], classes=[0.5])
    assert JDETracker().update(DetectionResult(PERSON[None], [0.9], classes=np.array([2.0])))[0].cls == 2


def test_same_class_pairs_filters_by_row_and_column_class() -> None:
    pairs = Pairs(np.array([0, 0, 1]), np.array([0, 1, 1]), np.array([0.1, 0.2, 0.3]))
    kept = same_class_pairs(pairs, np.array([0, 1]), np.array([0, 1]))
    assert kept.rows.tolist() == [0, 1] and kept.cols.tolist() == [0, 1] and kept.costs.tolist() == [0.1, 0.3]


def test_candidates_carry_classes_through_fusion() -> None:
    far = [[50.0, 0, 60, 20], [0.0, 0, 10, 20]]
    result = DetectionResult([[0.0, 0, 10, 20]], [0.9], None, classes=[1], trans_boxes_xyxy=far,
                             trans_scores=[0.4, 0.5], trans_classes=[0, 1])  # fmt: skip
    fused = fuse_candidates(result)
    assert fused.classes is not None and fused.classes.tolist() == [1, 0]
    assert fused.select([1], []).classes.tolist() == [0]
    # A side without classes is of class 0; neither with classes: none.
    one_sided = DetectionResult(
        [[0.0, 0, 10, 20]], [0.9], classes=[1], trans_boxes_xyxy=far, trans_scores=[0.4, 0.5]
    )
    assert fuse_candidates(one_sided).classes.tolist() == [1, 0]
    plain = DetectionResult([[0.0, 0, 10, 20]], [0.9], trans_boxes_xyxy=far, trans_scores=[0.4, 0.5])
    assert fuse_candidates(plain).classes is None

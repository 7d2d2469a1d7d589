"""The one detection type: shapes checked once, cut alike, thresholded, and OMC's candidate fusion
(a re-check candidate is added only where the detector has nothing)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cstrack.tracking import DetectionResult, fuse_candidates

BASIC = [[0.0, 0.0, 10.0, 20.0]]
# IoUs with the basic box: 180/220 (covered), 80/320 = 0.25 (1 - 0.25 >= 0.5: added), 0.
TRANS = [[1.0, 0.0, 11.0, 20.0], [6.0, 0.0, 16.0, 20.0], [50.0, 50.0, 60.0, 70.0]]


def with_candidates(**fields: object) -> DetectionResult:
    return DetectionResult(
        BASIC,
        [0.9],
        np.ones((1, 4), np.float32),
        trans_boxes_xyxy=TRANS,
        trans_scores=[0.6, 0.5, 0.4],
        trans_embeddings=np.arange(12, dtype=np.float32).reshape(3, 4),
        **fields,  # type: ignore[arg-type]
    )


def test_only_uncovered_candidates_are_added_after_the_detections() -> None:
    result = with_candidates()
    fused = fuse_candidates(result, eps=0.5)
    np.testing.assert_array_equal(fused.boxes_xyxy[1:], result.trans_boxes_xyxy[[1, 2]])
    np.testing.assert_array_equal(fused.scores, [0.9, 0.5, 0.4])
    np.testing.assert_array_equal(fused.embeddings[1:], result.trans_embeddings[[1, 2]])
    assert len(fused.trans_scores) == 0
    assert fused.detection_index.tolist() == [0, -1, -1]  # no detection of the caller's
    assert fused.may_start.tolist() == [True, False, False]  # they only continue tracks
    assert fuse_candidates(result, starts_tracks=True).may_start is None
    assert len(fuse_candidates(result, eps=0.8).scores) == 2


def test_low_score_detections_cover_nothing_and_masks_follow() -> None:
    result = with_candidates(low_score=[True], detection_index=[7])
    fused = fuse_candidates(result)
    assert len(fused.scores) == 4  # the low-score box does not cover the first candidate
    assert fused.low_score.tolist() == [True, False, False, False]  # candidates go to the cascade
    assert fused.detection_index.tolist() == [7, -1, -1, -1]


def test_fusion_edge_cases() -> None:
    empty = DetectionResult(np.zeros((0, 4)), np.zeros(0), trans_boxes_xyxy=[[0.0, 0.0, 5.0, 5.0]],
                            trans_scores=[0.4])  # fmt: skip
    assert len(fuse_candidates(empty).scores) == 1
    plain = DetectionResult(BASIC, [0.9])
    assert fuse_candidates(plain) is plain  # nothing to fuse
    with pytest.raises(ValueError, match="both have embeddings or neither"):
        DetectionResult(BASIC, [0.9], np.ones((1, 2)), trans_boxes_xyxy=BASIC, trans_scores=[0.5])
    with pytest.raises(ValueError, match=r"differ in size: \[2, 3\]"):
        DetectionResult(BASIC, [0.9], np.ones((1, 2)), trans_boxes_xyxy=BASIC, trans_scores=[0.5],
                        trans_embeddings=np.ones((1, 3)))  # fmt: skip


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"boxes_xyxy": np.zeros((2, 5))}, r"boxes_xyxy must be an \(N, 4\) array.*\(2, 5\)"),
        ({"boxes_xyxy": [[0, 0, 1], [0, 0, 1, 2]]}, "boxes_xyxy must be a numeric array, got list"),
        ({"boxes_xyxy": [["a", 0, 1, 2]]}, "boxes_xyxy must be a numeric array, got dtype"),
        ({"scores": [0.9, 0.8]}, r"got 1 boxes but scores of shape \(2,\)"),
        ({"embeddings": np.ones(4)}, r"embeddings must be \(1, D\)"),
        ({"trans_scores": [0.5]}, r"got 0 boxes but trans_scores of shape \(1,\)"),
        ({"may_start": [True, False]}, r"may_start must have shape \(1,\)"),
        ({"low_score": [[True]]}, r"low_score must have shape \(1,\)"),
        ({"classes": [0.5]}, "classes must be integer indices"),
        ({"detection_index": ["0"]}, "detection_index must be a numeric array"),
    ],
)
def test_shapes_are_checked_when_a_result_is_made(fields: dict[str, object], message: str) -> None:
    given: dict[str, object] = {"boxes_xyxy": BASIC, "scores": [0.9], **fields}
    with pytest.raises(ValueError, match=message):
        DetectionResult(**given)  # type: ignore[arg-type]


def test_lists_are_taken_as_arrays_and_whole_floats_as_indices() -> None:
    result = DetectionResult([], [], classes=[], trans_boxes_xyxy=[])
    assert result.boxes_xyxy.shape == (0, 4) and result.trans_boxes_xyxy.shape == (0, 4)
    indexed = DetectionResult(BASIC, [0.9], classes=[2.0], detection_index=np.array([3], np.int32))
    assert indexed.classes.dtype == np.int64 and indexed.classes.tolist() == [2]
    assert indexed.detection_index.dtype == np.int64
    boxes = np.array(BASIC, np.float32)
    assert DetectionResult(boxes, [0.9]).boxes_xyxy is boxes  # the detector's own dtype, no copy


def test_select_and_above_cut_every_field() -> None:
    result = DetectionResult(
        np.zeros((3, 4)), [0.2, 0.6, 0.9], np.zeros((3, 2)), [0, 1, 2], np.zeros((2, 4)), [0.1, 0.8],
        np.zeros((2, 2)), classes=[0, 1, 2], may_start=[True, False, True],
    )  # fmt: skip
    kept = result.above(0.5, 0.5)
    assert kept.classes.tolist() == [1, 2] and kept.levels.tolist() == [1, 2]
    assert kept.may_start.tolist() == [False, True] and kept.low_score is None
    assert kept.trans_scores.tolist() == [0.8] and kept.trans_embeddings.shape == (1, 2)
    for item in dataclasses.fields(DetectionResult):
        value = getattr(kept, item.name)
        assert value is None or len(value) == (1 if item.name.startswith("trans_") else 2), item.name
    assert len(result.above(0.5, None).trans_scores) == 0  # no re-check ran: no candidates

"""OMC candidate fusion: a transductive box is added only where the detector has nothing."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.tracking import Candidates, fuse_candidates


def test_only_uncovered_transductive_boxes_are_added():
    basic = Candidates(np.array([[0.0, 0.0, 10.0, 20.0]]), np.array([0.9]), np.ones((1, 4), np.float32))
    trans = Candidates(
        np.array([[1.0, 0.0, 11.0, 20.0], [6.0, 0.0, 16.0, 20.0], [50.0, 50.0, 60.0, 70.0]]),
        np.array([0.6, 0.5, 0.4]),
        np.arange(12, dtype=np.float32).reshape(3, 4),
    )
    # IoUs with the basic box: 180/220 (covered), 80/320 = 0.25 (1 - 0.25 >= 0.5: added), 0.
    fused = fuse_candidates(basic, trans, eps=0.5)
    np.testing.assert_array_equal(fused.boxes_xyxy[1:], trans.boxes_xyxy[[1, 2]])
    np.testing.assert_array_equal(fused.scores, [0.9, 0.5, 0.4])
    np.testing.assert_array_equal(fused.embeddings[1:], trans.embeddings[[1, 2]])
    assert len(fuse_candidates(basic, trans, eps=0.8).scores) == 2


def test_fusion_edge_cases():
    empty = Candidates(np.zeros((0, 4)), np.zeros(0), None)
    trans = Candidates(np.array([[0.0, 0.0, 5.0, 5.0]]), np.array([0.4]), None)
    assert len(fuse_candidates(empty, trans).scores) == 1
    assert fuse_candidates(trans, empty) is trans
    with pytest.raises(ValueError):
        fuse_candidates(Candidates(trans.boxes_xyxy, trans.scores, np.ones((1, 2))), trans)

"""Rank-1 and mAP of cross-camera retrieval, against hand-worked rankings."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.evaluation.retrieval import cross_camera_scores, retrieval_scores


def test_a_perfect_embedding_scores_one() -> None:
    ids = np.array([0, 1, 2])
    scores = retrieval_scores(np.eye(3), ids, np.eye(3) * 2, ids)
    assert (scores.rank1, scores.mean_ap, scores.queries) == (1.0, 1.0, 3)


def test_average_precision_of_a_hand_worked_ranking() -> None:
    # One query; the gallery ranked by similarity: wrong (0.9), right (0.8), wrong (0.5), right (0.1).
    query = np.array([[1.0, 0.0]])
    angles = np.arccos([0.9, 0.8, 0.5, 0.1])
    gallery = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    scores = retrieval_scores(query, np.array([7]), gallery, np.array([3, 7, 4, 7]))
    assert scores.rank1 == 0.0
    assert scores.mean_ap == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_ties_count_against_the_query_and_absent_identities_are_skipped() -> None:
    query = np.array([[1.0, 0.0], [0.0, 1.0]])
    gallery = np.array([[1.0, 0.0], [1.0, 0.0]])
    scores = retrieval_scores(query, np.array([1, 9]), gallery, np.array([1, 2]))
    assert scores.queries == 1  # identity 9 is not in the gallery
    assert scores.rank1 == 0.0  # the true match ties with a wrong one: ranked after it
    assert scores.mean_ap == pytest.approx(0.5)


def test_both_camera_directions_are_pooled() -> None:
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0], [0.0, 1.0]])
    ids = np.array([0, 1, 0, 1, 2])
    cameras = np.array([0, 0, 1, 1, 0])
    scores = cross_camera_scores(embeddings, ids, cameras)
    # A -> B: ids 0 and 1 found (2 queries; id 2 has no match in B); B -> A: id 1's nearest in A
    # is id 2 (0, 1) against its own (0, 1) too: a tie, ranked against it.
    assert scores.queries == 4
    assert scores.rank1 == pytest.approx(3 / 4)

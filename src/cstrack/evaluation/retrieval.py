"""Cross-camera retrieval scores of an embedding: rank-1 accuracy and mean average precision.

The standard ReID check, written once over arrays: every query is ranked against a gallery of
another camera by cosine similarity; rank-1 is the share of queries whose nearest gallery item
is the same identity, mAP the mean over queries of the average precision of that ranking.
Queries whose identity is not in the gallery are skipped, as in the usual protocols.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class RetrievalScores:
    rank1: float
    mean_ap: float
    queries: int  # queries scored (those with their identity in the gallery)


def _unit(x: NDArray[np.floating]) -> NDArray[np.float64]:
    values = np.asarray(x, dtype=np.float64)
    unit: NDArray[np.float64] = values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)
    return unit


def retrieval_scores(
    query: NDArray[np.floating],
    query_ids: NDArray[np.integer],
    gallery: NDArray[np.floating],
    gallery_ids: NDArray[np.integer],
) -> RetrievalScores:
    """Rank-1 and mAP of queries (Q, E) against a gallery (G, E), cosine similarity; ties are
    broken against the query (a true match ranks after equally similar wrong ones)."""
    query_ids, gallery_ids = np.asarray(query_ids), np.asarray(gallery_ids)
    if len(query) != len(query_ids) or len(gallery) != len(gallery_ids):
        raise ValueError("each embedding needs one identity")
    scored = np.isin(query_ids, gallery_ids)
    if not scored.any():
        return RetrievalScores(0.0, 0.0, 0)
    similarity = _unit(query[scored]) @ _unit(gallery).T
    matches = query_ids[scored][:, None] == gallery_ids[None, :]
    # Stable sort on (-similarity, match): wrong items first among equal similarities.
    order = np.lexsort((matches, -similarity), axis=1)
    ranked = np.take_along_axis(matches, order, axis=1)
    hits = np.cumsum(ranked, axis=1)
    precision = hits / np.arange(1, ranked.shape[1] + 1)
    average_precision = (precision * ranked).sum(1) / ranked.sum(1)
    return RetrievalScores(float(ranked[:, 0].mean()), float(average_precision.mean()), int(scored.sum()))


def cross_camera_scores(
    embeddings: NDArray[np.floating], ids: NDArray[np.integer], cameras: NDArray[np.integer]
) -> RetrievalScores:
    """Both directions of a two-camera set (camera 0 queries against camera 1's gallery and the
    reverse), pooled over all queries."""
    cameras = np.asarray(cameras)
    ids = np.asarray(ids)
    a, b = cameras == 0, cameras == 1
    forward = retrieval_scores(embeddings[a], ids[a], embeddings[b], ids[b])
    backward = retrieval_scores(embeddings[b], ids[b], embeddings[a], ids[a])
    return pooled_scores([forward, backward])


def pooled_scores(parts: Sequence[RetrievalScores]) -> RetrievalScores:
    """Scores of several query sets as one: rank-1 and mAP weighted by their query counts."""
    total = sum(part.queries for part in parts)
    if total == 0:
        return RetrievalScores(0.0, 0.0, 0)
    rank1 = sum(part.rank1 * part.queries for part in parts) / total
    return RetrievalScores(rank1, sum(part.mean_ap * part.queries for part in parts) / total, total)

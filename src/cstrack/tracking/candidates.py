"""Detections handed to the tracker, and OMC's candidate fusion (OMC paper eq. 10): re-check
detections fill the detector's misses."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from cstrack.tracking.matching import iou_matrix


class Candidates(NamedTuple):
    """Detections handed to the tracker: boxes xyxy (N, 4), scores (N,), embeddings (N, D) or None."""

    boxes_xyxy: NDArray[np.floating[Any]]
    scores: NDArray[np.floating[Any]]
    embeddings: NDArray[np.floating[Any]] | None


def fuse_candidates(basic: Candidates, transductive: Candidates, eps: float = 0.5) -> Candidates:
    """The basic detections plus every transductive one with 1 - max IoU(basic) >= eps.

    A transductive box that overlaps no basic detection is a target the detector missed (the
    re-check network found it from a track template); one that overlaps is already covered.
    """
    if len(transductive.boxes_xyxy) == 0:
        return basic
    if len(basic.boxes_xyxy):
        max_iou = iou_matrix(transductive.boxes_xyxy, basic.boxes_xyxy).max(axis=1)
    else:
        max_iou = np.zeros(len(transductive.boxes_xyxy))
    added = 1.0 - max_iou >= eps
    if (basic.embeddings is None) != (transductive.embeddings is None):
        raise ValueError("basic and transductive candidates must both have embeddings or neither")
    embeddings = None
    if basic.embeddings is not None and transductive.embeddings is not None:  # both or neither
        embeddings = np.concatenate([basic.embeddings, transductive.embeddings[added]])
    return Candidates(
        np.concatenate([basic.boxes_xyxy, transductive.boxes_xyxy[added]]),
        np.concatenate([basic.scores, transductive.scores[added]]),
        embeddings,
    )


def split_candidates(candidates: Candidates, keep: NDArray[np.bool_]) -> tuple[Candidates, Candidates]:
    """The candidates where `keep` (N,) bool is True, and the others."""
    boxes, scores, embeddings = candidates
    return (
        Candidates(boxes[keep], scores[keep], None if embeddings is None else embeddings[keep]),
        Candidates(boxes[~keep], scores[~keep], None if embeddings is None else embeddings[~keep]),
    )


def join_candidates(first: Candidates, second: Candidates) -> Candidates:
    """`first` followed by `second`; embeddings kept only when both have them."""
    embeddings = None
    if first.embeddings is not None and second.embeddings is not None:
        embeddings = np.concatenate([first.embeddings, second.embeddings])
    return Candidates(
        np.concatenate([first.boxes_xyxy, second.boxes_xyxy]),
        np.concatenate([first.scores, second.scores]),
        embeddings,
    )


def drop_flat(candidates: Candidates) -> Candidates:
    """The candidates but those of zero width or height: clipping to the image flattens the boxes
    lying outside it; a flat box has no aspect ratio to track, and `cstrack eval` refuses the
    zero-size rows such a track would write."""
    boxes = candidates.boxes_xyxy
    # inverted and NaN boxes stay, for the association to refuse
    flat = (boxes[:, 3] == boxes[:, 1]) | (boxes[:, 2] == boxes[:, 0])
    return split_candidates(candidates, ~flat)[0] if flat.any() else candidates

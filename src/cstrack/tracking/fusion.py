"""OMC's candidate fusion (OMC paper eq. 10): re-check detections fill the detector's misses."""

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

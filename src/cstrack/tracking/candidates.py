"""Detections handed to the tracker, and OMC's candidate fusion (OMC paper eq. 10): re-check
detections fill the detector's misses."""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

from cstrack.tracking.matching import iou_matrix

_T = TypeVar("_T", bound=np.generic)


class Candidates(NamedTuple):
    """Detections handed to the tracker: boxes xyxy (N, 4), scores (N,), embeddings (N, D) or
    None, class indices (N,) or None (a single-class detector: all 0), and the index of the
    caller's detection each one is (N,), -1 for none (a re-check candidate), or None (not kept:
    `JDETracker.update` then reports positions)."""

    boxes_xyxy: NDArray[np.floating[Any]]
    scores: NDArray[np.floating[Any]]
    embeddings: NDArray[np.floating[Any]] | None
    classes: NDArray[np.int64] | None = None
    detection: NDArray[np.int64] | None = None


def take_candidates(candidates: Candidates, index: NDArray[np.bool_] | NDArray[np.intp]) -> Candidates:
    """The candidates at `index` (a bool mask or positions), every field alike."""
    boxes, scores, embeddings, classes, detection = candidates
    return Candidates(
        boxes[index],
        scores[index],
        None if embeddings is None else embeddings[index],
        None if classes is None else classes[index],
        None if detection is None else detection[index],
    )


def fuse_candidates(basic: Candidates, transductive: Candidates, eps: float = 0.5) -> Candidates:
    """The basic detections plus every transductive one with 1 - max IoU(basic) >= eps.

    A transductive box that overlaps no basic detection is a target the detector missed (the
    re-check network found it from a track template); one that overlaps is already covered.
    """
    if len(transductive.boxes_xyxy) == 0:
        return basic
    if (basic.embeddings is None) != (transductive.embeddings is None):
        raise ValueError("basic and transductive candidates must both have embeddings or neither")
    if len(basic.boxes_xyxy):
        max_iou = iou_matrix(transductive.boxes_xyxy, basic.boxes_xyxy).max(axis=1)
    else:
        max_iou = np.zeros(len(transductive.boxes_xyxy))
    return join_candidates(basic, take_candidates(transductive, 1.0 - max_iou >= eps))


def split_candidates(candidates: Candidates, keep: NDArray[np.bool_]) -> tuple[Candidates, Candidates]:
    """The candidates where `keep` (N,) bool is True, and the others."""
    return take_candidates(candidates, keep), take_candidates(candidates, ~keep)


def join_candidates(first: Candidates, second: Candidates) -> Candidates:
    """`first` followed by `second`; embeddings and detection indices kept only when both have
    them, classes when either has them (the other's are then 0)."""
    embeddings = _both(first.embeddings, second.embeddings)
    classes = None
    if first.classes is not None or second.classes is not None:
        classes = np.concatenate([_classes(first), _classes(second)])
    return Candidates(
        np.concatenate([first.boxes_xyxy, second.boxes_xyxy]),
        np.concatenate([first.scores, second.scores]),
        embeddings,
        classes,
        _both(first.detection, second.detection),
    )


def _both(first: NDArray[_T] | None, second: NDArray[_T] | None) -> NDArray[_T] | None:
    return None if first is None or second is None else np.concatenate([first, second])


def _classes(candidates: Candidates) -> NDArray[np.int64]:
    if candidates.classes is None:
        return np.zeros(len(candidates.scores), dtype=np.int64)
    return candidates.classes


def drop_flat(candidates: Candidates) -> Candidates:
    """The candidates but those of zero width or height: clipping to the image flattens the boxes
    lying outside it; a flat box has no aspect ratio to track, and `cstrack eval` refuses the
    zero-size rows such a track would write."""
    boxes = candidates.boxes_xyxy
    # inverted and NaN boxes stay, for the association to refuse
    flat = (boxes[:, 3] == boxes[:, 1]) | (boxes[:, 2] == boxes[:, 0])
    return take_candidates(candidates, ~flat) if flat.any() else candidates

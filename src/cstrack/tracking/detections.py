"""One frame's detections, the one type from a detector to the association, and OMC's candidate
fusion (OMC paper eq. 10): re-check candidates fill the detector's misses.

A detector (`cstrack.models.Detector`, or any `FrameDetector`) gives a `DetectionResult`;
`fuse_candidates` turns its re-check candidates into detections of the same result; and
`JDETracker.update` associates it. Shapes are checked once, when a result is made, so that no
step after it checks them again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cstrack.tracking.matching import iou_matrix

#: What a detector's re-check searches for: track templates (K, E), or a function of the frame's
#: detected boxes (N, 4) that gives them (None: nothing to search for), so that a tracker can
#: re-check only the tracks that no detection covers.
Templates: TypeAlias = NDArray[np.float32] | Callable[[NDArray[Any]], NDArray[np.float32] | None]

#: Array kinds taken as numbers: booleans, integers and floats.
_NUMERIC = "biuf"


def _no_boxes() -> NDArray[np.float32]:
    return np.zeros((0, 4), np.float32)


def _no_scores() -> NDArray[np.float32]:
    return np.zeros(0, np.float32)


def _numbers(name: str, values: object) -> NDArray[Any]:
    """`values` as a numeric array (its own dtype kept), or a ValueError naming the input."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:  # ragged lists
        raise ValueError(f"{name} must be a numeric array, got {type(values).__name__}: {error}") from None
    if array.dtype.kind not in _NUMERIC:
        raise ValueError(f"{name} must be a numeric array, got dtype {array.dtype}")
    return array


def _boxes(name: str, values: object) -> NDArray[Any]:
    boxes = _numbers(name, values)
    if boxes.shape == (0,):
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must be an (N, 4) array of x1, y1, x2, y2, got shape {boxes.shape}")
    return boxes


def _scores(name: str, values: object, count: int) -> NDArray[Any]:
    scores = _numbers(name, values)
    if scores.shape != (count,):
        raise ValueError(f"got {count} boxes but {name} of shape {scores.shape}: expected ({count},)")
    return scores


def _embeddings(name: str, values: object, count: int) -> NDArray[Any]:
    embeddings = _numbers(name, values)
    if embeddings.ndim != 2 or len(embeddings) != count:
        raise ValueError(f"{name} must be ({count}, D), got shape {embeddings.shape}")
    return embeddings


def _integers(name: str, values: object, count: int) -> NDArray[np.int64]:
    """Per-detection integers (class or detection indices) as (N,) int64; whole floats are taken,
    other values refused."""
    array = _numbers(name, values)
    if array.shape != (count,):
        raise ValueError(f"{name} must have shape ({count},), got {array.shape}")
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "f" and np.isfinite(array).all() and (array == np.round(array)).all():
        return array.astype(np.int64)
    raise ValueError(f"{name} must be integer indices, got dtype {array.dtype}")


def _mask(name: str, values: object, count: int) -> NDArray[np.bool_]:
    mask = np.asarray(values, dtype=bool)
    if mask.shape != (count,):
        raise ValueError(f"{name} must have shape ({count},), got {mask.shape}")
    return mask


@dataclass(frozen=True)
class DetectionResult:
    """One frame's detections in frame pixels, from the detector to the association.

    The detector's own: `boxes_xyxy` (N, 4) x1, y1, x2, y2; `scores` (N,); `embeddings` (N, E)
    appearance vectors, or None (association by IoU alone); `levels` (N,) the pyramid level of
    each box's anchor (0: stride 8; -1: a box given to the detector), or None; `classes` (N,)
    class indices, or None (one class: all 0).

    OMC's re-check candidates, M of them (none where the re-check did not run): `trans_boxes_xyxy`
    (M, 4), `trans_scores` (M,) the heat at each peak, `trans_embeddings` (M, E) (given when
    `embeddings` are), `trans_classes` (M,) or None. `fuse_candidates` makes detections of them.

    What the association is told of each detection, None where the default holds: `may_start`
    (N,) whether it may start a track when left unmatched (default: all may); `low_score` (N,)
    whether it goes to BYTE's low-score stage (default: those scoring below the tracker's
    `byte_high_threshold`); `detection_index` (N,) what a track it continues or starts reports
    as `Track.detection_index` (default: its position; -1: no detection of the caller's).

    Shapes and types are checked here, once (lists are taken as arrays, indices given as whole
    floats as integers); values (finite boxes with a height, finite scores) where they are
    associated (`JDETracker.update`), which names the bad row.
    """

    boxes_xyxy: NDArray[Any]
    scores: NDArray[Any]
    embeddings: NDArray[Any] | None = None
    levels: NDArray[np.int64] | None = None
    trans_boxes_xyxy: NDArray[Any] = field(default_factory=_no_boxes)
    trans_scores: NDArray[Any] = field(default_factory=_no_scores)
    trans_embeddings: NDArray[Any] | None = None
    classes: NDArray[np.int64] | None = None
    trans_classes: NDArray[np.int64] | None = None
    may_start: NDArray[np.bool_] | None = None
    low_score: NDArray[np.bool_] | None = None
    detection_index: NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        boxes = _boxes("boxes_xyxy", self.boxes_xyxy)
        trans_boxes = _boxes("trans_boxes_xyxy", self.trans_boxes_xyxy)
        count, trans_count = len(boxes), len(trans_boxes)
        checked: dict[str, Any] = {
            "boxes_xyxy": boxes,
            "scores": _scores("scores", self.scores, count),
            "trans_boxes_xyxy": trans_boxes,
            "trans_scores": _scores("trans_scores", self.trans_scores, trans_count),
        }
        optional: dict[str, Callable[[str, object, int], NDArray[Any]]] = {
            "embeddings": _embeddings,
            "levels": _integers,
            "trans_embeddings": _embeddings,
            "classes": _integers,
            "trans_classes": _integers,
            "may_start": _mask,
            "low_score": _mask,
            "detection_index": _integers,
        }
        for name, check in optional.items():
            value = getattr(self, name)
            if value is not None:
                checked[name] = check(name, value, trans_count if name.startswith("trans_") else count)
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        embeddings, trans_embeddings = self.embeddings, self.trans_embeddings
        if trans_count and (embeddings is None) != (trans_embeddings is None):
            raise ValueError("detections and re-check candidates must both have embeddings or neither")
        dims = {values.shape[1] for values in (embeddings, trans_embeddings) if values is not None}
        if len(dims) > 1:
            raise ValueError(f"embeddings and trans_embeddings differ in size: {sorted(dims)}")

    def select(self, keep: ArrayLike, keep_transductive: ArrayLike) -> DetectionResult:
        """The detections where `keep` (N,) holds and the re-check candidates where
        `keep_transductive` (M,) does (bool masks or positions): every field is cut, the `trans_`
        ones by the second; None stays None."""
        changes = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is not None:
                changes[item.name] = value[keep_transductive if item.name.startswith("trans_") else keep]
        return dataclasses.replace(self, **changes)

    def above(self, score: float, heat: float | None) -> DetectionResult:
        """The detections scoring above `score` and the re-check candidates above `heat` (None:
        none, as when the re-check did not run): what the same detector at those thresholds
        gives, when this result was made at lower ones.

        It is exact for `cstrack.models.Detector`: greedy NMS keeps the boxes above a threshold
        whatever it did with those below (they come later in score order), a score above the
        threshold implies an objectness above it (score = objectness x class probability), and
        the re-check's top-k peaks are taken before its heat threshold.
        """
        trans_scores = self.trans_scores
        keep_transductive = np.zeros(len(trans_scores), bool) if heat is None else trans_scores > heat
        return self.select(self.scores > score, keep_transductive)


def fuse_candidates(
    result: DetectionResult, eps: float = 0.5, starts_tracks: bool = False
) -> DetectionResult:
    """`result`'s detections plus every re-check candidate with 1 - max IoU(detections) >= eps, as
    one result without candidates.

    A candidate that overlaps no detection is a target the detector missed (the re-check network
    found it from a track template); one that overlaps is already covered. BYTE's low-score
    detections (`low_score`) cover nothing: they are no detections proper. The kept candidates
    follow the detections, reporting `detection_index` -1 (no detection of the caller's), at level
    0 (the re-check's heat map is the stride-8 grid), and, unless `starts_tracks`, barred from
    starting tracks: the release lets them start tracks, which adds false positives under
    occlusion.
    """
    trans_boxes = result.trans_boxes_xyxy
    if len(trans_boxes) == 0:
        return result
    count = len(result.scores)
    proper = result.boxes_xyxy if result.low_score is None else result.boxes_xyxy[~result.low_score]
    max_iou = iou_matrix(trans_boxes, proper).max(axis=1) if len(proper) else np.zeros(len(trans_boxes))
    kept = np.flatnonzero(1.0 - max_iou >= eps)
    added = len(kept)

    def joined(first: NDArray[Any] | None, second: NDArray[Any] | None) -> NDArray[Any] | None:
        return None if first is None or second is None else np.concatenate([first, second[kept]])

    classes = None
    if result.classes is not None or result.trans_classes is not None:
        classes = np.concatenate(
            [
                np.zeros(count, np.int64) if result.classes is None else result.classes,
                np.zeros(added, np.int64) if result.trans_classes is None else result.trans_classes[kept],
            ]
        )
    if starts_tracks:
        may_start = (
            None if result.may_start is None else np.concatenate([result.may_start, np.ones(added, bool)])
        )
    else:
        start = np.ones(count, bool) if result.may_start is None else result.may_start
        may_start = np.concatenate([start, np.zeros(added, bool)])
    index = np.arange(count) if result.detection_index is None else result.detection_index
    return DetectionResult(
        np.concatenate([result.boxes_xyxy, trans_boxes[kept]]),
        np.concatenate([result.scores, result.trans_scores[kept]]),
        joined(result.embeddings, result.trans_embeddings),
        joined(result.levels, np.zeros(len(trans_boxes), np.int64)),
        classes=classes,
        may_start=may_start,
        low_score=joined(result.low_score, np.zeros(len(trans_boxes), bool)),
        detection_index=np.concatenate([index, np.full(added, -1)]),
    )

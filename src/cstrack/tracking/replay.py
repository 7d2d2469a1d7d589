"""Run the tracker over detections computed beforehand (a detector's output, a det.txt file)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cstrack.tracking.jde_tracker import JDETracker
from cstrack.tracking.protocols import DetectionTracker
from cstrack.tracking.track_state import results_rows


def track_detections(
    detections: Iterable[tuple[ArrayLike, ArrayLike, ArrayLike | None]],
    tracker: DetectionTracker | None = None,
    use_embeddings: bool = True,
) -> NDArray[np.float64]:
    """Track frame after frame and return the results table (M, 7): frame,id,x,y,w,h,score.

    Each item is one frame's (boxes_xyxy, scores, embeddings or None), frames numbered from 1.
    """
    tracker = JDETracker() if tracker is None else tracker  # a fresh one has len() 0: falsy
    rows = [
        results_rows(frame, tracker.update(boxes, scores, embeddings if use_embeddings else None))
        for frame, (boxes, scores, embeddings) in enumerate(detections, start=1)
    ]
    return np.vstack(rows) if rows else np.zeros((0, 7))

"""Run the tracker over detections computed beforehand (a detector's output, a det.txt file)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cstrack.tracking.detections import DetectionResult
from cstrack.tracking.jde_tracker import JDETracker
from cstrack.tracking.protocols import Associator
from cstrack.tracking.rows import written_rows


def replay_detections(
    detections: Iterable[tuple[ArrayLike, ArrayLike, ArrayLike | None]],
    tracker: Associator | None = None,
    use_embeddings: bool = True,
) -> NDArray[np.float64]:
    """Track frame after frame and return the results table (M, 7): frame,id,x,y,w,h,score, as a
    results file holds it (`written_rows`), so that it scores as `cstrack eval` scores the file.

    Each item is one frame's (boxes_xyxy, scores, embeddings or None), frames numbered from 1.
    """
    tracker = JDETracker() if tracker is None else tracker  # a fresh one has len() 0: falsy
    rows = []
    for frame, (boxes, scores, embeddings) in enumerate(detections, start=1):
        appearance = None if embeddings is None or not use_embeddings else np.asarray(embeddings)
        tracks = tracker.update(DetectionResult(np.asarray(boxes), np.asarray(scores), appearance))
        rows.append(written_rows(frame, tracks))
    return np.vstack(rows) if rows else np.zeros((0, 7))

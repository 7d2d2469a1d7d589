"""roboflow supervision's `Detections` in and out of `Tracker.update(frame, detections)`.

    tracks = tracker.update(frame, from_supervision(detections))
    tracked = to_supervision(tracks, detections)  # the matched rows, tracker_id set

supervision is an optional extra (`pip install 'cstrack[supervision]'`): `to_supervision`
raises an InputError saying so without it, and nothing else of cstrack needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cstrack.optional import require
from cstrack.tracking.track_state import Track


def from_supervision(detections: Any) -> np.ndarray:
    """`Tracker.update`'s (N, 5) x1, y1, x2, y2, score, or (N, 6) with the class when
    `detections` (a `supervision.Detections`) has `class_id`; a score of 1 where it has no
    `confidence` (a detector without scores)."""
    count = len(detections.xyxy)
    confidence = np.ones(count) if detections.confidence is None else detections.confidence
    columns = [np.asarray(detections.xyxy, dtype=np.float64).reshape(count, 4), confidence]
    if detections.class_id is not None:
        columns.append(detections.class_id)
    return np.column_stack(columns)


def to_supervision(tracks: Sequence[Track], detections: Any = None) -> Any:
    """The tracks as a `supervision.Detections` with `tracker_id`.

    With the `detections` the frame was tracked with: their rows that a track matched (masks
    and data kept, as supervision's own trackers return them), in the order of `tracks`. Without:
    new Detections from the tracks' boxes, scores and classes (re-check tracks too), with
    `data["detection_index"]` (`Track.detection_index`, -1 for none).
    """
    sv = require("supervision", "supervision", feature="the supervision adapter")
    index = np.array([track.detection_index for track in tracks], dtype=np.int64)
    ids = np.array([track.track_id for track in tracks], dtype=np.int64)
    if detections is not None:
        matched = index >= 0
        tracked = detections[index[matched]]
        tracked.tracker_id = ids[matched]
        return tracked
    return sv.Detections(
        xyxy=np.array([track.box_xyxy for track in tracks], dtype=np.float64).reshape(-1, 4),
        confidence=np.array([track.score for track in tracks], dtype=np.float32),
        class_id=np.array([track.cls for track in tracks], dtype=np.int64),
        tracker_id=ids,
        data={"detection_index": index},
    )

"""JDETracker satisfies the tracker Protocol: at run time here, and for mypy, whose `files` list this
file (strict): the annotated assignment below is checked against the Protocol's signatures."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from cstrack.tracking import DetectionTracker, JDETracker, Track, TrackState
from cstrack.tracking.replay import track_detections

BOX = np.array([[10.0, 20.0, 50.0, 120.0]])
SCORE = np.array([0.9])


def test_jde_tracker_is_a_detection_tracker() -> None:
    tracker: DetectionTracker = JDETracker()
    assert isinstance(tracker, DetectionTracker)
    tracks = tracker.update(BOX, SCORE, embeddings=None)
    assert len(tracks) == 1 and isinstance(tracks[0], Track)
    tracker.update(BOX, SCORE)
    tracker.reset()
    assert [track.track_id for track in tracker.update(BOX, SCORE)] == [1]


def test_an_object_without_the_methods_is_not_a_detection_tracker() -> None:
    class UpdateOnly:
        def update(self) -> list[Track]:
            return []

    assert not isinstance(UpdateOnly(), DetectionTracker)


class StillTracker:
    """The least a DetectionTracker can be: every detection is track k + 1 of its row k."""

    def update(
        self, boxes_xyxy: ArrayLike, scores: ArrayLike, embeddings: ArrayLike | None = None
    ) -> list[Track]:
        boxes, confidences = np.asarray(boxes_xyxy, dtype=np.float64), np.asarray(scores, dtype=np.float64)
        return [
            Track(row + 1, box, float(score), TrackState.TRACKED, True, 1, 1)
            for row, (box, score) in enumerate(zip(boxes, confidences, strict=True))
        ]

    def reset(self) -> None:
        pass


def test_track_detections_takes_any_detection_tracker() -> None:
    tracker: DetectionTracker = StillTracker()
    assert isinstance(tracker, DetectionTracker)
    results = track_detections([(BOX, SCORE, None)] * 2, tracker)
    np.testing.assert_array_equal(results, [[1, 1, 10, 20, 40, 100, 0.9], [2, 1, 10, 20, 40, 100, 0.9]])

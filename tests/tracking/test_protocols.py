"""JDETracker satisfies the association Protocol (`Associator`), and a small detector the
detector Protocol: at run time here, and for mypy, whose `files` list this file (strict): the
annotated assignments below are checked against the Protocols' signatures."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cstrack.tracking import (
    Associator,
    DetectionResult,
    FrameDetector,
    JDETracker,
    Templates,
    Track,
    TrackState,
)
from cstrack.tracking.replay import replay_detections

BOX = np.array([[10.0, 20.0, 50.0, 120.0]])
SCORE = np.array([0.9])


def test_jde_tracker_is_an_associator() -> None:
    tracker: Associator = JDETracker()
    assert isinstance(tracker, Associator)
    tracks = tracker.update(DetectionResult(BOX, SCORE, embeddings=None))
    assert len(tracks) == 1 and isinstance(tracks[0], Track)
    tracker.update(DetectionResult(BOX, SCORE))
    tracker.reset()
    assert [track.track_id for track in tracker.update(DetectionResult(BOX, SCORE))] == [1]


def test_an_object_without_the_methods_is_not_an_associator() -> None:
    class UpdateOnly:
        def update(self) -> list[Track]:
            return []

    assert not isinstance(UpdateOnly(), Associator)


class StillTracker:
    """The least an Associator can be: every detection is track k + 1 of its row k."""

    def update(self, detections: DetectionResult) -> list[Track]:
        boxes, confidences = detections.boxes_xyxy.astype(np.float64), detections.scores.astype(np.float64)
        return [
            Track(row + 1, box, float(score), TrackState.TRACKED, True, 1, 1)
            for row, (box, score) in enumerate(zip(boxes, confidences, strict=True))
        ]

    def reset(self) -> None:
        pass


def test_replay_detections_takes_any_associator() -> None:
    tracker: Associator = StillTracker()
    assert isinstance(tracker, Associator)
    results = replay_detections([(BOX, SCORE, None)] * 2, tracker)
    np.testing.assert_array_equal(results, [[1, 1, 10, 20, 40, 100, 0.9], [2, 1, 10, 20, 40, 100, 0.9]])


class BoxDetector:
    """A detector that finds one fixed box in every frame and has no re-check network."""

    has_recheck = False
    selects_templates = False
    takes_detections = False

    def __call__(
        self,
        frame_bgr: NDArray[np.uint8],
        templates: Templates | None = None,
        detections: ArrayLike | None = None,
    ) -> DetectionResult:
        return DetectionResult(BOX, SCORE)


def test_a_callable_with_the_members_is_a_frame_detector() -> None:
    detector: FrameDetector = BoxDetector()
    assert isinstance(detector, FrameDetector)
    frame = np.zeros((200, 100, 3), np.uint8)
    assert JDETracker().update(detector(frame))[0].box_xyxy.tolist() == BOX[0].tolist()
    assert not isinstance(StillTracker(), FrameDetector)

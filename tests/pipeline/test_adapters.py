"""supervision's Detections into `Tracker.update`'s array and tracks back out."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.pipeline.adapters import from_supervision, to_supervision
from cstrack.tracking import DetectionResult, JDETracker

sv = pytest.importorskip("supervision")


def people() -> object:
    masks = np.zeros((3, 40, 60), bool)
    masks[2, :5, :5] = True
    return sv.Detections(
        xyxy=np.array([[0.0, 0, 10, 30], [20, 0, 30, 30], [40, 0, 50, 30]]),
        confidence=np.array([0.9, 0.2, 0.8], np.float32),
        class_id=np.array([0, 0, 2]),
        mask=masks,
        data={"label": np.array(["a", "b", "c"])},
    )


def test_detections_become_the_update_array_and_tracks_the_matched_rows() -> None:
    detections = people()
    table = from_supervision(detections)
    np.testing.assert_allclose(table[:, :4], detections.xyxy)
    np.testing.assert_allclose(table[:, 4:], [[0.9, 0], [0.2, 0], [0.8, 2]], rtol=1e-6)
    # The box scoring 0.2 starts no track.
    tracks = JDETracker().update(DetectionResult(table[:, :4], table[:, 4], classes=table[:, 5]))
    tracked = to_supervision(tracks, detections)
    assert tracked.tracker_id.tolist() == [1, 2]
    assert tracked.data["label"].tolist() == ["a", "c"] and tracked.mask[1, 0, 0]
    built = to_supervision(tracks)
    np.testing.assert_allclose(built.xyxy, detections.xyxy[[0, 2]])
    assert built.class_id.tolist() == [0, 2] and built.data["detection_index"].tolist() == [0, 2]
    assert len(to_supervision([], detections)) == len(to_supervision([])) == 0


def test_detections_without_scores_or_classes() -> None:
    table = from_supervision(sv.Detections(xyxy=np.array([[1.0, 2, 3, 4]])))
    assert table.tolist() == [[1.0, 2.0, 3.0, 4.0, 1.0]]
    assert from_supervision(sv.Detections.empty()).shape == (0, 6)

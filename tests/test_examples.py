"""examples/: the HOG people example tracks real frames with another detector's boxes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cstrack.tracking.matching import iou_matrix

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_hog_people_tracks_pets_with_appearance_at_hog_boxes(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("hog_people", EXAMPLES / "hog_people.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    sequence = shared_data / "PETS09-S2L1"
    frames = list(example.track_people(sorted((sequence / "img1").glob("*.jpg"))[:4]))
    ids = [{t.track_id for t in tracks} for _, tracks in frames]
    assert ids[0] and set.intersection(*ids)  # someone keeps one identity over the four frames
    for detections, tracks in frames:
        matched = [t for t in tracks if t.detection_index >= 0]
        assert matched
        boxes = np.array([t.box_xyxy for t in matched])
        rows = detections[[t.detection_index for t in matched], :4]
        assert np.diag(iou_matrix(boxes, rows)).min() > 0.7  # each track sits on the row it names
    assert example.main([str(sequence), "--frames", "1"]) == 0
    assert capsys.readouterr().out.startswith("frame 1: ")

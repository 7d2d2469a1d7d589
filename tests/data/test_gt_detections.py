"""Simulated detections: reproducible, visibility-aware, with identity-consistent embeddings."""

from __future__ import annotations

import numpy as np

from cstrack.data.gt_detections import SimulationConfig, simulate_detections

# frame,id,x,y,w,h,mark,class,visibility: id 1 visible, id 2 hidden, a distractor, an ignored row.
GT = np.array(
    [[f, 1, 10 + f, 20, 30, 80, 1, 1, 1.0] for f in range(1, 201)]
    + [[f, 2, 300, 20, 30, 80, 1, 1, 0.0] for f in range(1, 201)]
    + [[f, 3, 200, 200, 30, 80, 1, 7, 1.0] for f in range(1, 201)]
    + [[f, 4, 400, 200, 30, 80, 0, 1, 1.0] for f in range(1, 201)]
)


def test_reproducible_and_visibility_aware():
    config = SimulationConfig(false_positives=0.0, jitter=0.0)
    first = simulate_detections(GT, 200, (640, 480), config, seed=5)
    second = simulate_detections(GT, 200, (640, 480), config, seed=5)
    assert all(np.array_equal(a.boxes_xyxy, b.boxes_xyxy) for a, b in zip(first, second))
    boxes = np.vstack([d.boxes_xyxy for d in first])
    visible = np.isclose(boxes[:, 1], 20) & (boxes[:, 0] < 250)
    hidden = np.isclose(boxes[:, 0], 300)
    assert 180 <= visible.sum() <= 200  # recall 0.95
    assert 5 <= hidden.sum() <= 40  # min_recall 0.1 * 0.95
    assert not np.any(np.isclose(boxes[:, 1], 200))  # neither the distractor nor the ignored row
    np.testing.assert_allclose(first[0].boxes_xyxy[0], [11, 20, 41, 100])


def test_embeddings_are_unit_and_identity_consistent():
    dets = simulate_detections(GT, 200, (640, 480), SimulationConfig(false_positives=0.0), seed=1)
    emb = np.vstack([d.embeddings for d in dets])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    is_first = np.vstack([d.boxes_xyxy for d in dets])[:, 0] < 250
    same = emb[is_first][:-1] @ emb[is_first][-1]
    different = emb[~is_first] @ emb[is_first][-1]
    assert same.mean() > 0.6 and abs(different.mean()) < 0.2


def test_false_positive_rate():
    dets = simulate_detections(GT[:0], 1000, (640, 480), SimulationConfig(false_positives=2.0), seed=0)
    counts = [len(d.scores) for d in dets]
    assert 1.8 < np.mean(counts) < 2.2
    boxes = np.vstack([d.boxes_xyxy for d in dets])
    assert boxes.min() >= 0 and boxes[:, 2].max() <= 640 and boxes[:, 3].max() <= 480

"""Detections simulated from real ground truth, for association experiments without a detector.

Each annotated pedestrian is detected with a probability that falls with its visibility, its
box is jittered, false positives are sprinkled in, and every identity gets a random appearance
vector that each detection carries with noise (more noise when occluded). With a fixed seed the
detections are reproducible, so tracker changes can be scored against real motion and crowding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from cstrack.data.mot import FRAME, ID, VISIBILITY, H, W, X, Y, is_mot16_gt, pedestrian_rows


class FrameDetections(NamedTuple):
    """One frame's detections: boxes xyxy (N, 4), scores (N,), unit embeddings (N, D)."""

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of the simulated detector; the defaults resemble a good one-shot tracker's output."""

    #: Detection probability of a fully visible pedestrian.
    recall: float = 0.95
    #: Below this visibility the detection probability falls linearly to `min_recall`.
    visibility_knee: float = 0.5
    min_recall: float = 0.1
    #: Box jitter: standard deviation of centre and size noise as a fraction of the box size.
    jitter: float = 0.04
    #: Mean number of false positives per frame.
    false_positives: float = 1.0
    embedding_dim: int = 128
    #: Noise added to the identity vector (per unit-norm dimension scale); doubled when hidden.
    embedding_noise: float = 0.45


def simulate_detections(
    gt: np.ndarray,
    num_frames: int,
    image_size: tuple[int, int],
    config: SimulationConfig = SimulationConfig(),
    seed: int = 0,
) -> list[FrameDetections]:
    """Per-frame detections (frames 1..num_frames) from a MOT16/17 ground-truth table.

    Only pedestrians (class 1, mark 1) are detected; a MOT15 table (no class column) counts every
    row with conf != 0. `image_size` (width, height) bounds the false positives.
    """
    rng = np.random.default_rng(seed)
    gt = np.asarray(gt, dtype=np.float64)
    rows = gt[pedestrian_rows(gt)]
    visibility = np.clip(rows[:, VISIBILITY], 0.0, 1.0) if is_mot16_gt(gt) else np.ones(len(rows))
    identities, identity_index = np.unique(rows[:, ID], return_inverse=True)
    appearance = _unit(rng.normal(size=(len(identities), config.embedding_dim)))

    detect_p = config.recall * np.clip(
        config.min_recall + (1 - config.min_recall) * visibility / config.visibility_knee, 0, 1
    )
    found = rng.uniform(size=len(rows)) < detect_p
    rows, visibility, identity_index = rows[found], visibility[found], identity_index[found]
    sizes = rows[:, [W, H]]
    centres = rows[:, [X, Y]] + sizes / 2 + rng.normal(0, config.jitter, sizes.shape) * sizes
    sizes = sizes * np.exp(rng.normal(0, config.jitter, sizes.shape))
    boxes = np.hstack([centres - sizes / 2, centres + sizes / 2])
    scores = rng.uniform(0.55, 1.0, len(rows)) * (0.7 + 0.3 * visibility)
    noise = config.embedding_noise / np.sqrt(config.embedding_dim) * (2 - visibility)[:, None]
    embeddings = _unit(
        appearance[identity_index] + rng.normal(size=(len(rows), config.embedding_dim)) * noise
    )

    frames = rows[:, FRAME].astype(int)
    order = np.argsort(frames, kind="stable")
    bounds = np.searchsorted(frames[order], np.arange(1, num_frames + 2))
    width, height = image_size
    typical = np.median(sizes, axis=0) if len(sizes) else np.array([40.0, 100.0])
    detections = []
    for frame in range(num_frames):
        take = order[bounds[frame] : bounds[frame + 1]]
        count = rng.poisson(config.false_positives)
        fp_size = typical * np.exp(rng.normal(0, 0.3, (count, 2)))
        fp_corner = rng.uniform(0, 1, (count, 2)) * np.maximum([width, height] - fp_size, 1)
        detections.append(
            FrameDetections(
                np.vstack([boxes[take], np.hstack([fp_corner, fp_corner + fp_size])]),
                np.concatenate([scores[take], rng.uniform(0.5, 0.7, count)]),
                np.vstack([embeddings[take], _unit(rng.normal(size=(count, config.embedding_dim)))]).astype(
                    np.float32
                ),
            )
        )
    return detections


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

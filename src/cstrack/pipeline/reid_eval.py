"""The embedding's own score: cross-camera retrieval of held-out ReID identities (`cstrack eval-reid`).

Tracking scores mix detection, motion and appearance; this isolates appearance, as the ReID
literature scores it. Each held-out crop (`cstrack.data.reid.split_identities`, identities no
training frame showed) is pasted at pedestrian height into a grid on a plain frame of the
detector's input size, the network runs on the frame, and the embedding is read exactly as the
tracker reads it (`Detector.embed`: over the crop's box, or at its centre with the papers' readout). Per dataset, camera A's crops are
ranked against camera B's and the reverse (`cstrack.evaluation.retrieval`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from cstrack.data.reid import ReidCrop
from cstrack.data.reid_compose import read_bgr
from cstrack.errors import InputError
from cstrack.evaluation.retrieval import RetrievalScores, cross_camera_scores, pooled_scores
from cstrack.models.inference import Detector

CROP_HEIGHT = 128  # pixels in the network input: a mid-distance pedestrian
CELL = (96, 160)  # (W, H) grid cell per crop, so neighbours stay apart
BACKGROUND = 114  # plain grey frame, the training letterbox's pad value
FRAME_SIZE = (768, 576)  # (W, H) of the frames, for a detector that fits its input to each frame


@dataclass(frozen=True)
class ReidScores:
    per_dataset: dict[str, RetrievalScores]
    overall: RetrievalScores  # queries pooled over the datasets (each ranked in its own gallery)


def _frame_size(detector: Detector) -> tuple[int, int]:
    """The frame the crops are pasted into: the detector's fixed input size, else FRAME_SIZE."""
    return detector.img_size or FRAME_SIZE


def _grid(detector: Detector) -> list[tuple[int, int]]:
    """Top-left corners of the crop cells in the frame."""
    width, height = _frame_size(detector)
    columns, rows = width // CELL[0], height // CELL[1]
    if columns * rows == 0:
        raise InputError(
            None, f"input size {width}x{height} is too small for a {CELL[0]}x{CELL[1]} crop cell"
        )
    return [(c * CELL[0], r * CELL[1]) for r in range(rows) for c in range(columns)]


def embed_crops(detector: Detector, crops: Sequence[ReidCrop]) -> np.ndarray:
    """Unit embeddings (N, E) of the crops, as the tracker would read them at those people."""
    cells = _grid(detector)
    width, height = _frame_size(detector)
    out: list[np.ndarray] = []
    for start in range(0, len(crops), len(cells)):
        frame = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
        boxes = []
        for crop, (left, top) in zip(crops[start : start + len(cells)], cells):
            image = read_bgr(crop.path)
            w = min(CELL[0], max(1, round(CROP_HEIGHT * image.shape[1] / image.shape[0])))
            x = left + (CELL[0] - w) // 2
            y = top + (CELL[1] - CROP_HEIGHT) // 2
            frame[y : y + CROP_HEIGHT, x : x + w] = cv2.resize(
                image, (w, CROP_HEIGHT), interpolation=cv2.INTER_AREA
            )
            boxes.append((x, y, x + w, y + CROP_HEIGHT))
        out.append(detector.embed(frame, np.array(boxes, dtype=np.float64)))
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def reid_scores(detector: Detector, crops: Sequence[ReidCrop]) -> ReidScores:
    """Cross-camera rank-1 and mAP of the detector's embedding on `crops`, per dataset and pooled."""
    if not crops:
        raise InputError(None, "no ReID crops to score")
    embeddings = embed_crops(detector, crops)
    ids = np.array([c.identity for c in crops])
    cameras = np.array([c.camera for c in crops])
    datasets = np.array([c.dataset for c in crops])
    per_dataset = {
        name: cross_camera_scores(
            embeddings[datasets == name], ids[datasets == name], cameras[datasets == name]
        )
        for name in sorted(set(datasets.tolist()))
    }
    overall = pooled_scores(list(per_dataset.values()))
    return ReidScores(per_dataset, overall)

"""Validation during training: detection AP50 and tracking HOTA / MOTA / IDF1 on held-out sequences.

Each validation sequence (the frames of one folder of a val list file, in frame order) is run
through the model exactly as `cstrack track --eval --backend torch` runs it: the detector built as
`track` builds it (`build_detector`: BatchNorm fused, on a copy of the model), the
`cstrack.pipeline.end_to_end.Tracker` with its default thresholds around it, OMC's re-check on the
active track templates and the candidate fusion when asked, and the rows scored as the MOT file
holds them (`written_rows`). So on the same frames and ground truth (without re-check, which
here searches for every active track) the tracking scores are those of `track --eval`. The
detector is run at a low score threshold (0.001) so that the same pass gives the precision /
recall curve for AP50; the tracker gets the detections scoring above its default `conf`, the
reference threshold (`RecordingDetector`: greedy NMS keeps the same high-scoring boxes either way).

Ground truth comes from the label files, which `cstrack data from-mot` wrote from the sequence's
MOT gt: boxes scaled back to pixels, identities as labelled (an unknown id -1 becomes a fresh
identity per box). Frames are numbered by their position in the list. Sequences are scored by
`cstrack.evaluation.evaluate_tables` (TrackEval's metrics, MOT17 rules) in memory, so the
combined scores are TrackEval's own combination over sequences. No output filter is applied
(only the boxes a results file could not hold, 0.00 wide or high, go).

AP50 is VOC's all-point interpolated average precision at IoU 0.5 over every val image; recall
and precision are reported at the tracking threshold (score > `conf`). With several classes, AP50
counts a detection of any class (the tracking scores too are over all classes together) and
`AP50_<name>` is each class's AP50: its detections (the head's most likely class) against its
ground truth.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cstrack.backends.choice import build_detector
from cstrack.config import DEFAULT_FRAME_RATE, DetectorConfig, RecheckConfig, RuntimeConfig
from cstrack.evaluation import SequenceTables, evaluate_tables
from cstrack.models.network import TrackingNetwork
from cstrack.pipeline.end_to_end import RecordingDetector, Tracker
from cstrack.tracking.detections import DetectionResult
from cstrack.tracking.matching import iou_matrix
from cstrack.tracking.rows import written_rows
from cstrack.training.dataset import Frame, read_image

AP_IOU = 0.5
AP_SCORE_THRESHOLD = 0.001
TRACK_SCORE_THRESHOLD = DetectorConfig.conf
TRACKING_METRICS = ("HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN")


@dataclass(frozen=True)
class ValSequence:
    name: str
    frames: tuple[Frame, ...]


def val_sequences(frames: list[Frame]) -> list[ValSequence]:
    """Frames grouped by sequence folder and ordered by frame number; names made unique."""
    grouped: dict[str, list[Frame]] = defaultdict(list)
    for frame in frames:
        grouped[frame.sequence].append(frame)
    sequences, used = [], set()
    for folder, members in grouped.items():
        name = Path(folder).name
        candidate, suffix = name, 2
        while candidate in used:
            candidate, suffix = f"{name}-{suffix}", suffix + 1
        used.add(candidate)
        sequences.append(ValSequence(candidate, tuple(sorted(members, key=lambda f: f.frame))))
    return sequences


def ground_truth_rows(
    frame: Frame, position: int, shape: tuple[int, int], next_id: int
) -> tuple[np.ndarray, int]:
    """MOT16 gt rows (frame, id, x, y, w, h, 1, 1, 1) of one frame's labels, in pixels."""
    height, width = shape
    labels = frame.labels
    ids = labels[:, 1].copy()
    unknown = ids < 0
    ids[unknown] = np.arange(next_id, next_id + int(unknown.sum()))
    wh = labels[:, 4:6] * (width, height)
    top_left = labels[:, 2:4] * (width, height) - wh / 2
    rows = np.column_stack([np.full(len(labels), position), ids, top_left, wh, np.ones((len(labels), 3))])
    return rows, next_id + int(unknown.sum())


@dataclass
class _Collected:
    """Every frame's low-threshold detections and ground truth boxes (and their classes), for AP."""

    boxes: list[np.ndarray]
    scores: list[np.ndarray]
    gt_boxes: list[np.ndarray]
    classes: list[np.ndarray] = field(default_factory=list)
    gt_classes: list[np.ndarray] = field(default_factory=list)

    def add(self, result: DetectionResult) -> None:
        """One frame's boxes, scores and classes (0 for a single-class detector), not the rest of
        the result (embeddings take ~0.5 MB a frame at the AP threshold)."""
        self.boxes.append(result.boxes_xyxy)
        self.scores.append(result.scores)
        classes = result.classes
        self.classes.append(np.zeros(len(result.scores), dtype=np.int64) if classes is None else classes)

    def of_class(self, index: int) -> _Collected:
        """The detections and ground truth of one class."""
        detected = [classes == index for classes in self.classes]
        truth = [classes == index for classes in self.gt_classes]
        return _Collected(
            [boxes[keep] for boxes, keep in zip(self.boxes, detected)],
            [scores[keep] for scores, keep in zip(self.scores, detected)],
            [boxes[keep] for boxes, keep in zip(self.gt_boxes, truth)],
        )


def track_sequence(
    tracker: Tracker, sequence: ValSequence, collected: _Collected
) -> tuple[np.ndarray, np.ndarray]:
    """Track one sequence from its first frame: results (M, 7) as the MOT file holds them, and
    ground truth (G, 9) MOT tables."""
    tracker.reset()
    next_id = int(max((f.labels[:, 1].max() for f in sequence.frames if len(f.labels)), default=0)) + 1
    results, gt = [], []
    for position, frame in enumerate(sequence.frames, start=1):
        image = read_image(frame.image)
        rows, next_id = ground_truth_rows(frame, position, image.shape[:2], next_id)
        gt.append(rows)
        collected.gt_boxes.append(np.column_stack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]]))
        collected.gt_classes.append(frame.labels[:, 0].astype(np.int64))
        results.append(written_rows(position, tracker.update(image)))
    return np.vstack(results), np.vstack(gt)


def average_precision(collected: _Collected, iou: float = AP_IOU) -> dict[str, float]:
    """VOC all-point AP at `iou`, and recall / precision at the tracking score threshold."""
    scores, hits = [], []
    total_gt = 0
    for boxes, frame_scores, gt in zip(collected.boxes, collected.scores, collected.gt_boxes):
        total_gt += len(gt)
        order = np.argsort(-frame_scores, kind="stable")
        taken = np.zeros(len(gt), dtype=bool)
        overlaps = iou_matrix(boxes[order], gt) if len(gt) and len(boxes) else np.zeros((len(boxes), len(gt)))
        for row in range(len(order)):
            hit = False
            if len(gt):
                candidates = np.where(taken, -1.0, overlaps[row])
                best = int(candidates.argmax())
                if candidates[best] >= iou:
                    taken[best] = hit = True
            hits.append(hit)
        scores.append(frame_scores[order])
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    ranked = np.argsort(-all_scores, kind="stable")
    true_positive = np.asarray(hits, dtype=float)[ranked]
    cumulative_tp = np.cumsum(true_positive)
    recall = cumulative_tp / max(total_gt, 1)
    precision = cumulative_tp / np.arange(1, len(ranked) + 1)
    envelope = np.maximum.accumulate(np.concatenate([precision, [0.0]])[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    ap = float((steps * envelope[: len(steps)]).sum()) if len(steps) else 0.0
    confident = all_scores[ranked] > TRACK_SCORE_THRESHOLD
    tp_at = float(true_positive[confident].sum())
    return {
        "AP50": ap,
        "recall": tp_at / max(total_gt, 1),
        "precision": tp_at / max(int(confident.sum()), 1),
    }


@torch.inference_mode()
def validate(
    model: TrackingNetwork,
    sequences: list[ValSequence],
    img_size: tuple[int, int],
    device: str | torch.device = "cpu",
    recheck: bool = False,
    frame_rate: float = DEFAULT_FRAME_RATE,
    recheck_threshold: float = RecheckConfig.recheck_threshold,
    class_names: tuple[str, ...] | None = None,
) -> dict[str, float]:
    """Detection (AP50, recall, precision) and tracking (HOTA, MOTA, IDF1 ...) scores over `sequences`.

    `recheck_threshold` is the heat score a re-check peak needs to become a candidate.
    With more than one `class_names` (the model's classes), also `AP50_<name>` per class.
    """
    collected = _Collected([], [], [])
    detector = build_detector(
        copy.deepcopy(model),  # fused as `track` fuses it, the model under training left as it is
        DetectorConfig(conf=AP_SCORE_THRESHOLD, img_size=img_size),
        RecheckConfig(recheck_threshold=recheck_threshold),
        RuntimeConfig(backend="torch", device=str(device)),
    )
    recorder = RecordingDetector(detector, TRACK_SCORE_THRESHOLD, recheck_threshold, collected.add)
    tracker = Tracker(recorder, frame_rate=frame_rate, recheck=recheck)
    tables = {}
    for sequence in sequences:
        results, gt = track_sequence(tracker, sequence, collected)
        tables[sequence.name] = SequenceTables(gt, results, len(sequence.frames))
    combined = evaluate_tables(tables, benchmark="MOT17")["combined"]
    per_class = {}
    if class_names is not None and len(class_names) > 1:
        per_class = {
            f"AP50_{name}": average_precision(collected.of_class(index))["AP50"]
            for index, name in enumerate(class_names)
        }
    return {
        **average_precision(collected),
        **per_class,
        **{key: float(combined[key]) for key in TRACKING_METRICS},
    }

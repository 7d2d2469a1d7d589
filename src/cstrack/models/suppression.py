"""Greedy NMS: OpenCV's C++ loop on the CPU, a vectorised torch fixed point for DIoU and CUDA.

`nms` picks the path; both keep the same boxes in the same order, so results do not depend on the
device. Three things make that hold exactly rather than nearly:

- Ranking is a stable descending sort (ties: lower index first), done here for both paths; OpenCV
  gets the ranks as scores, so its own stable sort cannot reorder anything.
- The torch path rounds the overlap as OpenCV does: IoU in float64, then `1 - float32(1 - iou)`,
  compared in float32 (box i is suppressed iff that exceeds float32(iou_threshold); OpenCV keeps
  iff overlap <= threshold). A float32 IoU disagrees near the threshold: boxes on a 0.7 px grid
  whose IoU is 1/5 come out above 0.2. OpenCV takes (x, y, w, h) with no +1 and intersects as
  w - (x' - x) in float64; that equals torch's min(x2) - max(x1) whenever those differences are
  exact in float64, as they are for float32 coordinates unless a non-zero one is below 2^-29 of
  the largest (float64 boxes that use all 53 bits may differ in the last bit).
- OpenCV calls two boxes whose areas sum to 0 identical (overlap 1), torch's IoU of them is 0, so
  zero-area boxes (clipped flat at the image border) are kept without asking OpenCV. Two specks
  under 2.2e-16 px² each are the other case the paths may tell apart.

Classes go to OpenCV one call each rather than through `NMSBoxesBatched`: that shifts classes
apart by multiples of (largest coordinate + 1) measured from 0, so with negative coordinates
(unclipped boxes) boxes of different classes overlap and suppress each other, and large shifts
round small coordinates.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

MAX_NMS_CANDIDATES = 3000


def box_iou(a: torch.Tensor, b: torch.Tensor, diou: bool = False) -> torch.Tensor:
    """(N, M) IoU of xyxy boxes; with diou, minus the squared centre distance over the enclosing diagonal."""
    area_a = (a[:, 2] - a[:, 0]).clamp_min(0) * (a[:, 3] - a[:, 1]).clamp_min(0)
    area_b = (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp_min(0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    iou = inter / union.clamp_min(torch.finfo(a.dtype).eps)
    if not diou:
        return iou
    centre_a = (a[:, :2] + a[:, 2:]) / 2
    centre_b = (b[:, :2] + b[:, 2:]) / 2
    rho2 = ((centre_a[:, None] - centre_b[None]) ** 2).sum(-1)
    enclose = torch.maximum(a[:, None, 2:], b[None, :, 2:]) - torch.minimum(a[:, None, :2], b[None, :, :2])
    c2 = (enclose**2).sum(-1).clamp_min(torch.finfo(a.dtype).eps)
    return iou - rho2 / c2


def nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    max_det: int | None = None,
    labels: torch.Tensor | None = None,
    diou: bool = False,
) -> torch.Tensor:
    """Greedy NMS; indices into `boxes` of the kept boxes, highest score first (ties: lower index).

    Only the best MAX_NMS_CANDIDATES boxes are considered, at most `max_det` are returned (None:
    every box kept; `cstrack.config.DetectorConfig` sets the detector's thresholds). With
    `labels`, boxes of different labels never suppress each other. OpenCV on the CPU (15x faster
    at 1000 candidates, benchmarks/nms_speed.py); torch for DIoU, which OpenCV lacks, and for
    tensors on other devices.
    """
    if diou or boxes.device.type != "cpu":
        return nms_torch(boxes, scores, iou_threshold, max_det, labels, diou)
    return nms_opencv(boxes, scores, iou_threshold, max_det, labels)


def nms_torch(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    max_det: int | None = None,
    labels: torch.Tensor | None = None,
    diou: bool = False,
) -> torch.Tensor:
    """`nms` on any device, without a Python loop over boxes.

    With the boxes in score order, box i is kept iff no kept box j < i overlaps it by more than
    the threshold. That triangular recursion is solved by iterating
    keep <- not any(keep_j and overlap_ji) to its fixed point (unique, reached in at most as many
    steps as the longest suppression chain).
    """
    order = _rank(scores)
    ranked = boxes[order]
    if diou:
        overlap = box_iou(ranked, ranked, diou=True)  # no OpenCV counterpart to agree with
    else:
        exact = ranked.double()
        overlap = 1 - (1 - box_iou(exact, exact)).float()  # OpenCV's rounding: see the module doc
    suppress = overlap > iou_threshold  # a Python float meets a float32 tensor in float32
    if labels is not None:
        suppress &= labels[order, None] == labels[None, order]
    suppress = suppress.triu(1)
    keep = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    while True:
        updated = ~(suppress & keep[:, None]).any(0)
        if torch.equal(updated, keep):
            break
        keep = updated
    return order[keep][:max_det]


def nms_opencv(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    max_det: int | None = None,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """`nms` (plain IoU) of CPU tensors through `cv2.dnn.NMSBoxes`, one call per label."""
    order = _rank(scores)
    ranked = boxes[order].detach().double().numpy()
    wh = ranked[:, 2:] - ranked[:, :2]
    xywh = np.concatenate((ranked[:, :2], wh), 1)
    solid = (wh > 0).all(1)
    keep = ~solid  # zero-area boxes overlap nothing: kept, suppressing nothing
    if labels is None:
        groups = [np.flatnonzero(solid)]
    else:
        ranked_labels = labels[order].cpu().numpy()
        groups = [np.flatnonzero(solid & (ranked_labels == c)) for c in np.unique(ranked_labels)]
    for group in groups:
        if len(group):
            ranks = np.arange(len(group), 0, -1, dtype=np.float32)  # exact up to 2^24 boxes
            kept = cv2.dnn.NMSBoxes(xywh[group], ranks, 0.0, iou_threshold, eta=1.0, top_k=0)
            keep[group[np.asarray(kept, dtype=np.intp)]] = True
    return order[torch.from_numpy(keep)][:max_det]


def _rank(scores: torch.Tensor) -> torch.Tensor:
    """Indices of the best MAX_NMS_CANDIDATES scores, descending; stable, so both paths agree on ties."""
    return scores.argsort(descending=True, stable=True)[:MAX_NMS_CANDIDATES]

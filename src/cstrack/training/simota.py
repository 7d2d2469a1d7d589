"""The detection loss of the YOLOX head: SimOTA assignment (Ge et al., 2021, sec. 2.1).

Per image, every ground-truth box considers the cells (of every level) whose centre lies inside
the box or within 2.5 strides of the box centre. Their cost is class BCE + 3 (-log IoU), plus a
large constant unless the cell is both inside the box and near its centre. Each box takes its
k lowest-cost cells, k = max(1, floor(sum of its 10 best IoUs)) (dynamic k); a cell claimed by
several boxes goes to the one of lowest cost. Losses, normalised by the number of positives:
IoU loss 1 - IoU^2 (gain 5), objectness BCE over every cell against the positive mask, class BCE
of the positives against IoU x one-hot (only when nc > 1: one class is the objectness' job).
The predicted boxes are the head's own decode (`YOLOXHead.boxes`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cstrack.models.detect import make_grid
from cstrack.models.suppression import box_iou
from cstrack.models.yolox import YOLOXHead
from cstrack.training.assign import T_BATCH, T_CLASS, T_CX, T_CY, T_H, T_W
from cstrack.training.losses import Term

CENTER_RADIUS = 2.5
IOU_COST = 3.0
OUTSIDE_COST = 1e5
TOP_IOUS = 10
IOU_GAIN = 5.0
OBJ_GAIN = 1.0
CLS_GAIN = 1.0
_EPS = 1e-8


def _cells(head: Sequence[torch.Tensor], strides: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre (N, 2) in pixels and stride (N,) of every cell, levels concatenated row-major."""
    centres, cell_strides = [], []
    for p, stride in zip(head, strides):
        h, w = p.shape[2:4]
        centres.append(((make_grid(h, w, p.device, p.dtype) + 0.5) * stride).view(-1, 2))
        cell_strides.append(torch.full((h * w,), float(stride), device=p.device, dtype=p.dtype))
    return torch.cat(centres), torch.cat(cell_strides)


def _paired_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(P,) IoU of the xyxy box pairs a[i], b[i]."""
    inter = (torch.minimum(a[:, 2:], b[:, 2:]) - torch.maximum(a[:, :2], b[:, :2])).clamp_min(0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp_min(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp_min(0).prod(-1)
    return inter / (area_a + area_b - inter + _EPS)


def simota_assign(
    gt_xyxy: torch.Tensor,
    gt_cls: torch.Tensor,
    pred_xyxy: torch.Tensor,
    pred_logits: torch.Tensor,
    centres: torch.Tensor,
    strides: torch.Tensor,
    nc: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image: (positive cell indices, their ground-truth index, their IoU with it).

    `pred_logits` (N, 1 + nc) are the objectness and class logits, detached by the caller.
    """
    gt_centre = (gt_xyxy[:, :2] + gt_xyxy[:, 2:]) / 2
    inside_box = ((centres[None] > gt_xyxy[:, None, :2]) & (centres[None] < gt_xyxy[:, None, 2:])).all(-1)
    radius = (CENTER_RADIUS * strides)[None, :, None]
    inside_centre = ((centres[None] - gt_centre[:, None]).abs() < radius).all(-1)
    candidate = (inside_box | inside_centre).any(0)
    cand = torch.nonzero(candidate)[:, 0]
    if len(cand) == 0:
        empty = torch.zeros(0, dtype=torch.long, device=gt_xyxy.device)
        return empty, empty, gt_xyxy.new_zeros(0)
    ious = box_iou(gt_xyxy, pred_xyxy[cand])
    logits = pred_logits[cand].float()
    probability = (logits[:, 1:].sigmoid() * logits[:, :1].sigmoid()).sqrt()  # (C, nc)
    wanted = F.one_hot(gt_cls, nc).to(probability.dtype)  # (G, nc)
    p = probability[None].expand(len(gt_xyxy), -1, -1).clamp(_EPS, 1 - _EPS)
    cls_cost = -(wanted[:, None] * p.log() + (1 - wanted[:, None]) * (1 - p).log()).sum(-1)
    both = inside_box[:, cand] & inside_centre[:, cand]
    cost = cls_cost + IOU_COST * -torch.log(ious + _EPS) + OUTSIDE_COST * (~both).to(cls_cost.dtype)

    dynamic_k = ious.topk(min(TOP_IOUS, len(cand)), dim=1).values.sum(1).int().clamp_min(1)
    ranks = cost.argsort(1).argsort(1)
    matching = ranks < dynamic_k[:, None]  # (G, C)
    shared = matching.sum(0) > 1
    if shared.any():
        best = cost[:, shared].argmin(0)
        matching[:, shared] = False
        matching[best, torch.nonzero(shared)[:, 0]] = True
    positive = matching.any(0)
    gt_index = matching[:, positive].float().argmax(0)
    cells = cand[positive]
    return cells, gt_index, ious[gt_index, torch.nonzero(positive)[:, 0]]


def anchor_free_terms(head: Sequence[torch.Tensor], targets: torch.Tensor, detect: YOLOXHead) -> list[Term]:
    """IoU, objectness and (nc > 1) class terms of the YOLOX head's raw outputs against targets (n, 7)."""
    raw = torch.cat([p.flatten(1, 3) for p in head], 1)  # (B, N, 5 + nc), cells as decode orders them
    pred_boxes = detect.boxes(head)
    centres, strides = _cells(head, detect.strides)
    batch = raw.shape[0]
    obj_target = torch.zeros_like(raw[..., 4])
    iou_losses, cls_losses, positives = [], [], 0
    for b in range(batch):
        mine = targets[targets[:, T_BATCH] == b]
        if len(mine) == 0:
            continue
        gt = torch.cat(
            (
                mine[:, [T_CX, T_CY]] - mine[:, [T_W, T_H]] / 2,
                mine[:, [T_CX, T_CY]] + mine[:, [T_W, T_H]] / 2,
            ),
            1,
        )
        gt_cls = mine[:, T_CLASS].long()
        with torch.no_grad():
            cells, gt_index, matched_iou = simota_assign(
                gt, gt_cls, pred_boxes[b].detach(), raw[b, :, 4:].detach(), centres, strides, detect.nc
            )
        if len(cells) == 0:
            continue
        positives += len(cells)
        obj_target[b, cells] = 1
        iou = _paired_iou(gt[gt_index], pred_boxes[b, cells])
        iou_losses.append((1 - iou**2).sum())
        if detect.nc > 1:
            cls_target = F.one_hot(gt_cls[gt_index], detect.nc).to(raw.dtype) * matched_iou[:, None]
            cls_losses.append(
                F.binary_cross_entropy_with_logits(raw[b, cells, 5:], cls_target, reduction="sum")
            )
    zero = raw.sum() * 0
    terms = [
        Term("box", sum(iou_losses, zero), positives, IOU_GAIN),
        Term(
            "obj",
            F.binary_cross_entropy_with_logits(raw[..., 4], obj_target, reduction="sum"),
            positives,
            OBJ_GAIN,
        ),
    ]
    if detect.nc > 1:
        terms.append(Term("cls", sum(cls_losses, zero), positives, CLS_GAIN))
    return terms

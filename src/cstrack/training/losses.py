"""The training losses of CSTrack (stage 1) and of OMC's re-check network (stage 2).

Every loss is built from `Term`s: the sum of a per-sample loss and the number of samples its
mean is over. `combine` divides each sum by its count after the counts have been reduced over
the processes of a DDP run, so the sum over ranks of their losses equals the loss of one process
seeing the whole global batch: DDP and single-process training take the same steps.

Stage 1 (REFERENCE "Losses"; CSTrack paper eq. 5-10):
- detection: YOLOv5 assignment (`assign`), box 1 - CIoU over positives (gain 0.05), objectness
  BCE-with-logits against clamp(CIoU, 0) (detached) over every anchor of every cell, level
  balance [4.0, 1.0, 0.4], gain 1.0; class BCE only when nc > 1 (YOLOv5's cls gain 0.5). The box
  centre is decoded exactly as the model decodes it, so with BAR the scale k gets gradients.
- ID: the embedding at the stride-8 cell of each ground-truth centre with a known id, normalised,
  scaled by sqrt(2) ln(nID - 1), a bias-free Linear(512, nID) and cross-entropy (JDE's recipe).
- DenseMask (OMC release only, in neither paper): BCE-with-logits of the stride-8 mask against
  the union of the ground-truth boxes (a cell is foreground when its centre is inside a box; a box
  covering no cell centre marks the cell holding its centre), mean over cells, gain 1.0.
Total = L_det + eta L_id + L_mask, eta = 0.02.

Stage 2 (OMC paper eq. 8-9):
- heat: target T = sum over tracked targets of Gaussians at their centre cell (sigma from
  CenterNet's gaussian_radius at min overlap 0.7, sigma = (2 radius + 1) / 6, capped at 1 cell as
  the paper says), clamped to 1; loss eq. 9, -1/n sum of (1 - M) log M where T = 1 and
  (1 - T) M log(1 - M) elsewhere, n the number of cells with T = 1.
- box: the paper gives no box loss. The branch is read at each tracked target's centre cell and
  regressed in grid units with L1, CenterNet style: the BAR-decoded centre offset (weight 1) and
  the raw width and height against the box size / 8 (weight 0.1, as CenterNet weights sizes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cstrack.models.detect import Detect, wh_gain, xy_offset
from cstrack.models.recheck import RECHECK_STRIDE
from cstrack.training.assign import T_BATCH, T_CX, T_CY, T_H, T_ID, T_W, assign_targets

BOX_GAIN = 0.05
OBJ_GAIN = 1.0
CLS_GAIN = 0.5
LEVEL_BALANCE = (4.0, 1.0, 0.4)
MASK_GAIN = 1.0
HEAT_GAIN = 1.0
RECHECK_BOX_GAIN = 1.0
RECHECK_BOX_WEIGHTS = (1.0, 1.0, 0.1, 0.1)  # centre offset x, y; width, height
GAUSSIAN_MIN_OVERLAP = 0.7
MAX_HEAT_SIGMA = 1.0
HEAT_FLOOR = 1e-12
HEAT_CEILING_GAP = 1e-6
EMBEDDING_STRIDE = 8
_EPS = 1e-7

#: Sums a counts vector over the processes of a run (the identity in a single process).
ReduceCounts = Callable[[torch.Tensor], torch.Tensor]


class Term(NamedTuple):
    """One loss term: gain * total / count once the count is known over every process."""

    part: str  # the loss part it is logged under
    total: torch.Tensor  # sum of the per-sample losses (differentiable scalar)
    count: float  # number of samples on this process
    gain: float


@dataclass
class LossResult:
    """The loss to back-propagate on this process and its parts for logging (this process's share)."""

    loss: torch.Tensor
    parts: dict[str, torch.Tensor]


def combine(terms: Sequence[Term], reduce_counts: ReduceCounts | None = None) -> LossResult:
    """Sum gain * total / count over terms, the counts first summed over processes."""
    device = terms[0].total.device
    counts = torch.tensor([float(term.count) for term in terms], device=device)
    if reduce_counts is not None:
        counts = reduce_counts(counts)
    loss = terms[0].total.new_zeros(())
    parts: dict[str, torch.Tensor] = {}
    for term, count in zip(terms, counts.clamp_min(1)):
        value = term.gain * term.total / count
        loss = loss + value
        parts[term.part] = parts.get(term.part, 0) + value.detach()
    return LossResult(loss, parts)


def bbox_ciou(box1: torch.Tensor, box2: torch.Tensor) -> torch.Tensor:
    """Complete IoU of paired boxes (N, 4) given as centre x, y, width, height (Zheng et al. 2020).

    CIoU = IoU - d^2 / c^2 - alpha v, d the centre distance, c the enclosing box's diagonal,
    v = 4 / pi^2 (atan(w2 / h2) - atan(w1 / h1))^2 and alpha = v / (1 - IoU + v), not differentiated.
    """
    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.unbind(-1), box2.unbind(-1)
    left = torch.maximum(x1 - w1 / 2, x2 - w2 / 2)
    right = torch.minimum(x1 + w1 / 2, x2 + w2 / 2)
    top = torch.maximum(y1 - h1 / 2, y2 - h2 / 2)
    bottom = torch.minimum(y1 + h1 / 2, y2 + h2 / 2)
    inter = (right - left).clamp_min(0) * (bottom - top).clamp_min(0)
    union = w1 * h1 + w2 * h2 - inter + _EPS
    iou = inter / union
    enclose_w = torch.maximum(x1 + w1 / 2, x2 + w2 / 2) - torch.minimum(x1 - w1 / 2, x2 - w2 / 2)
    enclose_h = torch.maximum(y1 + h1 / 2, y2 + h2 / 2) - torch.minimum(y1 - h1 / 2, y2 - h2 / 2)
    diagonal2 = enclose_w**2 + enclose_h**2 + _EPS
    distance2 = (x2 - x1) ** 2 + (y2 - y1) ** 2
    v = (4 / math.pi**2) * (torch.atan(w2 / (h2 + _EPS)) - torch.atan(w1 / (h1 + _EPS))) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + 1 + _EPS)
    return iou - (distance2 / diagonal2 + alpha * v)


def detection_terms(
    head: Sequence[torch.Tensor],
    targets: torch.Tensor,
    detect: Detect,
    balance: Sequence[float] = LEVEL_BALANCE,
) -> list[Term]:
    """Box, objectness and (nc > 1) class terms of the raw head outputs against targets (n, 7)."""
    grid_shapes = [tuple(p.shape[2:4]) for p in head]
    assigned = assign_targets(targets, detect, grid_shapes)
    k = detect.k if detect.bar else None
    terms = []
    for level, (raw, positives) in enumerate(zip(head, assigned)):
        obj_target = torch.zeros_like(raw[..., 4])
        picked = raw[positives.image, positives.anchor, positives.cell_y, positives.cell_x]
        centre = xy_offset(picked[:, :2].sigmoid(), k)
        size = wh_gain(picked[:, 2:4].sigmoid()) * positives.anchor_wh
        ciou = bbox_ciou(torch.cat((centre, size), 1), positives.box)
        terms.append(Term("box", (1 - ciou).sum(), len(positives), BOX_GAIN))
        # Where several boxes share an anchor and cell, the best-fitting one sets the target.
        quality = ciou.detach().clamp_min(0).to(obj_target.dtype)
        order = quality.argsort()
        obj_target[
            positives.image[order], positives.anchor[order], positives.cell_y[order], positives.cell_x[order]
        ] = quality[order]
        obj = F.binary_cross_entropy_with_logits(raw[..., 4], obj_target, reduction="sum")
        terms.append(Term("obj", obj, obj_target.numel(), OBJ_GAIN * balance[level]))
        if detect.nc > 1:
            cls_target = F.one_hot(positives.cls, detect.nc).to(picked.dtype)
            cls = F.binary_cross_entropy_with_logits(picked[:, 5:], cls_target, reduction="sum")
            terms.append(Term("cls", cls, len(positives) * detect.nc, CLS_GAIN))
    return terms


def centre_cells(targets: torch.Tensor, grid_shape: tuple[int, int], stride: int) -> tuple[torch.Tensor, ...]:
    """(image, row, column) of the stride-`stride` cell holding each target's centre."""
    grid_h, grid_w = grid_shape
    cell_x = torch.div(targets[:, T_CX], stride, rounding_mode="floor").long().clamp(0, grid_w - 1)
    cell_y = torch.div(targets[:, T_CY], stride, rounding_mode="floor").long().clamp(0, grid_h - 1)
    return targets[:, T_BATCH].long(), cell_y, cell_x


def embedding_scale(num_ids: int) -> float:
    """JDE's sqrt(2) ln(nID - 1), the norm that lets a cosine classifier separate nID classes.

    Below nID = 3 the formula is zero or undefined; ln 2 is used so the loss stays defined.
    """
    return math.sqrt(2) * math.log(max(num_ids - 1, 2))


class IdentityClassifier(nn.Module):
    """The ID branch's training head: scaled unit embeddings -> Linear(emb_dim, nID, no bias).

    It is part of the training wrapper, not of the model: tracking only needs the embeddings.
    """

    def __init__(self, emb_dim: int, num_ids: int):
        super().__init__()
        self.num_ids = num_ids
        self.scale = embedding_scale(num_ids)
        self.classifier = nn.Linear(emb_dim, max(num_ids, 1), bias=False)

    def term(self, embedding: torch.Tensor, targets: torch.Tensor) -> Term:
        """Cross-entropy of the identities of the known-id targets (id >= 0); -1 ones are ignored."""
        known = targets[targets[:, T_ID] >= 0]
        image, cell_y, cell_x = centre_cells(known, tuple(embedding.shape[2:]), EMBEDDING_STRIDE)
        sampled = embedding[image, :, cell_y, cell_x]  # (n, emb_dim)
        logits = self.classifier(self.scale * F.normalize(sampled, dim=1))
        loss = F.cross_entropy(logits, known[:, T_ID].long(), reduction="sum")
        return Term("id", loss, len(known), 1.0)


def box_union_mask(
    targets: torch.Tensor, batch: int, grid_shape: tuple[int, int], stride: int
) -> torch.Tensor:
    """(B, 1, H, W) 1 where a cell centre lies inside a target box, and at every box's centre cell."""
    grid_h, grid_w = grid_shape
    mask = targets.new_zeros(batch, grid_h * grid_w)
    if len(targets):
        ys = (torch.arange(grid_h, device=targets.device, dtype=targets.dtype) + 0.5) * stride
        xs = (torch.arange(grid_w, device=targets.device, dtype=targets.dtype) + 0.5) * stride
        half_w, half_h = targets[:, T_W, None] / 2, targets[:, T_H, None] / 2
        inside_x = (xs >= targets[:, T_CX, None] - half_w) & (xs < targets[:, T_CX, None] + half_w)
        inside_y = (ys >= targets[:, T_CY, None] - half_h) & (ys < targets[:, T_CY, None] + half_h)
        inside = (inside_y[:, :, None] & inside_x[:, None, :]).flatten(1).to(mask.dtype)
        image, cell_y, cell_x = centre_cells(targets, grid_shape, stride)
        inside[torch.arange(len(targets), device=targets.device), cell_y * grid_w + cell_x] = 1
        mask.index_add_(0, image, inside)
    return mask.clamp_max(1).view(batch, 1, grid_h, grid_w)


def dense_mask_term(logits: torch.Tensor, targets: torch.Tensor) -> Term:
    """BCE of DenseMask's stride-8 logits against the union of the boxes (see the module notes)."""
    target = box_union_mask(targets, logits.shape[0], tuple(logits.shape[2:]), EMBEDDING_STRIDE)
    loss = F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="sum")
    return Term("mask", loss, target.numel(), MASK_GAIN)


def gaussian_radius(
    height: torch.Tensor, width: torch.Tensor, min_overlap: float = GAUSSIAN_MIN_OVERLAP
) -> torch.Tensor:
    """CenterNet's radius: how far a corner may move with the box keeping IoU >= min_overlap.

    The smallest root of CornerNet's three cases (both corners inside, outside, one of each),
    computed exactly as CenterNet does (including its halved discriminant form).
    """
    m = min_overlap
    b1 = height + width
    c1 = width * height * (1 - m) / (1 + m)
    r1 = (b1 + torch.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - m) * width * height
    r2 = (b2 + torch.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * m
    b3 = -2 * m * (height + width)
    c3 = (m - 1) * width * height
    r3 = (b3 + torch.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def heat_sigma(width_cells: torch.Tensor, height_cells: torch.Tensor) -> torch.Tensor:
    """Size-adaptive Gaussian sigma in cells: (2 floor(radius) + 1) / 6, capped at 1 (OMC eq. 8)."""
    radius = gaussian_radius(height_cells, width_cells).floor().clamp_min(0)
    return ((2 * radius + 1) / 6).clamp_max(MAX_HEAT_SIGMA)


def heat_target(
    targets: torch.Tensor, batch: int, grid_shape: tuple[int, int], stride: int = RECHECK_STRIDE
) -> torch.Tensor:
    """(B, 1, H, W) OMC heat target: Gaussians peaking at exactly 1 on each target's centre cell, summed, <= 1."""
    grid_h, grid_w = grid_shape
    heat = targets.new_zeros(batch, grid_h * grid_w)
    if len(targets):
        image, cell_y, cell_x = centre_cells(targets, grid_shape, stride)
        sigma = heat_sigma(targets[:, T_W] / stride, targets[:, T_H] / stride)
        ys = torch.arange(grid_h, device=targets.device, dtype=targets.dtype)
        xs = torch.arange(grid_w, device=targets.device, dtype=targets.dtype)
        dy2 = (ys[None] - cell_y[:, None].to(ys.dtype)) ** 2
        dx2 = (xs[None] - cell_x[:, None].to(xs.dtype)) ** 2
        gauss = torch.exp(-(dy2[:, :, None] + dx2[:, None, :]) / (2 * sigma[:, None, None] ** 2))
        heat.index_add_(0, image, gauss.flatten(1))
    return heat.clamp_max(1).view(batch, 1, grid_h, grid_w)


def heat_term(heat: torch.Tensor, target: torch.Tensor) -> Term:
    """OMC eq. 9 over probabilities `heat` (B, 1, H, W); normalised by the number of peaks (T = 1).

    The logs are guarded by clamps far out in the tails (not CenterNet's 1e-4): a clamp zeroes the
    gradient, and a peak cell whose probability fell below it could never recover.
    """
    positive = target == 1
    loss = torch.where(
        positive,
        -(1 - heat) * torch.log(heat.clamp_min(HEAT_FLOOR)),
        -(1 - target) * heat * torch.log1p(-heat.clamp_max(1 - HEAT_CEILING_GAP)),
    ).sum()
    return Term("heat", loss, int(positive.sum()), HEAT_GAIN)


def recheck_box_term(
    box: torch.Tensor, targets: torch.Tensor, k: torch.Tensor, stride: int = RECHECK_STRIDE
) -> Term:
    """L1 in grid units of the re-check box branch (B, 4, H, W) at each target's centre cell."""
    image, cell_y, cell_x = centre_cells(targets, tuple(box.shape[2:]), stride)
    raw = box[image, :, cell_y, cell_x]  # (n, 4)
    offset = xy_offset(raw[:, :2].sigmoid(), k.to(raw.dtype))
    target_offset = targets[:, [T_CX, T_CY]] / stride - torch.stack((cell_x, cell_y), 1).to(raw.dtype)
    predicted = torch.cat((offset, raw[:, 2:]), 1)
    wanted = torch.cat((target_offset, targets[:, [T_W, T_H]] / stride), 1)
    weights = predicted.new_tensor(RECHECK_BOX_WEIGHTS)
    loss = ((predicted - wanted).abs() * weights).sum()
    return Term("rbox", loss, len(targets), RECHECK_BOX_GAIN)

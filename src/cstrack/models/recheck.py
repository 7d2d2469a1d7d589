"""OMC's re-check network: transduces existing tracklets into the current frame.

1. Similarity (transductive detection module): cosine between each template and the unit
   stride-8 embedding map, ReLU; each template's map is masked around its own peak, by a hard
   (2r+1)^2 square (paper eq. 5, the release) or a soft Gaussian (paper Table 10), then summed
   over templates and divided by the maximum: M_s in [0, 1].
2. Heat head (refinement module, `siamheatmap`): M_s -> Conv(1->C) -> Conv(C->1) (the inverted
   bottleneck), multiplied into the fused visual feature, -> 2 Convs -> Conv(C->1) -> sigmoid: M_p.
3. Box head (`siambox`): fused visual feature -> Conv -> Conv(C->4): raw box map. Decode: xy by
   BAR at stride 8 with the detector's scale k, wh = raw * 8.
Both heads own a fusion of the detection features (P3 Conv3x3 + P4/P5 grouped transposed convs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cstrack.models.common import Conv
from cstrack.models.detect import make_grid, xy_offset, xywh_to_xyxy
from cstrack.models.scale_fusion import ScaleFusion

MASKS = ("hard", "soft")
RECHECK_STRIDE = 8
# Initial heat everywhere. At 0.5 (a zero bias) the negative cells' loss swamps the few peaks at
# full resolution (768 x 576: 6912 cells per image) and the first steps drive every cell, peaks
# included, to M ~ 0, where the loss saturates and the map never recovers (seen: heat loss stuck
# at -log(1e-12) = 27.6 from the first epoch on). CenterNet starts its heat maps at 0.1; we use 0.01.
HEAT_PRIOR = 0.01
NORM_EPS = 1e-12  # F.normalize's


class ReCheckOutput(NamedTuple):
    heat: torch.Tensor  # (B, 1, H, W) M_p, foreground probability of a tracked target's centre
    box: torch.Tensor  # (B, 4, H, W) raw box regression (decode with decode_recheck_boxes)
    similarity: torch.Tensor  # (B, 1, H, W) M_s, the masked, normalised similarity


def template_masks(sim: torch.Tensor, radius: int = 3, kind: str = "hard") -> torch.Tensor:
    """(K, H, W) per-template masks centred on each template's peak in `sim`.

    hard: 1 inside the square |x - cx| <= r and |y - cy| <= r, 0 outside.
    soft: Gaussian exp(-d^2 / (2 sigma^2)) with sigma = (2r + 1) / 6 (the square as +-3 sigma).
    """
    if kind not in MASKS:
        raise ValueError(f"unknown re-check mask {kind!r}; expected one of {MASKS}")
    k, h, w = sim.shape
    peak = sim.flatten(1).argmax(1)  # not view(k, -1): ambiguous in ONNX when K == 0
    cy = (peak // w).to(sim.dtype).view(k, 1, 1)
    cx = (peak % w).to(sim.dtype).view(k, 1, 1)
    # Integer ranges cast afterwards: ONNX's Range has no float16 (a half graph).
    ys = torch.arange(h, device=sim.device).to(sim.dtype).view(1, h, 1)
    xs = torch.arange(w, device=sim.device).to(sim.dtype).view(1, 1, w)
    if kind == "hard":
        return (((ys - cy).abs() <= radius) & ((xs - cx).abs() <= radius)).to(sim.dtype)
    sigma = (2 * radius + 1) / 6
    return torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))


def similarity_map(
    embedding: torch.Tensor, templates: torch.Tensor, radius: int = 3, mask: str = "hard"
) -> torch.Tensor:
    """M_s (1, H, W) for one image: embedding (E, H, W), templates (K, E); zeros when K == 0."""
    e, h, w = embedding.shape
    if templates.shape[0] == 0:
        return embedding.new_zeros(1, h, w)
    # cos = (t / |t|) . e / max(|e|, eps), as F.normalize of both; dividing the (K, HW) products by
    # the cell norms instead of normalising the (E, HW) map first saves two passes over the map.
    flat = embedding.reshape(e, h * w)
    norms = torch.linalg.vector_norm(flat, dim=0).clamp_min(NORM_EPS)
    unit_templates = F.normalize(templates.to(embedding.dtype), dim=1, eps=NORM_EPS)
    sim = torch.relu((unit_templates @ flat) / norms).view(-1, h, w)
    summed = (sim * template_masks(sim, radius, mask)).sum(0, keepdim=True)
    return summed / summed.amax().clamp_min(torch.finfo(summed.dtype).eps)


class ReCheckHeat(ScaleFusion):
    """The refinement module (release attribute `siamheatmap`)."""

    def __init__(self, chs: Sequence[int], width: int = 256, act: str = "silu"):
        super().__init__(chs, width, act)
        self.conv1 = nn.Sequential(Conv(1, width, 3, act=act), nn.Conv2d(width, 1, 3, 1, 1))
        self.conv2 = nn.Sequential(
            Conv(width, width, 3, act=act), Conv(width, width, 3, act=act), nn.Conv2d(width, 1, 3, 1, 1)
        )
        with torch.no_grad():  # CenterNet's heat-map prior: start near M = 0.01 everywhere
            self.conv2[-1].bias.fill_(-math.log((1 - HEAT_PRIOR) / HEAT_PRIOR))

    def forward(self, features: Sequence[torch.Tensor], similarity: torch.Tensor) -> torch.Tensor:
        enhanced = self.fuse_levels(features) * self.conv1(similarity)
        return torch.sigmoid(self.conv2(enhanced))


class ReCheckBox(ScaleFusion):
    """The box branch of the transductive detections (release attribute `siambox`)."""

    def __init__(self, chs: Sequence[int], width: int = 256, act: str = "silu"):
        super().__init__(chs, width, act)
        self.conv_box = nn.Sequential(Conv(width, width, 3, act=act), nn.Conv2d(width, 4, 3, 1, 1))

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.conv_box(self.fuse_levels(features))


def decode_recheck_boxes(box: torch.Tensor, k: torch.Tensor, stride: int = RECHECK_STRIDE) -> torch.Tensor:
    """Raw box map (B, 4, H, W) -> (B, H, W, 4) xyxy in input pixels (BAR xy, wh = raw * stride)."""
    raw = box.permute(0, 2, 3, 1)
    grid = make_grid(raw.shape[1], raw.shape[2], raw.device, raw.dtype)
    xy = (xy_offset(raw[..., :2].sigmoid(), k.to(raw.dtype)) + grid) * stride
    wh = raw[..., 2:].clamp_min(0) * stride
    return xywh_to_xyxy(xy, wh)


def heat_peaks(heat: torch.Tensor, top_k: int, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Local maxima (3x3 max-pool NMS) of one heat map (H, W): scores (M,) and flat cell indices (M,)."""
    pooled = F.max_pool2d(heat[None, None], 3, 1, 1)[0, 0]
    peaks = torch.where(heat == pooled, heat, torch.zeros_like(heat)).flatten()
    scores, index = peaks.topk(min(top_k, peaks.numel()))
    keep = scores > threshold
    return scores[keep], index[keep]

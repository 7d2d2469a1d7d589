"""The anchor-based detection head, its YOLOv5 / BAR decode, and the reference anchors.

Raw head outputs are (B, 3, H, W, 5 + nc) per level: x, y, w, h, objectness, class logits.
Decode (vectorised over batch, levels, anchors, cells):
  wh = (2 sigmoid)^2 * anchor
  xy = (2 sigmoid - 0.5 + grid) * stride            YOLOv5 (bar=False)
  xy = ((sigmoid - 0.5) * k + grid) * stride         BAR, OMC's boundary-aware regression (bar=True)
`grid` is the integer cell index (x, y). The BAR scale `k` (initialised 10) is a learnable scalar.
The first CSTrack release's Detect also holds `k` (fixed at 10, where that release falls back to
the YOLOv5 decode), so `k` is always in the state_dict; with bar=False it is frozen and unused.
(A first-release checkpoint whose k is not 10 was decoded with BAR there: build it with bar=True.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

ANCHORS: tuple[tuple[tuple[int, int], ...], ...] = (
    ((8, 24), (11, 34), (16, 48)),
    ((32, 96), (45, 135), (64, 192)),
    ((128, 384), (180, 540), (256, 640)),
)
STRIDES: tuple[int, ...] = (8, 16, 32)
BAR_INIT = 10.0


class Decoded(NamedTuple):
    """Every anchor of every cell, levels concatenated P3, P4, P5 (N = 3 * sum of H*W)."""

    boxes: torch.Tensor  # (B, N, 4) xyxy in input pixels
    obj: torch.Tensor  # (B, N) objectness probability
    cls: torch.Tensor  # (B, N, nc) class probabilities
    level: torch.Tensor  # (N,) pyramid level index 0..2
    anchor: torch.Tensor  # (N,) anchor index within its level

    @property
    def scores(self) -> torch.Tensor:
        """(B, N) objectness * best class probability, the detection score."""
        return self.obj * self.cls.amax(-1)


def make_grid(
    h: int, w: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """(H, W, 2) integer cell coordinates (x, y).

    The ranges are integer and cast afterwards: ONNX's Range has no float16 (a half graph)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack((xs, ys), -1).to(dtype)


def xy_offset(sig_xy: torch.Tensor, k: torch.Tensor | None = None) -> torch.Tensor:
    """Centre offset from the cell corner in cells: BAR when the scale `k` is given, else YOLOv5."""
    if k is None:
        return sig_xy * 2 - 0.5
    return (sig_xy - 0.5) * k


def wh_gain(sig_wh: torch.Tensor) -> torch.Tensor:
    """Box size as a multiple of the anchor, bounded to (0, 4)."""
    return (sig_wh * 2) ** 2


def xywh_to_xyxy(xy: torch.Tensor, wh: torch.Tensor) -> torch.Tensor:
    half = wh / 2
    return torch.cat((xy - half, xy + half), -1)


def clip_boxes(boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """xyxy boxes clipped to an (H, W) image (BAR centres may lie outside it)."""
    h, w = image_size
    return torch.minimum(boxes.clamp_min(0), boxes.new_tensor([w, h, w, h]))


def anchor_layout(
    grids: Sequence[tuple[int, int]], na: int, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(level, anchor) index of every decoded row for per-level (H, W) grids, as `Decoded` orders them."""
    level = [torch.full((na * h * w,), i, dtype=torch.long, device=device) for i, (h, w) in enumerate(grids)]
    anchor = [torch.arange(na, device=device).repeat_interleave(h * w) for h, w in grids]
    return torch.cat(level), torch.cat(anchor)


class Detect(nn.Module):
    """One 1x1 conv per level predicting `na` anchors x (x, y, w, h, obj, classes)."""

    def __init__(
        self,
        chs: Sequence[int],
        nc: int = 1,
        anchors: Sequence[Sequence[Sequence[float]]] = ANCHORS,
        strides: Sequence[int] = STRIDES,
        bar: bool = True,
        bar_init: float = BAR_INIT,
    ):
        super().__init__()
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0])
        self.strides = tuple(int(s) for s in strides)
        self.bar = bar
        self.k = nn.Parameter(torch.full((1,), float(bar_init)), requires_grad=bar)
        anchors_px = torch.tensor(anchors, dtype=torch.float32).view(self.nl, self.na, 2)
        stride_t = torch.tensor(self.strides, dtype=torch.float32).view(-1, 1, 1)
        self.register_buffer("anchors", anchors_px / stride_t)
        self.register_buffer("anchor_grid", anchors_px.clone().view(self.nl, 1, self.na, 1, 1, 2))
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in chs)
        self._init_biases()

    def _init_biases(self) -> None:
        """YOLOv5 priors: about 8 objects per 640x640 image, class probability 0.6."""
        with torch.no_grad():
            for conv, s in zip(self.m, self.strides):
                b = conv.bias.view(self.na, -1)
                b[:, 4] += math.log(8 / (640 / s) ** 2)
                b[:, 5:] += math.log(0.6 / (self.nc - 0.99))

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for conv, feature in zip(self.m, x):
            y = conv(feature)
            b, _, h, w = y.shape
            out.append(y.view(b, self.na, self.no, h, w).permute(0, 1, 3, 4, 2).contiguous())
        return out

    def decode(self, raw: Sequence[torch.Tensor], image_size: tuple[int, int] | None = None) -> Decoded:
        """Raw per-level outputs -> boxes in input pixels and probabilities, all anchors kept.

        With `image_size` (H, W) the boxes are clipped to the image (BAR centres may lie outside).
        """
        k = self.k if self.bar else None
        boxes, obj, cls = [], [], []
        for i, p in enumerate(raw):
            b, _, h, w, _ = p.shape
            y = p.sigmoid()
            grid = make_grid(h, w, p.device, y.dtype)
            xy = (xy_offset(y[..., :2], k) + grid) * self.strides[i]
            wh = wh_gain(y[..., 2:4]) * self.anchor_grid[i].to(y.dtype)
            boxes.append(xywh_to_xyxy(xy, wh).view(b, -1, 4))
            obj.append(y[..., 4].reshape(b, -1))
            cls.append(y[..., 5:].reshape(b, -1, self.nc))
        boxes_xyxy = torch.cat(boxes, 1)
        if image_size is not None:
            boxes_xyxy = clip_boxes(boxes_xyxy, image_size)
        level, anchor = anchor_layout([p.shape[2:4] for p in raw], self.na, raw[0].device)
        return Decoded(boxes_xyxy, torch.cat(obj, 1), torch.cat(cls, 1), level, anchor)

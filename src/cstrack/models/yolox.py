"""YOLOX-Nano (Ge et al., 2021): depthwise CSPDarknet, PAFPN and the decoupled anchor-free head.

The pretrained YOLOX-Nano detectors that exist (Megvii's COCO model, ByteTrack's pedestrian
model) are published as ONNX graphs with every BatchNorm folded into its convolution, so every
conv here is a Conv2d with a bias, exactly what those graphs hold. Not re-introducing BatchNorm
is deliberate: the folded weights no longer carry the statistics, fine-tuning runs at CPU-sized
batches (4-8 images) whose batch statistics are too noisy to estimate new ones, and a conv with
bias is what a frozen-BN fine-tune (the usual practice at small batches) computes anyway.

Attribute names follow the YOLOX release (`backbone.backbone.dark3.1.m.0.conv2.dconv.conv`,
`head.cls_preds.0`), so ByteTrack's ONNX node names are the module paths of this module tree.

Sizes (YOLOX-Nano: depth 0.33, width 0.25): stem 16 channels, dark2-dark5 32 / 64 / 128 / 256,
PAFPN outputs P3 / P4 / P5 = 64 / 128 / 256 at strides 8 / 16 / 32, head width 64.

Head contract (the same as the anchor head's, with one "anchor"): per level (B, 1, H, W, 5 + nc)
raw (x, y, w, h, obj, cls) where the box decodes as xy = (out_xy + cell) * stride,
wh = exp(out_wh) * stride, and obj / cls are logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cstrack.models.common import space_to_depth
from cstrack.models.detect import (
    BAR_INIT,
    STRIDES,
    Decoded,
    anchor_layout,
    clip_boxes,
    make_grid,
    xywh_to_xyxy,
)
from cstrack.models.mobilenet import IMAGENET_MEAN, IMAGENET_STD

DEPTH, WIDTH = 0.33, 0.25
MAX_LOG_WH = 10.0  # exp() cap of the size regression; boxes beyond e^10 strides are not real
PRIOR_PROB = 0.01  # YOLOX's bias prior of the objectness and class logits


class BaseConv(nn.Module):
    """Conv2d (with bias: BatchNorm folded) then SiLU, 'same' padding."""

    def __init__(self, c1: int, c2: int, k: int, s: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, (k - 1) // 2, groups=groups, bias=True)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class DWConv(nn.Module):
    """Depthwise k x k BaseConv then pointwise 1x1 BaseConv."""

    def __init__(self, c1: int, c2: int, k: int, s: int = 1):
        super().__init__()
        self.dconv = BaseConv(c1, c1, k, s, groups=c1)
        self.pconv = BaseConv(c1, c2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pconv(self.dconv(x))


class Bottleneck(nn.Module):
    """1x1 BaseConv, 3x3 DWConv, residual when `shortcut` and the channels match."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True):
        super().__init__()
        self.conv1 = BaseConv(c1, c2, 1)
        self.conv2 = DWConv(c2, c2, 3)
        self.use_add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class CSPLayer(nn.Module):
    """YOLOX's CSP block: two 1x1 branches (half width), bottlenecks on one, concat, 1x1."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True):
        super().__init__()
        hidden = c2 // 2
        self.conv1 = BaseConv(c1, hidden, 1)
        self.conv2 = BaseConv(c1, hidden, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut) for _ in range(n)))
        self.conv3 = BaseConv(2 * hidden, c2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat((self.m(self.conv1(x)), self.conv2(x)), 1))


class SPPBottleneck(nn.Module):
    """1x1 to half width, max-pools 5 / 9 / 13 concatenated with their input, 1x1."""

    def __init__(self, c1: int, c2: int, kernels: Sequence[int] = (5, 9, 13)):
        super().__init__()
        hidden = c1 // 2
        self.conv1 = BaseConv(c1, hidden, 1)
        self.m = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)
        self.conv2 = BaseConv(hidden * (len(kernels) + 1), c2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.m], 1))


class Focus(nn.Module):
    """Space-to-depth (top-left, bottom-left, top-right, bottom-right) then a 3x3 BaseConv."""

    def __init__(self, c1: int, c2: int, k: int = 3):
        super().__init__()
        self.conv = BaseConv(c1 * 4, c2, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(space_to_depth(x))


def _depth(n: int, depth: float) -> int:
    return max(round(n * depth), 1)


class CSPDarknet(nn.Module):
    """The backbone: Focus stem, then four stages of a stride-2 DWConv and a CSPLayer (+SPP last)."""

    def __init__(self, depth: float = DEPTH, width: float = WIDTH):
        super().__init__()
        c, n = int(64 * width), _depth(3, depth)
        self.stem = Focus(3, c, 3)
        self.dark2 = nn.Sequential(DWConv(c, 2 * c, 3, 2), CSPLayer(2 * c, 2 * c, n))
        self.dark3 = nn.Sequential(DWConv(2 * c, 4 * c, 3, 2), CSPLayer(4 * c, 4 * c, 3 * n))
        self.dark4 = nn.Sequential(DWConv(4 * c, 8 * c, 3, 2), CSPLayer(8 * c, 8 * c, 3 * n))
        self.dark5 = nn.Sequential(
            DWConv(8 * c, 16 * c, 3, 2),
            SPPBottleneck(16 * c, 16 * c),
            CSPLayer(16 * c, 16 * c, n, shortcut=False),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.dark2(self.stem(x))
        c3 = self.dark3(x)
        c4 = self.dark4(c3)
        return c3, c4, self.dark5(c4)


class PAFPN(nn.Module):
    """YOLOX's PAFPN around a CSPDarknet (`backbone`): P3, P4, P5 = 64, 128, 256 channels for Nano."""

    def __init__(self, depth: float = DEPTH, width: float = WIDTH):
        super().__init__()
        c3, c4, c5 = (int(c * width) for c in (256, 512, 1024))
        n = _depth(3, depth)
        self.backbone = CSPDarknet(depth, width)
        self.upsample = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.lateral_conv0 = BaseConv(c5, c4, 1)
        self.C3_p4 = CSPLayer(2 * c4, c4, n, shortcut=False)
        self.reduce_conv1 = BaseConv(c4, c3, 1)
        self.C3_p3 = CSPLayer(2 * c3, c3, n, shortcut=False)
        self.bu_conv2 = DWConv(c3, c3, 3, 2)
        self.C3_n3 = CSPLayer(2 * c3, c4, n, shortcut=False)
        self.bu_conv1 = DWConv(c4, c4, 3, 2)
        self.C3_n4 = CSPLayer(2 * c4, c5, n, shortcut=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x2, x1, x0 = self.backbone(x)
        fpn_out0 = self.lateral_conv0(x0)
        f_out0 = self.C3_p4(torch.cat((self.upsample(fpn_out0), x1), 1))
        fpn_out1 = self.reduce_conv1(f_out0)
        pan_out2 = self.C3_p3(torch.cat((self.upsample(fpn_out1), x2), 1))
        pan_out1 = self.C3_n3(torch.cat((self.bu_conv2(pan_out2), fpn_out1), 1))
        pan_out0 = self.C3_n4(torch.cat((self.bu_conv1(pan_out1), fpn_out0), 1))
        return [pan_out2, pan_out1, pan_out0]


class YOLOXHead(nn.Module):
    """Decoupled anchor-free head: per level a 1x1 stem, two DWConvs for classes, two for boxes.

    `k` is OMC's BAR scale. YOLOX's own box regression is already unbounded (a centre may lie
    outside its cell and the image), which is what BAR adds to YOLOv5's bounded decode, so the
    detection decode stays YOLOX's; `k` serves the re-check box branch (`decode_recheck_boxes`).
    """

    na = 1  # one prediction per cell: the anchor-free layout seen as a single "anchor"

    def __init__(
        self, chs: Sequence[int], nc: int = 1, width: float = WIDTH, strides: Sequence[int] = STRIDES
    ):
        super().__init__()
        self.nc = nc
        self.no = nc + 5
        self.nl = len(chs)
        self.strides = tuple(int(s) for s in strides)
        self.k = nn.Parameter(torch.full((1,), BAR_INIT))
        hidden = int(256 * width)
        self.stems = nn.ModuleList(BaseConv(c, hidden, 1) for c in chs)
        self.cls_convs = nn.ModuleList(
            nn.Sequential(DWConv(hidden, hidden, 3), DWConv(hidden, hidden, 3)) for _ in chs
        )
        self.reg_convs = nn.ModuleList(
            nn.Sequential(DWConv(hidden, hidden, 3), DWConv(hidden, hidden, 3)) for _ in chs
        )
        self.cls_preds = nn.ModuleList(nn.Conv2d(hidden, nc, 1) for _ in chs)
        self.reg_preds = nn.ModuleList(nn.Conv2d(hidden, 4, 1) for _ in chs)
        self.obj_preds = nn.ModuleList(nn.Conv2d(hidden, 1, 1) for _ in chs)
        prior = -torch.log(torch.tensor((1 - PRIOR_PROB) / PRIOR_PROB)).item()
        with torch.no_grad():
            for conv in (*self.cls_preds, *self.obj_preds):
                conv.bias.fill_(prior)

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for i, feature in enumerate(x):
            stem = self.stems[i](feature)
            cls = self.cls_preds[i](self.cls_convs[i](stem))
            reg_feature = self.reg_convs[i](stem)
            y = torch.cat((self.reg_preds[i](reg_feature), self.obj_preds[i](reg_feature), cls), 1)
            b, _, h, w = y.shape
            out.append(y.view(b, 1, self.no, h, w).permute(0, 1, 3, 4, 2).contiguous())
        return out

    def boxes(self, raw: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, N, 4) xyxy boxes in input pixels of every cell: xy = (out + cell) * s, wh = exp(out) * s."""
        boxes = []
        for p, stride in zip(raw, self.strides):
            b, _, h, w, _ = p.shape
            xy = (p[..., :2] + make_grid(h, w, p.device, p.dtype)) * stride
            wh = p[..., 2:4].clamp_max(MAX_LOG_WH).exp() * stride
            boxes.append(xywh_to_xyxy(xy, wh).view(b, -1, 4))
        return torch.cat(boxes, 1)

    def decode(self, raw: Sequence[torch.Tensor], image_size: tuple[int, int] | None = None) -> Decoded:
        """Raw per-level outputs -> boxes in input pixels and probabilities, every cell kept."""
        b = raw[0].shape[0]
        boxes_xyxy = self.boxes(raw)
        if image_size is not None:
            boxes_xyxy = clip_boxes(boxes_xyxy, image_size)
        obj = torch.cat([p[..., 4].sigmoid().reshape(b, -1) for p in raw], 1)
        cls = torch.cat([p[..., 5:].sigmoid().reshape(b, -1, self.nc) for p in raw], 1)
        level, anchor = anchor_layout([p.shape[2:4] for p in raw], self.na, raw[0].device)
        return Decoded(boxes_xyxy, obj, cls, level, anchor)


class InputTransform(nn.Module):
    """A fixed per-pixel affine map of the RGB [0, 1] input: y = M x + b, M (3, 3), b (3,).

    Pretrained YOLOX files expect different inputs (the COCO model BGR 0-255, ByteTrack's model
    ImageNet-normalised RGB); the map is stored in the weights (persistent buffers, never trained)
    so a file always carries the input its convolutions were trained for.
    """

    def __init__(self, matrix: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.register_buffer("matrix", matrix.float().clone())
        self.register_buffer("bias", bias.float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        matrix, bias = self.matrix.to(x.dtype), self.bias.to(x.dtype)
        rows = self.matrix.tolist()  # a constant of the weights, also in an exported graph
        if all(rows[i][j] == 0 for i in range(3) for j in range(3) if i != j):
            # A per-channel scale (ByteTrack's ImageNet map): a broadcast multiply-add, which ONNX
            # Runtime runs several times faster than a 3 -> 3 1x1 convolution over the frame.
            return x * matrix.sum(1).view(1, 3, 1, 1) + bias.view(1, 3, 1, 1)  # row sums: the diagonal
        return F.conv2d(x, matrix.view(3, 3, 1, 1), bias)


def imagenet_transform() -> tuple[torch.Tensor, torch.Tensor]:
    """(M, b) of RGB (x - mean) / std with ImageNet's statistics (ByteTrack's pre-processing)."""
    std, mean = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
    return torch.diag(1 / std), -mean / std


def bgr255_transform() -> tuple[torch.Tensor, torch.Tensor]:
    """(M, b) of RGB [0, 1] -> BGR [0, 255] (Megvii's COCO pre-processing: no scaling, no mean)."""
    return torch.eye(3).flip(0) * 255, torch.zeros(3)

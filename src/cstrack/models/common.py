"""YOLOv5 building blocks shared by every CSTrack/OMC variant.

Attribute names (`conv`, `bn`, `cv1`..`cv4`, `m`) are those of the released implementation so its
state_dicts load without renaming. BatchNorm uses YOLOv5's eps 1e-3 and momentum 0.03.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.03
ACTIVATIONS = ("silu", "leaky")  # the network-wide choices; blocks may also use BLOCK_ACTIVATIONS
BLOCK_ACTIVATIONS = ("relu6", "none")  # MobileNetV2's activation and its linear bottleneck


def make_act(name: str) -> nn.Module:
    """SiLU for the OMC release (C3 blocks), LeakyReLU(0.1) for the first CSTrack release."""
    if name == "silu":
        return nn.SiLU(inplace=True)
    if name == "leaky":
        return nn.LeakyReLU(0.1, inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS + BLOCK_ACTIVATIONS}")


def make_bn(channels: int, eps: float = BN_EPS) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=eps, momentum=BN_MOMENTUM)


def make_divisible(x: float, divisor: int = 8) -> int:
    """YOLOv5 channel rounding: width-scaled channels rounded up to a multiple of 8."""
    return int(math.ceil(x / divisor) * divisor)


def scale_depth(n: int, depth: float) -> int:
    """YOLOv5 depth rounding: at least one block."""
    return max(round(n * depth), 1) if n > 1 else n


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, out_slice: slice = slice(None)) -> nn.Conv2d:
    """A conv (with bias) equal to `bn(conv(x))`, using only `out_slice` of the BN channels."""
    scale = bn.weight[out_slice] / torch.sqrt(bn.running_var[out_slice] + bn.eps)
    shift = bn.bias[out_slice] - bn.running_mean[out_slice] * scale
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
        fused.bias.copy_(bias * scale + shift)
    fused.requires_grad_(conv.weight.requires_grad)
    return fused


class Conv(nn.Module):
    """Conv2d (no bias) -> BatchNorm -> activation, 'same' padding for odd kernels."""

    def __init__(
        self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1, act: str = "silu", eps: float = BN_EPS
    ):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, groups=g, bias=False)
        self.bn: nn.Module = make_bn(c2, eps)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def fuse(self) -> None:
        """Fold the BatchNorm into the conv for inference (state_dict keys change)."""
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv = fold_bn(self.conv, self.bn)
            self.bn = nn.Identity()


def upsample_conv(c1: int, c2: int, factor: int) -> nn.ConvTranspose2d:
    """Grouped transposed conv (kernel 2f, stride f, pad f/2, no bias) scaling H and W by f exactly.

    The release uses it to bring P4 (f=2) and P5 (f=4) to stride 8; groups = gcd(c1, c2) gives
    its depthwise (c1 == c2), grouped (512 -> 256) and full (-> 1 channel) variants.
    """
    return nn.ConvTranspose2d(c1, c2, 2 * factor, factor, factor // 2, groups=math.gcd(c1, c2), bias=False)


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """2x2 pixel blocks to channels: top-left, bottom-left, top-right, bottom-right (the Focus stems)."""
    return torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]), 1)


class Focus(nn.Module):
    """Space-to-depth (2x2 pixel blocks to channels) then a Conv: the YOLOv5 v3-v5 stem."""

    def __init__(self, c1: int, c2: int, k: int = 1, act: str = "silu"):
        super().__init__()
        self.conv = Conv(c1 * 4, c2, k, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(space_to_depth(x))


class Bottleneck(nn.Module):
    """1x1 then 3x3 Conv with an optional residual (only when channels match)."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 0.5, act: str = "silu"):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, act=act)
        self.cv2 = Conv(c_, c2, 3, act=act)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP block with three Convs (YOLOv5 v4+, the OMC release)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, act: str = "silu"):
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, 1, act=act)
        self.cv2 = Conv(c1, c_, 1, act=act)
        self.cv3 = Conv(2 * c_, c2, 1, act=act)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, e=1.0, act=act) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class BottleneckCSP(nn.Module):
    """CSP bottleneck of YOLOv5 v1-v3 (the first CSTrack release): plain convs + BN on the concat."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, act: str = "leaky"):
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, 1, act=act)
        self.cv2 = nn.Conv2d(c1, c_, 1, bias=False)
        self.cv3 = nn.Conv2d(c_, c_, 1, bias=False)
        self.cv4 = Conv(2 * c_, c2, 1, act=act)
        self.bn: nn.Module = make_bn(2 * c_)
        self.act = make_act(act)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, e=1.0, act=act) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1 = self.cv3(self.m(self.cv1(x)))
        y2 = self.cv2(x)
        return self.cv4(self.act(self.bn(torch.cat((y1, y2), 1))))

    def fuse(self) -> None:
        """Split the concat BatchNorm into the two plain convs that feed it."""
        if isinstance(self.bn, nn.BatchNorm2d):
            c_ = self.cv3.out_channels
            self.cv3 = fold_bn(self.cv3, self.bn, slice(0, c_))
            self.cv2 = fold_bn(self.cv2, self.bn, slice(c_, None))
            self.bn = nn.Identity()


class SPP(nn.Module):
    """Spatial pyramid pooling: max-pools of several sizes concatenated (YOLOv3-SPP)."""

    def __init__(self, c1: int, c2: int, k: Sequence[int] = (5, 9, 13), act: str = "silu"):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, act=act)
        self.cv2 = Conv(c_ * (len(k) + 1), c2, 1, act=act)
        self.m = nn.ModuleList(nn.MaxPool2d(kernel_size=x, stride=1, padding=x // 2) for x in k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [m(x) for m in self.m], 1))


class Concat(nn.Module):
    """Channel concatenation of the listed layer outputs (a layer, so indices match the release)."""

    def __init__(self, dimension: int = 1):
        super().__init__()
        self.d = dimension

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(x, self.d)


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that follows a conv into it, in place; outputs are unchanged in eval."""
    for module in list(model.modules()):
        if isinstance(module, (Conv, BottleneckCSP)):
            module.fuse()
    return model

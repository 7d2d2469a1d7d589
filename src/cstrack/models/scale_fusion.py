"""Stride-8 fusion of the three pyramid levels, and the OMC release's DenseMask built on it.

DenseMask is not described in either paper. Its released parameters are exactly this fusion with
one output channel: a 3x3 Conv (BN + act) 256 -> 1 on P3 and transposed convs 512 -> 1 (k4, s2)
on P4 and 1024 -> 1 (k8, s4) on P5, summed. It is a per-cell foreground map at stride 8 over the
detection features; the release trains it alongside the detector. Here it returns logits
(B, 1, H/8, W/8) in the forward output so a loss can use BCE-with-logits; it does not change
the detections or the embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cstrack.models.common import Conv, upsample_conv


class ScaleFusion(nn.Module):
    """P3 Conv3x3 + P4 x2 transposed conv + P5 x4 transposed conv, summed to `c_out` channels."""

    def __init__(self, chs: Sequence[int], c_out: int, act: str = "silu"):
        super().__init__()
        c3, c4, c5 = chs
        self.proj1 = Conv(c3, c_out, 3, act=act)
        self.proj2 = upsample_conv(c4, c_out, 2)
        self.proj3 = upsample_conv(c5, c_out, 4)

    def fuse_levels(self, x: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.proj1(x[0]) + self.proj2(x[1]) + self.proj3(x[2])


class DenseMask(ScaleFusion):
    """Foreground logits at stride 8 from the three detection features (OMC release layer 28)."""

    def __init__(self, chs: Sequence[int], act: str = "silu"):
        super().__init__(chs, 1, act)

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return self.fuse_levels(x)

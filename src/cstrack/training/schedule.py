"""Learning-rate schedule, YOLOv5 warmup, and the exponential moving average of the weights.

Schedule (per epoch, a factor on the base lr):
  step    x0.1 from `step_epoch` on (default 2/3 of the epochs: the papers' epoch 20 of 30)
  cosine  from 1 down to `final_factor` (0.01) over the run, YOLOv5's one-cycle curve
Warmup (YOLOv5): over the first `warmup_iters` batches the lr rises linearly from 0 (the bias
group falls from `warmup_bias_lr`) to the scheduled lr, the momentum from `warmup_momentum` to the
momentum, and the accumulation grows from 1 batch to its nominal count.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from cstrack.training.config import SCHEDULES

STEP_GAMMA = 0.1
COSINE_FINAL_FACTOR = 0.01
EMA_DECAY = 0.9999
EMA_TAU = 2000.0


@dataclass(frozen=True)
class LRSchedule:
    """The lr factor of each epoch; a pure function of the epoch, so its state is its fields."""

    kind: str
    epochs: int
    step_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.kind!r}")

    @property
    def decay_epoch(self) -> int:
        return self.step_epoch if self.step_epoch is not None else round(2 * self.epochs / 3)

    def factor(self, epoch: int) -> float:
        if self.kind == "step":
            return STEP_GAMMA if epoch >= self.decay_epoch else 1.0
        progress = epoch / max(self.epochs, 1)
        return ((1 - math.cos(math.pi * progress)) / 2) * (COSINE_FINAL_FACTOR - 1) + 1

    def state_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Warmup:
    """YOLOv5's linear warmup of lr, momentum and accumulation over the first iterations."""

    iters: int
    bias_lr: float
    momentum_start: float

    def active(self, iteration: int) -> bool:
        return iteration < self.iters

    def _ramp(self, iteration: int, start: float, end: float) -> float:
        return float(np.interp(iteration, [0, self.iters], [start, end]))

    def accumulate(self, iteration: int, nominal: int) -> int:
        return max(1, round(self._ramp(iteration, 1, nominal)))

    def apply(
        self, optimizer: torch.optim.Optimizer, iteration: int, target_lr: float, momentum: float
    ) -> None:
        """Set each group's lr and momentum for `iteration`; groups flagged `bias` start high."""
        for group in optimizer.param_groups:
            start = self.bias_lr if group.get("bias", False) else 0.0
            group["lr"] = self._ramp(iteration, start, target_lr)
            group["momentum"] = self._ramp(iteration, self.momentum_start, momentum)


def set_lr(optimizer: torch.optim.Optimizer, lr: float, momentum: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["momentum"] = momentum


def _trained_keys(model: nn.Module) -> list[str]:
    """State keys that training changes: trainable parameters and the buffers of their modules."""
    keys = []
    for prefix, module in model.named_modules():
        params = list(module.named_parameters(recurse=False))
        if not any(p.requires_grad for _, p in params):
            continue
        dot = f"{prefix}." if prefix else ""
        keys += [dot + name for name, p in params if p.requires_grad]
        keys += [dot + name for name, b in module.named_buffers(recurse=False) if b.is_floating_point()]
    return keys


class ModelEMA:
    """YOLOv5's weight EMA: decay ramps as 0.9999 (1 - exp(-updates / 2000)), early updates count more.

    Only what training changes is averaged (trainable parameters and their modules' running
    statistics); frozen weights and constant buffers (anchors) are copied, never rounded.
    """

    def __init__(self, model: nn.Module, decay: float = EMA_DECAY, tau: float = EMA_TAU, updates: int = 0):
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = updates
        self.keys = _trained_keys(model)

    def current_decay(self) -> float:
        return self.decay * (1 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.current_decay()
        source = model.state_dict()
        target = self.module.state_dict()
        for key in self.keys:
            target[key].mul_(d).add_(source[key].detach(), alpha=1 - d)

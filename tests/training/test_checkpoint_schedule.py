"""Checkpoints round-trip through safetensors; schedule, warmup, EMA and parameter groups."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from cstrack.errors import InputError
from cstrack.training.checkpoint import (
    TrainingState,
    capture_rng,
    is_checkpoint,
    load_checkpoint,
    read_weights,
    restore_rng,
    save_checkpoint,
)
from cstrack.training.schedule import LRSchedule, ModelEMA, Warmup
from cstrack.training.trainer import parameter_groups


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1, bias=True))


def stepped_optimizer(net: nn.Module) -> torch.optim.SGD:
    optimizer = torch.optim.SGD(parameter_groups(net, 1e-4), lr=0.1, momentum=0.9, nesterov=True)
    net(torch.randn(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    return optimizer


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = small_net()
    optimizer = stepped_optimizer(net)
    rng = capture_rng()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    state = TrainingState(
        model=net.state_dict(),
        ema=net.state_dict(),
        classifier={"weight": torch.ones(3, 2)},
        optimizer=optimizer.state_dict(),
        rng=rng,
        meta={"epoch": 4, "best_fitness": 0.25},
    )
    path = save_checkpoint(tmp_path / "last.safetensors", state)
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]  # no temporary file left
    assert is_checkpoint(path)
    with safe_open(str(path), framework="pt") as handle:
        assert handle.get_tensor("rng.torch").dtype == torch.uint8
    loaded = load_checkpoint(path)
    assert loaded.meta["epoch"] == 4 and loaded.meta["best_fitness"] == 0.25
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.model[key], value) and torch.equal(loaded.ema[key], value)
    restored = torch.optim.SGD(parameter_groups(small_net(), 1e-4), lr=0.5, momentum=0.5)
    restored.load_state_dict(loaded.optimizer)

    def settings(opt: torch.optim.Optimizer) -> list[dict]:
        return [{k: v for k, v in group.items() if k != "params"} for group in opt.param_groups]

    assert settings(restored) == settings(optimizer)
    for index, entries in optimizer.state_dict()["state"].items():
        assert torch.equal(
            restored.state_dict()["state"][index]["momentum_buffer"], entries["momentum_buffer"]
        )
    restore_rng(loaded.rng)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert torch.equal(read_weights(path, ema=True)["0.weight"], net.state_dict()["0.weight"])


def test_plain_weights_are_read_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    save_file({"a": torch.zeros(2)}, str(path))
    assert not is_checkpoint(path)
    assert list(read_weights(path)) == ["a"]
    with pytest.raises(InputError, match="not a cstrack training checkpoint"):
        load_checkpoint(path)


def test_step_and_cosine_schedules() -> None:
    step = LRSchedule("step", epochs=30)
    assert [step.factor(e) for e in (0, 19, 20, 29)] == [1.0, 1.0, 0.1, 0.1]
    cosine = LRSchedule("cosine", epochs=10)
    assert cosine.factor(0) == 1.0 and cosine.factor(10) == pytest.approx(0.01)
    assert cosine.factor(5) == pytest.approx((1 + 0.01) / 2)


def test_warmup_ramps_lr_momentum_and_accumulation() -> None:
    net = small_net()
    optimizer = torch.optim.SGD(parameter_groups(net, 1e-4), lr=1.0, momentum=0.9, nesterov=True)
    warmup = Warmup(iters=10, bias_lr=0.1, momentum_start=0.8)
    warmup.apply(optimizer, 5, target_lr=0.01, momentum=0.9)
    lrs = {bool(group.get("bias")): group["lr"] for group in optimizer.param_groups}
    assert lrs[False] == pytest.approx(0.005) and lrs[True] == pytest.approx(0.055)
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(0.85)
    assert [warmup.accumulate(i, 8) for i in (0, 5, 10)] == [1, 4, 8]
    assert not warmup.active(10)


def test_parameter_groups_decay_only_conv_weights() -> None:
    net = small_net()
    groups = parameter_groups(net, 5e-4)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(net[0].weight), id(net[2].weight)}
    assert {id(p) for g in groups if g.get("bias") for p in g["params"]} == {
        id(net[0].bias),
        id(net[1].bias),
        id(net[2].bias),
    }


def test_ema_averages_trained_weights_and_copies_frozen_ones() -> None:
    torch.manual_seed(0)
    net = small_net()
    net[2].requires_grad_(False)
    ema = ModelEMA(net, decay=0.5, tau=1e-9)  # decay 0.5 from the first update
    frozen_before = net[2].weight.clone()
    with torch.no_grad():
        net[0].weight.add_(2.0)
    before = ema.module[0].weight.clone()
    ema.update(net)
    assert torch.allclose(ema.module[0].weight, before + 1.0)
    assert torch.equal(ema.module[2].weight, frozen_before)
    assert "1.running_mean" in ema.keys and "2.weight" not in ema.keys

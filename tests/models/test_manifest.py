"""The L networks reproduce the released state_dicts exactly (keys, shapes, dtypes, order)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from torch import nn

from cstrack.models import load_weights
from cstrack.models.registry import count_parameters

DATA = Path(__file__).resolve().parent / "data"
DTYPES = {"float32": torch.float32, "int64": torch.int64}


def manifest(name: str) -> dict:
    """Copied from shared/reference/ so the tests run on a clean clone."""
    return json.loads((DATA / f"manifest_{name}.json").read_text())


@pytest.fixture(params=["omc_l", "cstrack_l"])
def released(request: pytest.FixtureRequest) -> tuple[nn.Module, dict]:
    return request.getfixturevalue(request.param), manifest(request.param)


def per_layer(model: nn.Module, depth: int) -> dict[str, int]:
    """Parameter counts grouped by the first `depth` key parts (`model.model.<i>`) or the top module."""
    counts: dict[str, int] = defaultdict(int)
    for key, p in model.named_parameters():
        parts = key.split(".")
        counts[".".join(parts[:depth]) if parts[0] == "model" else parts[0]] += p.numel()
    return dict(counts)


def test_parameter_counts(omc_l: nn.Module, cstrack_l: nn.Module) -> None:
    assert count_parameters(omc_l) == 81_292_910
    assert count_parameters(omc_l.model) == 78_177_128
    assert count_parameters(omc_l.siambox) == 1_263_620
    assert count_parameters(omc_l.siamheatmap) == 1_852_162
    assert count_parameters(cstrack_l) == 78_863_078


def test_per_layer_parameters(released: tuple[nn.Module, dict]) -> None:
    model, facts = released
    depth = len(next(iter(facts["per_layer_parameters"])).split("."))
    assert per_layer(model, depth) == facts["per_layer_parameters"]
    assert count_parameters(model) == facts["total_parameters"]


def test_state_dict_matches_manifest(released: tuple[nn.Module, dict]) -> None:
    model, facts = released
    ours = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in model.state_dict().items()]
    assert ours == facts["state_dict"]
    entries = {k for k, _, _ in facts["state_dict"]}
    assert {k for k, _ in model.named_parameters()} <= entries
    assert sum(v.numel() for k, v in model.named_buffers()) == facts["total_buffer_elements"]


def test_layer_wiring_and_anchors(released: tuple[nn.Module, dict]) -> None:
    model, facts = released
    base = model.model if hasattr(model, "siambox") else model
    assert base.save == facts["model_save_list"]
    assert model.detect.anchors.tolist() == facts["detect_anchors_after_div_stride"]
    assert list(map(float, model.strides)) == facts["detect_stride"]
    assert model.detect.anchor_grid.flatten().tolist() == [
        v * s
        for level, s in zip(facts["detect_anchors_after_div_stride"], facts["detect_stride"])
        for a in level
        for v in a
    ]


def test_released_layout_loads_strictly(released: tuple[nn.Module, dict]) -> None:
    """A state_dict shaped like the release's (FP16, as the release stores it) loads as is."""
    model, facts = released
    state = {
        k: torch.full(shape, 0.25, dtype=torch.float16 if dtype == "float32" else DTYPES[dtype])
        for k, shape, dtype in facts["state_dict"]
    }
    prefix = "model.model.29" if hasattr(model, "siambox") else "model.28"
    state[f"{prefix}.k"] = torch.tensor([3.5], dtype=torch.float16)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        missing, unexpected = load_weights(model, state)
        assert missing == unexpected == []
        assert model.detect.k.item() == 3.5 and model.detect.k.dtype == torch.float32
        assert torch.all(model.detect.m[0].weight == 0.25)
    finally:
        model.load_state_dict(original)

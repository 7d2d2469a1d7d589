"""Weights files that load but would track garbage (issue 23): sizes beyond any input, values that
overflow, floats stored as integers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cstrack.config import RuntimeConfig
from cstrack.errors import InputError
from cstrack.models import create_model, model_from_spec
from cstrack.models.weights import load_weights, save_weights
from cstrack.pipeline.end_to_end import Tracker
from cstrack.pipeline.tracker_config import TrackerConfig


@pytest.fixture(scope="module")
def omc_n_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return create_model("omc_n").state_dict()


def test_an_img_size_beyond_any_input_is_refused_naming_the_file(tmp_path: Path, omc_n_state):
    path = tmp_path / "w.safetensors"
    save_weights(omc_n_state, path, {"arch": "omc_n", "img_size": "96000,96000"})
    with pytest.raises(InputError) as caught:
        model_from_spec(path)
    assert str(caught.value) == (
        f"{path}: its 'img_size' metadata must be two positive multiples of 32 up to 4096, got 96000 96000"
    )


def test_overflowing_weights_are_named_at_the_detector(tmp_path: Path, omc_n_state):
    """3e38 is finite in float32, so the file loads; the network's outputs are not."""
    state = {k: torch.full_like(v, 3e38) if v.is_floating_point() and k.endswith("weight") else v
             for k, v in omc_n_state.items()}  # fmt: skip
    path = tmp_path / "overflow.safetensors"
    save_weights(state, path, {"arch": "omc_n"})
    config = TrackerConfig().replace(img_size=(128, 96))
    tracker = Tracker(path, config, RuntimeConfig(backend="torch", device="cpu"))
    with pytest.raises(InputError) as caught:
        tracker.update(np.full((96, 128, 3), 80, np.uint8))
    assert (
        str(caught.value)
        == f"{path}: the network gives NaN or inf on this frame: its weights overflow or are corrupt"
    )


def test_floats_stored_as_integers_are_refused(tmp_path: Path, omc_n_state):
    state = {k: v.to(torch.int32) if v.is_floating_point() else v for k, v in omc_n_state.items()}
    path = tmp_path / "int32.safetensors"
    save_weights(state, path, {"arch": "omc_n"})
    with pytest.raises(
        InputError,
        match=r"tensors are integers where the model has floats: .* torch.int32 vs model torch.float32",
    ):
        load_weights(create_model("omc_n"), path)

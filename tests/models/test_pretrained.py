"""Bundled weights: names, files, metadata and model cards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cstrack.errors import InputError
from cstrack.models import bundled_weights, count_parameters, list_pretrained, save_weights
from cstrack.models.pretrained import DEFAULT_PRETRAINED, model_card, trained_img_size
from cstrack.models.registry import model_from_weights
from cstrack.tracking.online import DEFAULT_MODEL, build_detector

MAX_BUNDLED_BYTES = 30 * 2**20


def test_default_model_is_bundled() -> None:
    assert DEFAULT_MODEL == DEFAULT_PRETRAINED
    assert DEFAULT_PRETRAINED in list_pretrained()


def test_unknown_bundled_name() -> None:
    with pytest.raises(InputError, match="no bundled model 'omc_x.coco'"):
        bundled_weights("omc_x.coco")


def test_trained_img_size_from_metadata(tmp_path: Path) -> None:
    state = {"w": torch.zeros(1)}
    sized = save_weights(state, tmp_path / "sized.safetensors", {"arch": "omc_n", "img_size": "384,288"})
    bare = save_weights(state, tmp_path / "bare.safetensors", {"arch": "omc_n"})
    bad = save_weights(state, tmp_path / "bad.safetensors", {"img_size": "wide"})
    assert trained_img_size(sized) == (384, 288)
    assert trained_img_size(bare) is None
    with pytest.raises(InputError, match="bad.safetensors.*img_size"):
        trained_img_size(bad)


@pytest.mark.parametrize("name", list_pretrained())
def test_bundled_file_loads_with_its_card(name: str) -> None:
    path = bundled_weights(name)
    assert path.stat().st_size <= MAX_BUNDLED_BYTES
    model = model_from_weights(path)
    assert (name.split(".")[0], model.cfg.backbone) in {
        ("omc_mobilenetv2", "mobilenetv2"),
        ("omc_yolox_nano", "yolox"),
    }
    assert count_parameters(model) > 3_000_000 and model.has_recheck
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())
    card = model_card(name).read_text(encoding="utf-8")
    for section in ("Data", "Recipe", "Scores", "cstrack train"):
        assert section in card
    width, height = trained_img_size(path)
    assert build_detector(name, device="cpu").img_size == (width, height)

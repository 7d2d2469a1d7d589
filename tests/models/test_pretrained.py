"""Pretrained weights: names, files, metadata and model cards (downloads: test_downloads.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cstrack.backends import build_detector
from cstrack.config import DEFAULT_MODEL, RuntimeConfig
from cstrack.errors import InputError
from cstrack.models import (
    count_parameters,
    create_model,
    list_pretrained,
    model_from_spec,
    pretrained_weights,
    save_weights,
)
from cstrack.models.pretrained import BUNDLED, model_card, trained_img_size
from cstrack.models.registry import model_from_weights

MAX_BUNDLED_BYTES = 30 * 2**20


def test_default_model_is_bundled() -> None:
    """In the package: `make demo` and a fresh install track without the network."""
    assert DEFAULT_MODEL in BUNDLED


def test_unknown_pretrained_name() -> None:
    with pytest.raises(InputError, match="no pretrained model 'omc_x.coco'"):
        pretrained_weights("omc_x.coco")


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
def test_pretrained_file_loads_with_its_card(name: str) -> None:
    path = pretrained_weights(name)
    assert path.stat().st_size <= MAX_BUNDLED_BYTES
    model = model_from_weights(path)
    assert (name.split(".")[0], model.cfg.backbone) in {
        ("omc_mobilenetv2", "mobilenetv2"),
        ("omc_yolox_nano", "yolox"),
        ("omc_yolox_nano_lite", "yolox"),
    }
    assert count_parameters(model) > 2_000_000 and model.has_recheck
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())
    card = model_card(name).read_text(encoding="utf-8")
    for section in ("Data", "Recipe", "Scores", "cstrack train"):
        assert section in card
    width, height = trained_img_size(path)
    detector = build_detector(name, runtime=RuntimeConfig(device="cpu"))
    assert detector.img_size is None  # fitted to each source; frames of the trained size run at it
    assert detector.input_size((height, width, 3)) == (width, height)


def test_create_model_takes_a_bundled_arch_tag() -> None:
    """timm's convention: `arch.tag` is a trained model, plain `arch` a random one."""
    name = "omc_mobilenetv2.pets"
    tagged = create_model(name)
    loaded = model_from_weights(pretrained_weights(name))
    assert tagged.state_dict().keys() == loaded.state_dict().keys()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in tagged.state_dict().items())
    random = create_model("omc_mobilenetv2").state_dict()
    assert not all(torch.equal(v, random[k]) for k, v in tagged.state_dict().items())
    with pytest.raises(InputError, match="is a trained model: give its arch"):
        create_model(name, recheck=False)


def test_model_from_spec_reads_names_files_and_variants(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bundled = model_from_spec("omc_mobilenetv2.pets")
    assert (bundled.weights, bundled.img_size, bundled.stem) == (
        pretrained_weights("omc_mobilenetv2.pets"),
        (384, 288),
        "omc_mobilenetv2.pets",
    )
    copy = tmp_path / "mine.safetensors"
    copy.write_bytes(bundled.weights.read_bytes())
    from_file = model_from_spec(copy)
    assert (from_file.weights, from_file.img_size, from_file.stem) == (copy, (384, 288), "mine")
    with caplog.at_level("WARNING"):
        variant = model_from_spec("omc_n")
    assert (variant.weights, variant.img_size, variant.stem) == (None, None, "omc_n")
    assert "model 'omc_n' has no weights here: random initialisation" in caplog.text
    with pytest.raises(InputError, match=r"unknown model 'omc_q\.pets': give a \.safetensors file or one of"):
        model_from_spec("omc_q.pets")


def test_resolved_class_names(tmp_path: Path) -> None:
    """Recorded `class_names`, else ("pedestrian",) for one class and class0, class1 ... for more."""
    assert model_from_spec("omc_mobilenetv2.pets").class_names == ("pedestrian",)
    assert model_from_spec("omc_n").class_names == ("pedestrian",)
    two = create_model("omc_n", nc=2)
    options = {"arch": "omc_n", "options": json.dumps({"nc": 2})}
    unnamed = save_weights(two, tmp_path / "unnamed.safetensors", metadata=options)
    assert model_from_spec(unnamed).class_names == ("class0", "class1")
    named = save_weights(
        two, tmp_path / "named.safetensors", metadata={**options, "class_names": '["a", "b"]'}
    )
    assert model_from_spec(named).class_names == ("a", "b")
    for value, problem in (
        ('["a"]', "names 1 classes but the model has 2"),
        ('["a", "a"]', "must be a list of distinct names"),
        ("[a, b", "unreadable 'class_names' metadata"),
    ):
        bad = save_weights(two, tmp_path / "bad.safetensors", metadata={**options, "class_names": value})
        with pytest.raises(InputError, match=problem):
            model_from_spec(bad)

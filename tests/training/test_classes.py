"""Several classes: the data config's names size the model, the weights record them, and a
one-class model starts a two-class one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cstrack.data.mot_to_jde import from_mot
from cstrack.data.synth.scene import SynthConfig
from cstrack.data.synth.write import generate_dataset
from cstrack.errors import InputError
from cstrack.models import create_model, model_from_spec, save_weights
from cstrack.models.classes import adapt_class_layers
from cstrack.models.weights import weights_metadata
from cstrack.training import TrainConfig, load_checkpoint, train
from cstrack.training.trainer import _load_initial_weights

# conftest's tiny scene (large, close figures), with about two cars in view.
SCENE = SynthConfig(frames=8, width=320, height=192, people=4, person_height=0.7, far_scale=0.6, vehicles=2)


@pytest.fixture(scope="module")
def two_class_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pedestrians and cars (MOT classes 1, 3): 8 training and 8 validation frames, `names` given."""
    root = tmp_path_factory.mktemp("two_class")
    generate_dataset(root / "mot_train", SCENE, sequences=1, seed=1, prefix="TRAIN")
    generate_dataset(root / "mot_val", SCENE, sequences=1, seed=2, prefix="VAL")
    train_list = from_mot(root / "mot_train", root / "jde", name="train", classes=(1, 3))
    from_mot(root / "mot_val", root / "jde", name="val", classes=(1, 3))
    assert train_list.class_names == ("pedestrian", "car")
    config = root / "data.yaml"
    config.write_text(
        "names: [pedestrian, car]\ntrain:\n  synth: jde/train.train\nval:\n  synth_val: jde/val.train\n"
    )
    return config


def small_config(data: Path, runs: Path, **changes: object) -> TrainConfig:
    values: dict[str, object] = {
        "model": "omc_n",
        "data": str(data),
        "epochs": 1,
        "batch": 4,
        "img_size": (160, 96),
        "workers": 0,
        "output": str(runs),
        "quiet": True,
    }
    return TrainConfig(**{**values, **changes})


def test_names_size_the_model_and_go_into_the_weights(two_class_data: Path, tmp_path: Path) -> None:
    """Started from a one-class file: the pedestrian rows come from it, the car rows are new."""
    one_class = save_weights(create_model("omc_n"), tmp_path / "one.safetensors")
    run = train(small_config(two_class_data, tmp_path / "runs", name="two", weights=str(one_class)))
    weights = run.run_dir / "weights.safetensors"
    metadata = weights_metadata(weights)
    assert json.loads(metadata["class_names"]) == ["pedestrian", "car"]
    assert json.loads(metadata["options"]) == {"nc": 2}
    resolved = model_from_spec(weights)
    assert resolved.class_names == ("pedestrian", "car") and resolved.model.detect.nc == 2
    assert resolved.img_size == (160, 96)
    meta = load_checkpoint(run.last).meta
    assert (meta["nc"], meta["class_names"]) == (2, ["pedestrian", "car"])
    row = run.history[-1]
    assert {"AP50_pedestrian", "AP50_car", "AP50", "HOTA"} <= set(row) and row["cls"] > 0

    with pytest.raises(InputError, match=r"names 2 class\(es\) \(pedestrian, car\) but --nc is 3"):
        train(small_config(two_class_data, tmp_path / "runs", nc=3))


def test_nc_without_names(two_class_data: Path, tmp_path: Path) -> None:
    """Labels with class 1 need two classes: --nc 2 gives them default names; 1 is refused."""
    unnamed = two_class_data.with_name("unnamed.yaml")
    unnamed.write_text(two_class_data.read_text().replace("names: [pedestrian, car]\n", ""))
    runs = tmp_path / "runs"
    with pytest.raises(InputError, match=r"class 1 but the model has 1 class\(es\) \(0\.\.0\): name the"):
        train(small_config(unnamed, runs, val_every=0))
    run = train(small_config(unnamed, runs, nc=2, val_every=0))
    assert model_from_spec(run.run_dir / "weights.safetensors").class_names == ("class0", "class1")


@pytest.mark.parametrize("arch", ["omc_n", "omc_yolox_nano"])
def test_one_class_weights_start_a_two_class_model_by_name(arch: str, tmp_path: Path) -> None:
    """The anchor head (classes inside each anchor's rows) and the YOLOX head (a class conv)."""
    source = create_model(arch)
    with torch.no_grad():
        for tensor in source.state_dict().values():
            if tensor.is_floating_point():
                tensor.uniform_(-1, 1)
    path = save_weights(source, tmp_path / "one.safetensors")
    torch.manual_seed(0)
    model = create_model(arch, nc=2)
    fresh = {key: value.clone() for key, value in model.state_dict().items()}
    report = _load_initial_weights(model, str(path), "base", ("car", "pedestrian"))
    assert report.endswith(
        "; class layers: 6 tensors refitted from 1 to 2 classes (from the file: pedestrian; initialised: car)"
    )
    old, new = source.state_dict(), model.state_dict()
    head = model.detect
    if arch == "omc_yolox_nano":
        for level in range(3):
            key = f"model.head.cls_preds.{level}.weight"
            assert torch.equal(new[key][1], old[key][0]) and torch.equal(new[key][0], fresh[key][0])
    else:
        key = next(k for k in new if k.endswith(".m.0.bias"))
        for anchor in range(head.na):
            assert torch.equal(new[key][anchor * 7 : anchor * 7 + 5], old[key][anchor * 6 : anchor * 6 + 5])
            assert new[key][anchor * 7 + 6] == old[key][anchor * 6 + 5]  # pedestrian, now class 1
            assert new[key][anchor * 7 + 5] == fresh[key][anchor * 7 + 5]  # car: the model's prior
    unchanged = [k for k in new if k in old and old[k].shape == new[k].shape]
    assert all(torch.equal(new[k], old[k]) for k in unchanged)

    # Same class count: loaded as it is; a file with other names shares no row.
    same = create_model(arch)
    assert "class layers" not in _load_initial_weights(same, str(path), "base")
    state, report = adapt_class_layers(model, head, source.state_dict(), ["dog"], ("car", "pedestrian"))
    assert report is not None and "(from the file: none; initialised: car, pedestrian)" in report

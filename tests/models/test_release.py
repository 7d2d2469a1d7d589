"""Converting released checkpoints: whole pickled modules and state_dicts, safely, into safetensors.

The released classes are imitated inside the tests: modules named `models.mot.cstrack`,
`models.mot.common` and `easydict` exist in sys.modules only while a checkpoint is pickled, so
the converter must read it without them (as it would the authors' files).
"""

from __future__ import annotations

import argparse
import builtins
import os
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from cstrack.cli.main import main
from cstrack.errors import InputError
from cstrack.models import OMC, CSTrack, create_model, load_weights
from cstrack.models.registry import model_from_weights
from cstrack.models.release import convert_checkpoint, read_checkpoint

# Our classes whose released names differ (the rest keep their name, in models.mot.cstrack).
RELEASED_NAMES = {
    "OMC": "SiamMot",
    "CSTrack": "Model",
    "REN": "CCN",
    "SpatialAttention": "SAAN_Attention",
    "ChannelAttention": "SAAN_Attention",
    "ReCheckBox": "recheck_Box",
    "ReCheckHeat": "recheck_heatmap",
}
COMMON = {"Focus", "Conv", "C3", "Bottleneck", "BottleneckCSP", "SPP", "Concat"}
PLAIN = (int, float, str, bool, type(None))
pytestmark = pytest.mark.usefixtures("single_thread")


MODULE_INTERNALS = set(vars(nn.Module()))


@contextmanager
def released_modules() -> Iterator[dict[str, types.ModuleType]]:
    """Fake released packages in sys.modules, removed afterwards (the converter never sees them)."""
    names = ("models", "models.mot", "models.mot.cstrack", "models.mot.common", "easydict")
    modules = {name: types.ModuleType(name) for name in names}
    modules["easydict"].EasyDict = type("EasyDict", (dict,), {"__module__": "easydict"})
    sys.modules.update(modules)
    try:
        yield modules
    finally:
        for name in names:
            del sys.modules[name]


def released_class(modules: dict[str, types.ModuleType], ours: type) -> type:
    name = RELEASED_NAMES.get(ours.__name__, ours.__name__)
    module = modules["models.mot.common" if name in COMMON else "models.mot.cstrack"]
    if not hasattr(module, name):
        setattr(module, name, type(name, (nn.Module,), {"__module__": module.__name__}))
    return getattr(module, name)


def half(t: torch.Tensor, scale: float) -> torch.Tensor:
    return (t.detach() * scale).half() if t.is_floating_point() else t.detach().clone()


def released_tree(module: nn.Module, modules: dict[str, types.ModuleType], scale: float = 1.0) -> nn.Module:
    """An FP16 copy of `module` whose own classes are the fake released ones; torch's stay real."""
    ours = not type(module).__module__.startswith("torch.")
    fake = object.__new__(released_class(modules, type(module)) if ours else type(module))
    attributes = {
        k: v for k, v in vars(module).items() if not ours or k in MODULE_INTERNALS or isinstance(v, PLAIN)
    }
    attributes["_parameters"] = OrderedDict(
        (k, None if p is None else nn.Parameter(half(p, scale), p.requires_grad))
        for k, p in module._parameters.items()
    )
    attributes["_buffers"] = OrderedDict(
        (k, None if b is None else half(b, 1.0)) for k, b in module._buffers.items()
    )
    attributes["_modules"] = OrderedDict(
        (k, released_tree(m, modules, scale)) for k, m in module._modules.items()
    )
    fake.__dict__.update(attributes)
    return fake


def released_omc(model: OMC, modules: dict[str, types.ModuleType], scale: float) -> nn.Module:
    """SiamMot as the release pickles it, with its non-module attributes."""
    tree = released_tree(model, modules, scale)
    tree.opt = argparse.Namespace(recheck=True, img_size=[1088, 608], weights="omc.pt")
    tree.model.yaml = modules["easydict"].EasyDict(nc=1, depth_multiple=1.0)
    detect = tree.model.model[-1]
    detect.stride = torch.tensor([8.0, 16.0, 32.0])
    detect.grid = [torch.zeros(1)] * 3
    return tree


def state_of(tree: nn.Module) -> dict[str, torch.Tensor]:
    """What the released model's state_dict holds, cast to float32 as a plain load would."""
    return {k: v.float() if v.is_floating_point() else v for k, v in tree.state_dict().items()}


def image() -> torch.Tensor:
    return torch.rand(1, 3, 192, 320, generator=torch.Generator().manual_seed(0))


def test_whole_module_checkpoint_prefers_ema(omc_l: OMC, tmp_path: Path) -> None:
    with released_modules() as modules:
        model, ema = released_omc(omc_l, modules, 1.0), released_omc(omc_l, modules, 0.5)
        checkpoint = {
            "epoch": 29,
            "best_fitness": np.array([0.61]),
            "training_results": "29/29 ...",
            "model": model,
            "ema": ema,
            "updates": 12345,
            "optimizer": None,
            "wandb_id": None,
        }
        torch.save(checkpoint, tmp_path / "omc.pt")
        expected = state_of(ema)
    assert "models.mot.cstrack" not in sys.modules
    loaded = read_checkpoint(tmp_path / "omc.pt")
    assert loaded["epoch"] == 29 and type(loaded["model"]).__name__ == "SiamMot"

    result = convert_checkpoint(tmp_path / "omc.pt", tmp_path / "omc.safetensors", "omc_l")
    assert (result.entry, result.epoch, result.tensors, result.parameters) == ("ema", 29, 776, 81_292_910)
    with safe_open(tmp_path / "omc.safetensors", "pt") as handle:
        metadata = handle.metadata()
    assert {v.dtype for v in load_file(tmp_path / "omc.safetensors").values()} == {torch.float32, torch.int64}
    assert metadata["arch"] == "omc_l" and metadata["source"] == "omc.pt" and metadata["epoch"] == "29"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary file left"

    converted = model_from_weights(tmp_path / "omc.safetensors").eval()
    direct = create_model("omc_l").eval()
    load_weights(direct, expected)
    templates = torch.randn(3, 512, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        a, b = converted(image()), direct(image())
        assert all(torch.equal(x, y) for x, y in zip(a.head, b.head)) and torch.equal(
            a.embedding, b.embedding
        )
        assert torch.equal(converted.recheck(a, templates).heat, direct.recheck(b, templates).heat)
    assert torch.equal(converted.detect.k, expected["model.model.29.k"])


def small_checkpoint(model: nn.Module, path: Path, legacy: bool = False, **entries: object) -> Path:
    """A state_dict-style checkpoint (DataParallel keys) in the zip or the legacy format."""
    state = OrderedDict((f"module.{k}", half(v, 1.0)) for k, v in model.state_dict().items())
    torch.save({"epoch": 3, "model": state, **entries}, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("legacy", [False, True])
def test_state_dict_checkpoint(cstrack_s: CSTrack, tmp_path: Path, legacy: bool) -> None:
    path = small_checkpoint(cstrack_s, tmp_path / "cstrack_s.pt", legacy, ema=None)
    result = convert_checkpoint(path, tmp_path / "out.safetensors", "cstrack_s")
    assert (result.entry, result.epoch) == ("model", 3)
    converted = create_model("cstrack_s", tmp_path / "out.safetensors").state_dict()
    for key, value in cstrack_s.state_dict().items():
        assert torch.equal(converted[key], half(value, 1.0).to(value.dtype)), key


def test_omc_stage1_base_only(omc_s: OMC, tmp_path: Path) -> None:
    """An OMC stage-1 checkpoint (base network only, `model.<i>` keys) converts with base_only."""
    path = small_checkpoint(omc_s.model, tmp_path / "stage1.pt")
    with pytest.raises(InputError, match=r"stage1\.pt: no entry fits omc_s: model: .*missing keys: siam"):
        convert_checkpoint(path, tmp_path / "out.safetensors", "omc_s")
    convert_checkpoint(path, tmp_path / "out.safetensors", "omc_s", base_only=True)
    model = model_from_weights(tmp_path / "out.safetensors")
    assert not model.has_recheck and model.cfg.block == "c3"


def test_wrong_arch_and_invalid_ema(cstrack_s: CSTrack, tmp_path: Path) -> None:
    path = small_checkpoint(cstrack_s, tmp_path / "cstrack_s.pt")
    with pytest.raises(
        InputError,
        match=r"cstrack_s\.pt: no entry fits omc_s: model: weights do not match.* model\.model\.2\.cv2\.weight",
    ):
        convert_checkpoint(path, tmp_path / "out.safetensors", "omc_s")
    assert not (tmp_path / "out.safetensors").exists()
    nan = OrderedDict(
        (k, torch.full_like(v, float("nan")) if v.is_floating_point() else v)
        for k, v in cstrack_s.state_dict().items()
    )
    path = small_checkpoint(cstrack_s, tmp_path / "nan_ema.pt", ema=nan, updates=10)
    result = convert_checkpoint(path, tmp_path / "out.safetensors", "cstrack_s")
    assert result.entry == "model" and "ema: non-finite" in result.notes[0]
    with pytest.raises(InputError, match="no entry fits cstrack_s: ema: non-finite"):
        convert_checkpoint(path, tmp_path / "out.safetensors", "cstrack_s", entry="ema")


class SystemCall:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Eval:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize(
    ("payload", "name"), [(SystemCall, os.system.__module__ + ".system"), (Eval, "builtins.eval")]
)
@pytest.mark.parametrize("zipped", [True, False])
def test_malicious_pickles_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture, payload: type, name: str, zipped: bool
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": payload(marker), "epoch": 1}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(InputError, match=rf"evil\.pt: refusing to unpickle the global {name}"):
        read_checkpoint(path)
    code = main(["convert", str(path), str(tmp_path / "out.safetensors"), "--arch", "omc_s"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"global {name}" in err
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(InputError, match=r"text\.pt: not a readable torch checkpoint"):
        read_checkpoint(tmp_path / "text.pt")


def test_cli_convert(cstrack_s: CSTrack, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = small_checkpoint(cstrack_s, tmp_path / "cstrack_s.pt")
    assert main(["convert", str(path), str(tmp_path / "out.safetensors"), "--arch", "cstrack_s"]) == 0
    assert "cstrack_s" in capsys.readouterr().out
    assert model_from_weights(tmp_path / "out.safetensors").cfg.block == "csp"

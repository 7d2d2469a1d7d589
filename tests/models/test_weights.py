"""load_weights: safetensors round trip, prefix alignment, and errors that name file and keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from cstrack.errors import InputError
from cstrack.models import OMC, create_model, list_pretrained, load_weights, pretrained_weights, save_weights
from cstrack.models.registry import model_from_weights


def image() -> torch.Tensor:
    return torch.rand(1, 3, 128, 160, generator=torch.Generator().manual_seed(0))


def saved(model: torch.nn.Module, path: Path, **edits: torch.Tensor) -> Path:
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state.update(edits)
    save_file(state, str(path))
    return path


def test_safetensors_round_trip(omc_s: OMC, tmp_path: Path) -> None:
    path = saved(omc_s, tmp_path / "omc_s.safetensors")
    torch.manual_seed(123)
    fresh = create_model("omc_s", checkpoint_path=path).eval()
    with torch.no_grad():
        a, b = omc_s(image()), fresh(image())
    torch.testing.assert_close(a.embedding, b.embedding, rtol=0, atol=0)
    assert all(torch.equal(x, y) for x, y in zip(a.head, b.head))


def test_wrong_shape_names_file_and_key(omc_s: OMC, tmp_path: Path) -> None:
    path = saved(
        omc_s, tmp_path / "bad.safetensors", **{"model.model.29.m.0.weight": torch.zeros(18, 8, 1, 1)}
    )
    with pytest.raises(InputError, match=r"bad\.safetensors.*model\.model\.29\.m\.0\.weight \(18, 8, 1, 1\)"):
        load_weights(create_model("omc_s"), path)
    with pytest.raises(InputError, match="wrong shape"):
        load_weights(create_model("omc_s"), path, strict=False)


def test_missing_and_unexpected_keys(omc_s: OMC, tmp_path: Path) -> None:
    state = dict(omc_s.state_dict())
    del state["siambox.conv_box.1.bias"]
    state["extra.weight"] = torch.zeros(1)
    model = create_model("omc_s")
    with pytest.raises(
        InputError, match=r"<state_dict>.*1 missing keys: siambox\.conv_box\.1\.bias.*extra\.weight"
    ):
        load_weights(model, state)
    assert load_weights(model, state, strict=False) == (["siambox.conv_box.1.bias"], ["extra.weight"])


def test_prefix_alignment(omc_s: OMC) -> None:
    """DataParallel's `module.` and the release's stage-1/stage-2 layouts are aligned."""
    model = create_model("omc_s")
    assert load_weights(model, {f"module.{k}": v for k, v in omc_s.state_dict().items()}) == ([], [])
    base = create_model("omc_s", recheck=False)
    with pytest.raises(InputError, match="unexpected keys: siambox"):
        load_weights(base, omc_s.state_dict())
    missing, unexpected = load_weights(base, omc_s.state_dict(), strict=False)
    assert missing == [] and unexpected and all(k.startswith("siam") for k in unexpected)
    assert torch.equal(base.model[27].node[2].weight, omc_s.model.model[27].node[2].weight)
    missing, _ = load_weights(model, base.state_dict(), strict=False)
    assert missing and all(k.startswith("siam") for k in missing)


def test_unreadable_files(tmp_path: Path) -> None:
    model = create_model("omc_n")
    with pytest.raises(InputError, match="not found"):
        load_weights(model, tmp_path / "absent.safetensors")
    pickled = tmp_path / "omc.pt"
    pickled.write_bytes(b"\x80\x04")
    with pytest.raises(InputError, match=r"omc\.pt: only \.safetensors"):
        load_weights(model, pickled)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="corrupt.safetensors: not a readable"):
        load_weights(model, corrupt)


@pytest.mark.parametrize(
    ("value", "dtype"),
    [(float("nan"), torch.float32), (float("inf"), torch.float32), (1e300, torch.float64)],
    ids=["nan", "inf", "float64-overflow"],  # 1e300 in a float64 file is inf in the float32 model
)
def test_non_finite_weights_are_refused(tmp_path: Path, value: float, dtype: torch.dtype) -> None:
    """NaN weights would load and silently detect nothing: refused, the file and first tensor named."""
    model = create_model("omc_n")
    key = "model.model.29.m.0.weight"
    before = model.state_dict()[key].clone()
    bad = torch.zeros_like(before, dtype=dtype)
    bad.view(-1)[7] = value
    path = saved(model, tmp_path / "nan.safetensors", **{key: bad})
    with pytest.raises(
        InputError, match=rf"nan\.safetensors: non-finite values \(NaN or inf\) in 1 tensors, first {key}"
    ):
        load_weights(model, path)
    assert torch.equal(model.state_dict()[key], before), "nothing loaded"
    save_weights({**model.state_dict(), key: bad}, path, {"arch": "omc_n"})
    with pytest.raises(InputError, match=rf"nan\.safetensors: non-finite .* first {key}"):
        model_from_weights(path)


def test_keys_in_errors_stay_on_one_line(tmp_path: Path) -> None:
    state = dict(create_model("omc_n").state_dict())
    state["evil\nkey"] = torch.zeros(1)
    with pytest.raises(InputError, match=r"unexpected keys: evil\\nkey") as info:
        load_weights(create_model("omc_n"), state)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", list_pretrained())
def test_pretrained_weights_are_finite_and_load(name: str) -> None:
    model = model_from_weights(pretrained_weights(name))
    assert all(v.isfinite().all() for v in model.state_dict().values() if v.is_floating_point())

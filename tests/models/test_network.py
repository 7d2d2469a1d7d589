"""Forward contract, decode, gradients, ablation switches, fusion and the variant registry."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cstrack.errors import InputError
from cstrack.models import OMC, CSTrack, create_model, list_models, model_config
from cstrack.models.registry import count_parameters

H, W = 192, 320
LEVELS = [(H // s, W // s) for s in (8, 16, 32)]


def image(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, H, W, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["cstrack_s", "omc_s"])
def test_forward_shapes(name: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(name)
    with torch.no_grad():
        out = model(image())
    assert [tuple(h.shape) for h in out.head] == [(2, 3, h, w, 6) for h, w in LEVELS]
    assert out.embedding.shape == (2, 512, H // 8, W // 8)
    assert [f.shape[1:] for f in out.features] == [(c, h, w) for c, (h, w) in zip((128, 256, 512), LEVELS)]
    if name == "omc_s":
        assert out.dense_mask.shape == (2, 1, H // 8, W // 8)
    else:
        assert out.dense_mask is None


def test_decode_boxes_inside_image(omc_s: OMC) -> None:
    with torch.no_grad():
        out = omc_s(image())
    decoded = omc_s.decode(out)
    n = 3 * sum(h * w for h, w in LEVELS)
    assert decoded.boxes.shape == (2, n, 4) and decoded.obj.shape == (2, n) and decoded.cls.shape == (2, n, 1)
    boxes = decoded.boxes
    assert torch.all(boxes[..., 0::2] >= 0) and torch.all(boxes[..., 0::2] <= W)
    assert torch.all(boxes[..., 1::2] >= 0) and torch.all(boxes[..., 1::2] <= H)
    assert torch.all(boxes[..., 2:] >= boxes[..., :2])
    assert decoded.level.bincount().tolist() == [3 * h * w for h, w in LEVELS]
    assert torch.all((decoded.obj > 0) & (decoded.obj < 1))
    torch.testing.assert_close(decoded.scores, decoded.obj * decoded.cls[..., 0])


@pytest.mark.parametrize("bar", [True, False])
def test_decode_formula(bar: bool) -> None:
    """One cell decoded by hand: YOLOv5 (2s - 0.5 + g) * stride, BAR ((s - 0.5) k + g) * stride."""
    torch.manual_seed(0)
    model = create_model("omc_n", bar=bar, recheck=False).eval()
    with torch.no_grad():
        out = model(image(1))
    decoded = model.decode(out, clip=False)
    level, anchor, gy, gx = 1, 2, 3, 5
    raw = out.head[level][0, anchor, gy, gx].sigmoid()
    offset = (raw[:2] - 0.5) * 10.0 if bar else raw[:2] * 2 - 0.5
    xy = (offset + torch.tensor([gx, gy])) * 16
    wh = (raw[2:4] * 2) ** 2 * torch.tensor([64.0, 192.0])
    row = (
        3 * sum(h * w for h, w in LEVELS[:level])
        + anchor * LEVELS[level][0] * LEVELS[level][1]
        + gy * LEVELS[level][1]
        + gx
    )
    torch.testing.assert_close(decoded.boxes[0, row], torch.cat((xy - wh / 2, xy + wh / 2)))
    assert decoded.level[row] == level and decoded.anchor[row] == anchor


def test_detect_bias_priors(omc_s: OMC) -> None:
    """YOLOv5 priors on top of the default init: objectness ~ 8 objects per 640^2, class 0.6."""
    for conv, stride in zip(omc_s.detect.m, (8, 16, 32)):
        bias = conv.bias.view(3, 6)
        assert torch.all(bias[:, 4] < math.log(8 / (640 / stride) ** 2) + 1)
        assert torch.all(bias[:, 5] > math.log(0.6 / 0.01) - 1)


def test_bar_and_ren_lambdas_get_gradients() -> None:
    torch.manual_seed(0)
    model = create_model("omc_s")
    out = model(image())
    # BAR's k enters through the box decode, as in the box loss.
    boxes = model.decode(out, clip=False).boxes
    loss = boxes.mean() + out.embedding.pow(2).mean() + out.dense_mask.mean()
    loss.backward()
    assert model.detect.k.requires_grad and model.detect.k.grad.abs().item() > 0
    assert model.detect.k.item() == 10.0
    for ren in model.model.model[24:27]:
        assert ren.w1.item() == ren.w2.item() == 0.5
        assert ren.w1.grad.abs().item() > 0 and ren.w2.grad.abs().item() > 0


def test_bar_off_freezes_k() -> None:
    model = create_model("omc_n", bar=False, recheck=False)
    model.decode(model(image(1)), clip=False).boxes.sum().backward()
    assert not model.detect.k.requires_grad and model.detect.k.grad is None
    assert "model.29.k" in model.state_dict()


def keys(model: nn.Module) -> set[str]:
    return set(model.state_dict())


def test_ablation_switches_change_the_parameter_set() -> None:
    full = keys(create_model("omc_n"))
    no_ren = keys(create_model("omc_n", ren=False))
    assert no_ren == {
        k for k in full if not k.startswith(("model.model.24.", "model.model.25.", "model.model.26."))
    }

    no_saan = keys(create_model("omc_n", saan=False))
    saan = {k for k in full if k.startswith("model.model.27.")}
    assert no_saan == (full - saan) | {"model.model.27.conv.weight", "model.model.27.conv.bias"}

    no_mask = keys(create_model("omc_n", dense_mask=False))
    assert not any(k.startswith("model.model.28.proj") for k in no_mask)
    assert {k.replace(".28.", ".29.") for k in no_mask if ".28." in k} == {k for k in full if ".29." in k}

    base = create_model("omc_n", recheck=False)
    assert isinstance(base, CSTrack) and not base.has_recheck
    assert keys(base) == {k.removeprefix("model.") for k in full if k.startswith("model.")}

    no_bar = create_model("omc_n", bar=False)
    assert keys(no_bar) == full
    trainable = {k for k, p in no_bar.named_parameters() if p.requires_grad}
    assert trainable == {k for k, _ in create_model("omc_n").named_parameters()} - {"model.model.29.k"}


def test_ablated_forward() -> None:
    model = create_model("omc_n", ren=False, saan=False, dense_mask=False, recheck=False).eval()
    with torch.no_grad():
        out = model(image(1))
    assert out.embedding.shape == (1, 512, H // 8, W // 8) and out.dense_mask is None
    assert all(f.shape[2:] == hw for f, hw in zip(out.features, LEVELS))


@pytest.mark.parametrize("name", ["cstrack_s", "omc_s"])
def test_fuse_keeps_outputs(name: str) -> None:
    torch.manual_seed(1)
    model = create_model(name)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    model.eval()
    x = image(1)
    templates = torch.randn(3, 512)
    with torch.no_grad():
        before = model(x)
        heat = model.recheck(before, templates).heat if model.has_recheck else None
        model.fuse()
        after = model(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    pairs = list(zip(before.head, after.head)) + [(before.embedding, after.embedding)]
    if heat is not None:
        pairs += [(before.dense_mask, after.dense_mask), (heat, model.recheck(after, templates).heat)]
    for a, b in pairs:
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * a.abs().max().item())


def test_registry() -> None:
    names = list_models()
    assert {f"{f}_{s}" for f in ("cstrack", "omc") for s in "nsmlx"} <= set(names)
    assert model_config("omc_s").recheck_channels == 128
    assert [model_config(f"omc_{s}").recheck_channels for s in "nsmlx"] == [64, 128, 192, 256, 320]
    small = create_model("cstrack_s")
    assert isinstance(small, CSTrack)
    assert 0.15 < count_parameters(small) / 78_863_078 < 0.3
    assert small.model[2].m[0].cv1.conv.in_channels == 32 and len(small.model[4].m) == 3
    with pytest.raises(InputError, match="unknown model"):
        create_model("yolo_l")
    with pytest.raises(InputError, match="unknown model options"):
        create_model("omc_s", reen=False)
    with pytest.raises(InputError, match="recheck_mask"):
        create_model("omc_s", recheck_mask="round")


def test_a_closed_ren_gate_skips_the_detection_relation_with_equal_outputs() -> None:
    from cstrack.models.ren import REN

    torch.manual_seed(0)
    ren = REN(16, det_gate=True)
    x = torch.randn(2, 16, 12, 20)
    full_det, full_id = ren.train()(x)
    fast_det, fast_id = ren.eval()(x)
    assert ren._det_is_identity()
    assert torch.equal(fast_det, x) and torch.equal(full_det, x)
    torch.testing.assert_close(fast_id, full_id)
    with torch.no_grad():
        ren.det_gate.fill_(0.5)
    assert not ren._det_is_identity()
    assert not torch.equal(ren(x)[0], x)

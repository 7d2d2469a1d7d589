"""The MobileNetV2 backbone: ImageNet weights in torchvision's layout load and compute the same.

The reference below is the classic torchvision-style MobileNetV2 `features` tree (conv/BN/ReLU6
Sequentials, inverted residual blocks holding one `conv` Sequential), written independently of
`cstrack.models.mobilenet`, with random weights and BatchNorm statistics standing in for ImageNet.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

from cstrack.cli.main import main
from cstrack.converters.release import convert_backbone
from cstrack.models import count_parameters, create_model, load_weights
from cstrack.models.mobilenet import OUT_CHANNELS, imagenet_backbone_state

pytestmark = pytest.mark.usefixtures("single_thread")
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def conv_bn(c1: int, c2: int, k: int, stride: int, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(c1, c2, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c2),
    ]
    return layers + ([nn.ReLU6(inplace=True)] if relu else [])


class ReferenceBlock(nn.Module):
    def __init__(self, c1: int, c2: int, stride: int, t: int):
        super().__init__()
        hidden = c1 * t
        layers = conv_bn(c1, hidden, 1, 1) if t != 1 else []
        layers += conv_bn(hidden, hidden, 3, stride, hidden) + conv_bn(hidden, c2, 1, 1, relu=False)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class ReferenceMobileNetV2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Sequential(*conv_bn(3, 32, 3, 2))]
        c1 = 32
        for t, c, n, s in [
            (1, 16, 1, 1),
            (6, 24, 2, 2),
            (6, 32, 3, 2),
            (6, 64, 4, 2),
            (6, 96, 3, 1),
            (6, 160, 3, 2),
            (6, 320, 1, 1),
        ]:
            for i in range(n):
                blocks.append(ReferenceBlock(c1, c, s if i == 0 else 1, t))
                c1 = c
        blocks.append(nn.Sequential(*conv_bn(320, 1280, 1, 1)))
        self.features = nn.Sequential(*blocks)


@pytest.fixture(scope="module")
def reference() -> ReferenceMobileNetV2:
    torch.manual_seed(0)
    net = ReferenceMobileNetV2()
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
            nn.init.uniform_(module.running_mean, -0.2, 0.2)
            nn.init.uniform_(module.running_var, 0.5, 2.0)
    return net.eval()


def backbone(model: nn.Module) -> nn.Sequential:
    return nn.Sequential(*list(model.model.model)[:10])


def test_imagenet_weights_give_the_reference_features(reference: ReferenceMobileNetV2) -> None:
    model = create_model("omc_mobilenetv2").eval()
    state = imagenet_backbone_state(reference.state_dict())
    backbone(model).load_state_dict(state)
    x = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        taps = {}
        y = x
        for i, slot in enumerate(backbone(model)):
            y = slot(y)
            taps[i] = y
        want = reference.features[:18]((x - MEAN) / STD)
        want_stride8 = reference.features[:7]((x - MEAN) / STD)
    assert torch.allclose(taps[9], want, atol=1e-5)
    assert torch.allclose(taps[4], want_stride8, atol=1e-5)
    assert [taps[i].shape[1] for i in (4, 6, 9)] == list(OUT_CHANNELS)
    assert [128 // taps[i].shape[3] for i in (4, 6, 9)] == [8, 16, 32]


def test_whole_network_runs_and_keeps_the_release_layout() -> None:
    model = create_model("omc_mobilenetv2").eval()
    out = model(torch.rand(1, 3, 96, 160))
    assert [tuple(h.shape) for h in out.head] == [(1, 3, 12, 20, 6), (1, 3, 6, 10, 6), (1, 3, 3, 5, 6)]
    assert tuple(out.embedding.shape) == (1, 512, 12, 20)
    assert 4_500_000 < count_parameters(model) < 5_000_000  # 19 MB in float32: small enough to bundle
    assert any(key.startswith("model.model.10.") for key in model.state_dict())


def test_convert_backbone_writes_initial_weights(tmp_path: Path, reference: ReferenceMobileNetV2) -> None:
    source = tmp_path / "mobilenetv2.pth"
    torch.save(reference.state_dict(), source)
    out = tmp_path / "init.safetensors"
    assert main(["convert", str(source), str(out), "--arch", "omc_mobilenetv2", "--backbone"]) == 0
    with safe_open(out, "pt") as handle:
        assert handle.metadata()["arch"] == "omc_mobilenetv2"
    model = create_model("omc_mobilenetv2")
    assert load_weights(model, out) == ([], [])
    first = reference.features[0][0].weight
    assert torch.equal(backbone(model)[0][1].conv.weight, first)


def test_convert_backbone_refuses_other_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "not_mobilenet.pth"
    torch.save({"features.0.0.weight": torch.zeros(8, 3, 3, 3)}, source)
    out = tmp_path / "init.safetensors"
    assert main(["convert", str(source), str(out), "--arch", "omc_mobilenetv2", "--backbone"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not_mobilenet.pth" in err[0] and "MobileNetV2" in err[0]
    assert not out.exists()
    with pytest.raises(ValueError, match="MobileNetV2 architecture"):
        convert_backbone(source, out, "omc_n")

"""YOLOX-Nano variants: structure, the identity start of REN's gated detection branch, the head's
decoding and the PAFPN levels (the ONNX import: tests/converters/test_yolox_onnx.py)."""

from __future__ import annotations

import numpy as np
import torch

from cstrack.models import count_parameters, create_model
from cstrack.models.network import OMC, YOLOXTrack
from cstrack.models.yolox import PAFPN, YOLOXHead

YOLOX_NANO_PARAMETERS = 889_058  # 1-class YOLOX-Nano: the conv weights and biases of the ByteTrack graph


def test_variants_are_yolox_based_and_keep_the_contract() -> None:
    omc = create_model("omc_yolox_nano").eval()
    cst = create_model("cstrack_yolox_nano").eval()
    assert isinstance(omc, OMC) and isinstance(omc.model, YOLOXTrack)
    assert isinstance(cst, YOLOXTrack) and cst.dense_mask is None
    with torch.no_grad():
        out = omc(torch.rand(1, 3, 192, 256))
        recheck = omc.recheck(out, torch.randn(2, 512))
    assert [tuple(h.shape) for h in out.head] == [(1, 1, 24, 32, 6), (1, 1, 12, 16, 6), (1, 1, 6, 8, 6)]
    assert tuple(out.embedding.shape) == (1, 512, 24, 32)
    assert [f.shape[1] for f in out.features] == [64, 128, 256]
    assert tuple(recheck.heat.shape) == (1, 1, 24, 32)
    assert omc.decode(out).boxes.shape == (1, 24 * 32 + 12 * 16 + 6 * 8, 4)
    yolox = count_parameters(omc.model.backbone) + count_parameters(omc.model.head) - 1  # minus BAR's k
    assert yolox == YOLOX_NANO_PARAMETERS


def test_ren_detection_branch_starts_as_the_identity() -> None:
    network = create_model("cstrack_yolox_nano").eval()
    x = torch.rand(2, 3, 128, 160)
    with torch.no_grad():
        pyramid = network.backbone(network.input(x))
        out = network(x)
        assert all(torch.equal(f, p) for f, p in zip(out.features, pyramid))
        assert all(torch.equal(h, g) for h, g in zip(out.head, network.head(pyramid)))
        network.ren[0].det_gate.fill_(0.5)
        assert not torch.equal(network(x).features[0], pyramid[0])


def test_head_decode_follows_yolox() -> None:
    head = YOLOXHead((64, 128, 256), nc=1)
    raw = [torch.zeros(1, 1, 2, 3, 6), torch.zeros(1, 1, 1, 2, 6), torch.zeros(1, 1, 1, 1, 6)]
    raw[0][0, 0, 1, 2, :4] = torch.tensor([0.5, 0.25, np.log(2.0), 0.0])
    decoded = head.decode(raw)
    # cell (x=2, y=1) at stride 8: centre ((0.5 + 2) * 8, (0.25 + 1) * 8) = (20, 10), size 16 x 8
    assert torch.allclose(decoded.boxes[0, 5], torch.tensor([12.0, 6.0, 28.0, 14.0]))
    assert torch.allclose(decoded.obj, torch.full_like(decoded.obj, 0.5))
    assert decoded.level.tolist() == [0] * 6 + [1] * 2 + [2]


def test_pafpn_levels() -> None:
    with torch.no_grad():
        levels = PAFPN()(torch.rand(1, 3, 96, 128))
    assert [tuple(t.shape[1:]) for t in levels] == [(64, 12, 16), (128, 6, 8), (256, 3, 4)]

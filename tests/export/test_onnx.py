"""ONNX export: the graphs reproduce PyTorch, and the ONNX Runtime backend gives the same detections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from cstrack.backends.onnx import OnnxBackend, paired_outputs
from cstrack.backends.torch import TorchBackend
from cstrack.cli.main import main
from cstrack.config import DetectorConfig
from cstrack.errors import InputError
from cstrack.export.onnx import MatmulAdaptiveAvgPool, export_onnx
from cstrack.models import OMC, CSTrack, Detector, create_model, save_weights
from cstrack.models.detect import Decoded
from cstrack.models.inference import DetectorBackend
from cstrack.models.pretrained import list_pretrained, pretrained_weights, trained_img_size
from cstrack.tracking import DetectionResult

SIZE = (320, 192)
pytestmark = pytest.mark.usefixtures("single_thread")


def small(name: str) -> OMC | CSTrack:
    torch.manual_seed(0)
    return create_model(name).eval()


@pytest.fixture(scope="module")
def sharp_omc() -> OMC:
    """An untrained OMC-N whose detection head spreads the scores apart, for NMS-level comparisons.

    Untrained, the head's input is ~1e-6 and every score nearly equal, so NMS order would hinge on
    float rounding; a head 2e6 times stronger (float32 is scale-free) gives distinct scores. The
    heat head's bias is zeroed (M ~ 0.5 instead of the 0.01 prior) so that re-check peaks pass 0.3.
    """
    model = small("omc_n")
    with torch.no_grad():
        for conv in model.detect.m:
            conv.weight.mul_(2e6)
            conv.bias.zero_()
        model.siamheatmap.conv2[-1].bias.zero_()
    return model


@pytest.mark.parametrize("size", [(6, 10), (76, 136), (19, 34), (5, 7)])
def test_matmul_pool_is_adaptive_pool(size: tuple[int, int]) -> None:
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
    expected = torch.nn.AdaptiveAvgPool2d((6, 10))(x)
    torch.testing.assert_close(MatmulAdaptiveAvgPool((6, 10))(x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["omc_s", "cstrack_s", "omc_mobilenetv2", "omc_yolox_nano"])
def test_graphs_match_torch(name: str) -> None:
    model = small(name)
    models = export_onnx(model, SIZE)
    assert [o.name for o in models.base.graph.output][:4] == ["boxes", "obj", "cls", "embedding"]
    assert (models.recheck is not None) == model.has_recheck
    for templates in (2, 0) if model.has_recheck else (2,):
        for key, (ours, theirs) in paired_outputs(model, models, templates).items():
            assert ours.shape == theirs.shape, key
            # Boxes are pixels up to ~500 where float32 steps are 3e-5: 1e-4 absolute plus 1e-5 relative.
            torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-4, msg=key)
    if model.has_recheck:
        heat_input = next(i for i in models.recheck.graph.input if i.name == "templates")
        assert heat_input.type.tensor_type.shape.dim[0].dim_param == "K"


def check_same_detections(a: DetectionResult, b: DetectionResult) -> None:
    """Same detections up to the order of near-equal scores: boxes paired one-to-one within 1e-3 px.

    Pairs come from an assignment on box and score distance, as clipped boxes may repeat.
    """
    assert len(a.scores) == len(b.scores) and len(a.trans_scores) == len(b.trans_scores)
    for boxes_a, boxes_b, pairs in [
        (
            a.boxes_xyxy,
            b.boxes_xyxy,
            [(a.scores, b.scores), (a.embeddings, b.embeddings), (a.levels, b.levels)],
        ),
        (a.trans_boxes_xyxy, b.trans_boxes_xyxy, [(a.trans_scores, b.trans_scores)]),
    ]:
        distance = np.abs(boxes_a[:, None] - boxes_b[None]).max(-1)
        rows, match = linear_sum_assignment(distance + np.abs(pairs[0][0][:, None] - pairs[0][1][None]))
        assert distance[rows, match].max(initial=0) <= 1e-3
        for x, y in pairs:
            np.testing.assert_allclose(y[match], x, rtol=1e-4, atol=1e-5)


def test_detector_backends_agree(sharp_omc: OMC) -> None:
    frame = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    templates = np.random.default_rng(1).standard_normal((3, 512)).astype(np.float32)
    torch_detector = Detector(TorchBackend(sharp_omc), DetectorConfig(img_size=SIZE))
    onnx_detector = Detector(OnnxBackend.from_model(sharp_omc, SIZE), DetectorConfig(img_size=SIZE))
    assert onnx_detector.has_recheck
    assert isinstance(torch_detector.backend, DetectorBackend) and isinstance(
        onnx_detector.backend, DetectorBackend
    )
    for k in (templates, None):
        expected = torch_detector(frame, k)
        assert len(expected.scores) > 20 and len(expected.trans_scores) == (0 if k is None else 100)
        check_same_detections(expected, onnx_detector(frame, k))


def test_cli_export_and_files_backend(sharp_omc: OMC, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    weights = save_weights(sharp_omc, tmp_path / "trained.safetensors", {"arch": "omc_n"})
    args = ["--model", str(weights), "--img-size", *map(str, SIZE), "--output", str(tmp_path / "omc.onnx")]
    assert main(["export", *args, "--recheck", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "omc.recheck.onnx" in out and "max |onnxruntime - torch| heat at 320x192" in out
    assert "max |onnxruntime - torch| heat at 384x224" in out  # a dynamic graph, checked at two sizes
    onnx.checker.check_model(str(tmp_path / "omc.recheck.onnx"))
    backend = OnnxBackend.from_files(tmp_path / "omc.onnx")
    assert backend.has_recheck and backend.img_size == SIZE and backend.dynamic
    templates = np.random.default_rng(3).standard_normal((2, 512)).astype(np.float32)
    for size in (SIZE, (416, 256)):  # the export size and another: one file
        frame = np.random.default_rng(2).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        expected = Detector(TorchBackend(sharp_omc), DetectorConfig(img_size=size))(frame, templates)
        check_same_detections(expected, Detector(backend, DetectorConfig(img_size=size))(frame, templates))


def test_static_export_keeps_its_size(tmp_path: Path) -> None:
    output = tmp_path / "static.onnx"
    assert (
        main(
            ["export", "--model", "omc_n", "--img-size", *map(str, SIZE), "--static", "--output", str(output)]
        )
        == 0
    )
    dims = [d.dim_value for d in onnx.load(str(output)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, SIZE[1], SIZE[0]]
    backend = OnnxBackend.from_files(output)
    assert not backend.dynamic and backend.img_size == SIZE
    Detector(backend, DetectorConfig(img_size=SIZE))
    with pytest.raises(InputError, match="built for input size"):
        Detector(backend, DetectorConfig(img_size=(640, 384)))


def test_unloadable_onnx_files(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(InputError, match=r"bad\.onnx: not a loadable ONNX model"):
        OnnxBackend.from_files(tmp_path / "bad.onnx")
    with pytest.raises(InputError, match="ONNX file not found"):
        OnnxBackend.from_files(tmp_path / "absent.onnx")


def test_cli_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", "--model", "cstrack_n", "--img-size", "320", "192", "--recheck"]) == 2
    assert "no re-check network" in capsys.readouterr().err
    assert main(["export", "--model", "cstrack_n", "--img-size", "320", "190"]) == 2
    assert "multiples of 32" in capsys.readouterr().err
    assert main(["export", "--model", str(tmp_path / "absent.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["export", "--model", "omc.pt"]) == 2
    assert "cstrack convert" in capsys.readouterr().err


def compare_at(
    model: OMC | CSTrack, backend: OnnxBackend, size: tuple[int, int], box_atol: float = 1e-4, seed: int = 0
) -> None:
    """PyTorch (`model`, BatchNorm folded, as `Detector` runs it) and `backend` on one random input of
    `size`: every output within 1e-4, boxes within `box_atol` plus 1e-5 relative (float32's step at
    500 px), the same anchor layout."""
    reference = TorchBackend(model.eval().fuse())
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size[1], size[0], generator=generator)
    templates = torch.randn(3, model.emb_dim, generator=generator)
    with torch.inference_mode():
        ours, theirs = reference.run(x), backend.run(x)
        pairs = [
            (name, getattr(ours.decoded, name), getattr(theirs.decoded, name)) for name in Decoded._fields
        ]
        pairs.append(("embedding", ours.embedding, theirs.embedding))
        if backend.has_recheck:
            recheck = zip(reference.recheck(ours, templates), backend.recheck(theirs, templates))
            pairs += [(name, a, b) for name, (a, b) in zip(("heat", "recheck boxes"), recheck)]
    for name, expected, actual in pairs:
        assert expected.shape == actual.shape, name
        if expected.is_floating_point():
            atol = box_atol if "boxes" in name else 1e-4
            torch.testing.assert_close(actual, expected, rtol=1e-5, atol=atol, msg=name)
        else:
            assert torch.equal(actual, expected), name


@pytest.mark.parametrize("name", list_pretrained())
def test_cli_exports_every_pretrained_model_by_name(name: str, tmp_path: Path) -> None:
    """track's default model and every pretrained name export by name (one resolver): one dynamic file,
    whose default size is the trained one, matches PyTorch at that size and at another."""
    output = tmp_path / "bundled.onnx"
    assert main(["export", "--model", name, "--recheck", "--output", str(output)]) == 0
    proto = onnx.load(str(output))
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, "height", "width"]
    metadata = {p.key: p.value for p in proto.metadata_props}
    width, height = trained_img_size(pretrained_weights(name))
    assert metadata["cstrack.img_size"] == f"{width},{height}" and metadata["cstrack.dynamic_size"] == "true"
    backend = OnnxBackend.from_files(output)
    assert backend.has_recheck and backend.dynamic and backend.img_size == (width, height)
    # Trained weights make larger features than random ones: float32 rounding then moves YOLOX's
    # exp-decoded boxes by up to ~5e-3 px, as far as PyTorch's own NCHW and channels-last results
    # are apart; 2e-2 px is far below anything tracking sees.
    model = create_model(name)
    compare_at(model, backend, (width, height), box_atol=2e-2)
    compare_at(model, backend, (320, 192), box_atol=2e-2)


@pytest.mark.parametrize("name", ["omc_s", "omc_yolox_nano"])  # the anchor head and YOLOX's
def test_one_dynamic_file_at_two_sizes(name: str, tmp_path: Path) -> None:
    """One exported file (base and re-check graphs) runs at its export size and at another, both
    within 1e-4 of PyTorch (boxes: plus 1e-5 relative); the grids and REN's pool follow the input."""
    model = small(name)
    export_onnx(model, SIZE).save(tmp_path / "model.onnx")
    backend = OnnxBackend.from_files(tmp_path / "model.onnx")
    assert backend.dynamic and backend.has_recheck == model.has_recheck
    for size in (SIZE, (448, 256)):
        compare_at(model, backend, size)

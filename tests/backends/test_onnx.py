"""The ONNX Runtime backend: execution providers, float16 graphs, and starting from the cache of
exported graphs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import cstrack.backends.onnx as onnx_backend
import cstrack.export.cache as cache
from cstrack.backends import TorchBackend, build_detector
from cstrack.backends.onnx import OnnxBackend, select_providers
from cstrack.cli.main import main
from cstrack.config import DetectorConfig, RuntimeConfig
from cstrack.errors import InputError
from cstrack.export.onnx import export_onnx, recheck_path
from cstrack.models import Detector, create_model, save_weights

SIZE = (320, 192)
TRT, CUDA, OPENVINO, CPU = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def available(monkeypatch: pytest.MonkeyPatch):
    """Pretend this onnxruntime has the providers given (only the CPU one exists here)."""

    def set_available(*names: str) -> None:
        monkeypatch.setattr(onnx_backend.ort, "get_available_providers", lambda: list(names))

    return set_available


@pytest.mark.parametrize(
    "names, expected",
    [
        ((TRT, CUDA, OPENVINO, "AzureExecutionProvider", CPU), [TRT, CUDA, OPENVINO, CPU]),
        ((CPU, CUDA), [CUDA, CPU]),
        ((OPENVINO, CPU), [OPENVINO, CPU]),
        (("AzureExecutionProvider", CPU), [CPU]),  # what the CPU wheel of onnxruntime has
    ],
)
def test_providers_are_chosen_by_availability(available, names, expected) -> None:
    available(*names)
    assert select_providers() == expected
    assert select_providers("") == expected


def test_requested_providers(available) -> None:
    available(TRT, CUDA, OPENVINO, "AzureExecutionProvider", CPU)
    assert select_providers("cuda,cpu") == [CUDA, CPU]
    assert select_providers(" CUDA , CPUExecutionProvider,cuda") == [CUDA, CPU]
    assert select_providers(["tensorrt"]) == [TRT]
    assert select_providers("OpenVINO") == [OPENVINO]
    assert select_providers("AzureExecutionProvider") == ["AzureExecutionProvider"]


@pytest.mark.parametrize(
    "requested, message",
    [
        ("rocm", "unknown ONNX Runtime execution provider 'rocm'; choose from tensorrt, cuda, openvino, cpu"),
        ("cpu,", "unknown ONNX Runtime execution provider ''"),
        ("cuda", "execution provider CUDAExecutionProvider is not available in this onnxruntime "),
        ("TensorrtExecutionProvider", "TensorrtExecutionProvider is not available"),
    ],
)
def test_unknown_or_missing_providers_are_one_line_errors(available, requested: str, message: str) -> None:
    available(CPU)
    with pytest.raises(InputError, match=message) as error:
        select_providers(requested)
    assert "\n" not in str(error.value)


def test_the_backend_asks_onnx_runtime_for_the_chosen_providers(
    available, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With CUDA reported, the sessions are asked for CUDA first; the real (CPU) one runs them."""
    available(CUDA, CPU)
    asked: list[list[str]] = []
    session = onnx_backend.ort.InferenceSession

    def recording(source, options, providers):
        asked.append(providers)
        return session(source, options, providers=[CPU])

    monkeypatch.setattr(onnx_backend.ort, "InferenceSession", recording)
    with caplog.at_level(logging.INFO, logger="cstrack"):
        backend = OnnxBackend.from_model(create_model("omc_n").eval(), SIZE)
    assert asked == [[CUDA, CPU], [CUDA, CPU]]  # base and re-check graphs
    assert backend.providers == [CPU]  # what the session reports it runs on
    assert "cstrack: ONNX Runtime execution providers: CPUExecutionProvider" in caplog.text


def elem_types(values) -> set[int]:
    return {v.type.tensor_type.elem_type for v in values}


@pytest.fixture(scope="module")
def pets() -> torch.nn.Module:
    """A trained model (float16 of a random network's ~1e-6 activations would be mostly rounding)."""
    return create_model("omc_mobilenetv2.pets").eval()


def test_half_graphs_are_float16_and_run(pets, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """ONNX Runtime's CPU provider has float16 kernels for these graphs: they run, with a warning
    (no faster than float32 there), and give float32 results near PyTorch's float32 ones."""
    output = tmp_path / "pets_fp16.onnx"
    assert (
        main(["export", "--model", "omc_mobilenetv2.pets", "--recheck", "--half", "--output", str(output)])
        == 0
    )
    base, recheck = onnx.load(str(output)), onnx.load(str(recheck_path(output)))
    for proto in (base, recheck):
        assert elem_types(proto.graph.input) == elem_types(proto.graph.output) == {onnx.TensorProto.FLOAT16}
        assert {p.key: p.value for p in proto.metadata_props}["cstrack.dtype"] == "float16"
    with caplog.at_level(logging.WARNING, logger="cstrack"):
        backend = OnnxBackend.from_files(output, providers=select_providers("cpu"))
    assert "a float16 graph on CPUExecutionProvider" in caplog.text
    assert backend.input_dtype == np.float16 and backend.dynamic
    reference = TorchBackend(pets.fuse())
    x = torch.rand(1, 3, 288, 384, generator=torch.Generator().manual_seed(0))
    templates = torch.randn(3, 512, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ours, theirs = reference.run(x), backend.run(x)
        heat, _ = reference.recheck(ours, templates)
        their_heat, _ = backend.recheck(theirs, templates)
    assert theirs.decoded.boxes.dtype == torch.float32 and theirs.embedding.dtype == torch.float32
    # float16 steps: 0.25 px at 300-500 px; probabilities to ~1e-3.
    torch.testing.assert_close(theirs.decoded.obj, ours.decoded.obj, rtol=0, atol=1e-2)
    torch.testing.assert_close(their_heat, heat, rtol=0, atol=1e-2)
    assert (theirs.decoded.boxes - ours.decoded.boxes).abs().max() < 2.0
    cosine = torch.nn.functional.cosine_similarity(theirs.embedding, ours.embedding, dim=1)
    assert cosine.min() > 0.99


def test_half_with_the_onnx_backend_needs_a_gpu_provider() -> None:
    with pytest.raises(InputError, match="--half with the onnx backend needs a GPU execution provider"):
        build_detector(
            "omc_n",
            DetectorConfig(img_size=SIZE),
            runtime=RuntimeConfig(backend="onnx", device="cpu", half=True),
        )


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_weights(create_model("omc_n").eval(), tmp_path / "omc.safetensors", {"arch": "omc_n"})


def cached_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.onnx"))


def test_cache_folder_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CSTRACK_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("CSTRACK_CACHE")
    assert cache.cache_dir() == tmp_path / "xdg" / "cstrack"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "cstrack"


def test_second_start_loads_the_cached_graphs(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "cache"
    monkeypatch.setenv("CSTRACK_CACHE", str(root))
    frame = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    first = build_detector(
        weights, DetectorConfig(img_size=SIZE, conf=0.01), runtime=RuntimeConfig(backend="onnx", device="cpu")
    )
    files = cached_files(root)
    assert [f.name for f in files] == ["model.onnx", "model.recheck.onnx"]
    assert files[0].parent.name.startswith("omc-320x192-")
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(cache, "export_onnx", no_export)
    second = build_detector(
        weights, DetectorConfig(img_size=SIZE, conf=0.01), runtime=RuntimeConfig(backend="onnx", device="cpu")
    )
    expected, got = first(frame), second(frame)
    np.testing.assert_array_equal(got.boxes_xyxy, expected.boxes_xyxy)
    np.testing.assert_array_equal(got.embeddings, expected.embeddings)

    with pytest.raises(AssertionError, match="exported again"):  # another size is another entry
        build_detector(
            weights, DetectorConfig(img_size=(256, 192)), runtime=RuntimeConfig(backend="onnx", device="cpu")
        )
    save_weights(create_model("omc_n").eval(), weights, {"arch": "omc_n"})  # new weights, same name
    with pytest.raises(AssertionError, match="exported again"):
        build_detector(
            weights, DetectorConfig(img_size=SIZE), runtime=RuntimeConfig(backend="onnx", device="cpu")
        )

    monkeypatch.setattr(cache, "export_onnx", export_onnx)
    build_detector(
        weights, DetectorConfig(img_size=SIZE), runtime=RuntimeConfig(backend="onnx", device="cpu")
    )
    entry = [f for f in cached_files(root) if f.name == "model.onnx" and f != files[0]][0]
    entry.write_bytes(b"damaged")
    with caplog.at_level(logging.WARNING, logger="cstrack"):
        again = build_detector(
            weights, DetectorConfig(img_size=SIZE), runtime=RuntimeConfig(backend="onnx", device="cpu")
        )
    assert "re-exporting the cached ONNX graphs" in caplog.text
    assert isinstance(again.backend, OnnxBackend)
    onnx.checker.check_model(str(entry))  # written anew


def test_an_unwritable_cache_is_only_a_warning(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("CSTRACK_CACHE", str(blocker))
    with caplog.at_level(logging.WARNING, logger="cstrack"):
        detector = build_detector(
            weights, DetectorConfig(img_size=SIZE), runtime=RuntimeConfig(backend="onnx", device="cpu")
        )
    assert "ONNX graphs not cached" in caplog.text
    assert isinstance(detector.backend, OnnxBackend) and detector.has_recheck


def test_a_dynamic_backend_serves_any_detector_size() -> None:
    backend = OnnxBackend.from_model(create_model("omc_n").eval(), SIZE)
    frame = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    for size in (SIZE, (256, 256), (512, 384)):
        result = Detector(backend, DetectorConfig(conf=0.0, img_size=size))(frame)
        assert len(result.scores) > 0

"""Backend choice: auto is ONNX Runtime on the CPU when it is installed, PyTorch otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

import cstrack.backends.choice as choice
import cstrack.backends.onnx as onnx_backend
from cstrack.backends import TorchBackend, build_detector, resolve_backend
from cstrack.backends.onnx import OnnxBackend
from cstrack.cli.main import main
from cstrack.config import DetectorConfig, RuntimeConfig
from cstrack.errors import InputError

pytestmark = pytest.mark.usefixtures("single_thread")


def test_auto_is_onnx_on_the_cpu_when_onnxruntime_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choice.onnx_runtime_installed()  # the test extra brings it
    auto = RuntimeConfig()
    assert resolve_backend(auto, "cpu") == "onnx"
    assert resolve_backend(auto, "cuda:0") == "torch"
    assert resolve_backend(RuntimeConfig(half=True), "cpu") == "torch"  # then "--half needs a CUDA device"
    assert resolve_backend(RuntimeConfig(providers="cuda"), "cuda") == "onnx"
    assert resolve_backend(RuntimeConfig(backend="torch"), "cpu") == "torch"
    assert resolve_backend(RuntimeConfig(backend="onnx"), "cuda") == "onnx"
    monkeypatch.setattr(choice.importlib.util, "find_spec", lambda name: None)
    assert not choice.onnx_runtime_installed()
    assert resolve_backend(auto, "cpu") == "torch"


def test_backend_errors() -> None:
    with pytest.raises(InputError, match=r"^backend: must be one of auto, torch, onnx, got 'tensorrt'$"):
        RuntimeConfig(backend="tensorrt")
    with pytest.raises(InputError, match="--providers chooses ONNX Runtime's execution providers"):
        RuntimeConfig(backend="torch", providers="cpu")
    with pytest.raises(InputError, match="--half needs a CUDA device"):
        build_detector("omc_n", runtime=RuntimeConfig(device="cpu", half=True))


def test_the_backend_and_providers_are_resolved_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"resolve_backend": 0, "select_providers": 0}
    real_resolve, real_select = choice.resolve_backend, onnx_backend.select_providers

    def counted(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(choice, "resolve_backend", counted("resolve_backend", real_resolve))
    monkeypatch.setattr(onnx_backend, "select_providers", counted("select_providers", real_select))
    build_detector("omc_n", DetectorConfig(img_size=(128, 96)), runtime=RuntimeConfig(device="cpu"))
    assert calls == {"resolve_backend": 1, "select_providers": 1}


def test_the_default_backend_on_the_cpu() -> None:
    size, cpu = DetectorConfig(img_size=(128, 96)), RuntimeConfig(device="cpu")
    assert isinstance(build_detector("omc_n", size, runtime=cpu).backend, OnnxBackend)
    torch_detector = build_detector("omc_n", size, runtime=RuntimeConfig(backend="torch", device="cpu"))
    assert isinstance(torch_detector.backend, TorchBackend)


def test_onnx_is_refused_in_one_line_without_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    import cstrack.optional

    def missing(module: str, extra: str, *, feature: str | None = None):
        raise InputError(
            None, f"{feature} needs onnxruntime, which is not installed: pip install 'cstrack[onnx]'"
        )

    monkeypatch.delitem(__import__("sys").modules, "cstrack.backends.onnx")
    monkeypatch.setattr(cstrack.optional, "require", missing)
    with pytest.raises(InputError, match=r"pip install 'cstrack\[onnx\]'"):
        build_detector(
            "omc_n", DetectorConfig(img_size=(128, 96)), runtime=RuntimeConfig(backend="onnx", device="cpu")
        )


@pytest.fixture
def frames(frame_folder) -> Path:
    return frame_folder(2)


@pytest.mark.parametrize(
    "options, message",
    [
        (
            ["--backend", "torch", "--providers", "cpu"],
            "--providers chooses ONNX Runtime's execution providers",
        ),
        (["--providers", "bogus"], "unknown ONNX Runtime execution provider 'bogus'"),
        (["--providers", "cuda"], "execution provider CUDAExecutionProvider is not available"),
    ],
)
def test_cli_provider_errors(capsys, frames: Path, tmp_path: Path, options: list[str], message: str) -> None:
    code = main(
        ["track", str(frames), "--model", "omc_n", *options, "--output", str(tmp_path / "o"), "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert len(err.splitlines()) == 1  # refused before the model is loaded


def test_cli_prints_the_providers_it_runs_on(capsys, frames: Path, tmp_path: Path) -> None:
    args = [
        "track",
        str(frames),
        "--model",
        "omc_n",
        "--img-size",
        "128",
        "96",
        "--output",
        str(tmp_path / "o"),
    ]
    assert main([*args, "--providers", "cpu", "--quiet"]) == 0
    assert "cstrack: ONNX Runtime execution providers: CPUExecutionProvider" in capsys.readouterr().err
    assert main([*args, "--backend", "torch", "--quiet"]) == 0
    assert "cstrack: PyTorch backend on cpu" in capsys.readouterr().err

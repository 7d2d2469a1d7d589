"""Choosing what runs the network: a model spec and a backend name become a ready `Detector`.

`TorchBackend` (`cstrack.backends.torch`) runs a network with PyTorch and `OnnxBackend`
(`cstrack.backends.onnx`, imported only when chosen) its ONNX graphs; which one a tracker uses,
on which device, is decided here.

The default, "auto", is ONNX Runtime on the CPU when onnxruntime is installed (the `onnx`
extra) and PyTorch otherwise (and on CUDA, and for --half): on the CPU, ONNX Runtime runs the
networks in 0.5-0.8x PyTorch's time (benchmarks/model_speed.py; docs/howto/export.md, "Backend
speed on the CPU"). The graphs of a weights file are exported once and cached
(`cstrack.export.cache`), so later starts are fast.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from torch import nn

from cstrack.backends.torch import TorchBackend
from cstrack.config import DEFAULT_IMG_SIZE, DetectorConfig, RecheckConfig, RuntimeConfig
from cstrack.errors import InputError
from cstrack.models.device import resolve_device
from cstrack.models.inference import Detector, DetectorBackend
from cstrack.models.network import TrackingNetwork
from cstrack.models.registry import model_from_spec

logger = logging.getLogger(__name__)


def onnx_runtime_installed() -> bool:
    """Whether the `onnx` extra (onnx and onnxruntime) is installed; nothing is imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def resolve_backend(runtime: RuntimeConfig, device: str) -> str:
    """The backend, torch or onnx, that `runtime.backend` stands for on `device` (resolved):
    "auto" is onnx on the CPU when onnxruntime is installed, and when execution providers are
    named; torch otherwise (CUDA devices, half precision, no onnxruntime)."""
    if runtime.backend != "auto":
        return runtime.backend
    if runtime.providers:
        return "onnx"
    if device != "cpu" or runtime.half or not onnx_runtime_installed():
        return "torch"
    return "onnx"


def onnx_providers(providers: Sequence[str] | None, half: bool = False) -> list[str]:
    """The execution providers the onnx backend will use (`select_providers`), refusing --half
    without a GPU one; InputError naming the extra when onnxruntime is not installed."""
    from cstrack.backends.onnx import GPU_PROVIDERS, select_providers  # InputError without the extra

    chosen = select_providers(providers)
    if half and not GPU_PROVIDERS & set(chosen):
        raise InputError(
            None,
            f"--half with the onnx backend needs a GPU execution provider (TensorRT or CUDA), not "
            f"{', '.join(chosen)}: float16 runs slower than float32 on ONNX Runtime's CPU provider",
        )
    return chosen


def build_backend(
    model: TrackingNetwork,
    backend: str,
    device: str,
    img_size: tuple[int, int],
    *,
    providers: Sequence[str] = (),
    weights: str | PathLike[str] | None = None,
    half: bool = False,
) -> DetectorBackend:
    """`model` run by PyTorch on `device`, or exported at `img_size` and run by ONNX Runtime on
    `providers`; `backend` and `providers` as `resolve_backend` and `onnx_providers` chose them
    (with `weights`, the file `model` was loaded from, the graphs come from the export cache;
    `half`: float16 graphs, which need a GPU provider)."""
    if backend == "torch":
        return TorchBackend(model, device)
    from cstrack.backends.onnx import OnnxBackend

    if weights is not None:
        return OnnxBackend.from_cache(model, Path(weights), img_size, providers=providers, half=half)
    return OnnxBackend.from_model(model, img_size, providers=providers, half=half)


def build_detector(
    model: str | PathLike[str] | nn.Module,
    config: DetectorConfig = DetectorConfig(),
    recheck: RecheckConfig = RecheckConfig(),
    runtime: RuntimeConfig = RuntimeConfig(),
    *,
    arch: str | None = None,
) -> Detector:
    """A `Detector` for a model name, weights file or module, BatchNorm fused, with the settings of
    `config` and `recheck`, run as `runtime` says: its device, backend (`resolve_backend`) and
    execution providers (`cstrack.backends.onnx.select_providers`) are resolved here, once, and
    a bad one fails before a model is loaded."""
    device = resolve_device(runtime.device)
    backend = resolve_backend(runtime, device)
    half = runtime.half
    if half and backend == "torch" and not device.startswith("cuda"):
        raise InputError(None, "--half needs a CUDA device")
    providers = onnx_providers(runtime.providers, half) if backend == "onnx" else []
    weights, class_names, trained_size = None, None, None
    if isinstance(model, (str, PathLike)):
        resolved = model_from_spec(model, arch)
        model, trained_size, weights = resolved.model, resolved.img_size, resolved.weights
        class_names = resolved.class_names
    if not isinstance(model, TrackingNetwork):
        raise InputError(
            None, f"a cstrack network (create_model's, any variant) is needed, not {type(model).__name__}"
        )
    network: Any = model.eval().fuse()
    if half and backend == "torch":
        network = network.half()
    # The size graphs are exported at (their recorded default; they take any size).
    size = config.img_size or trained_size or DEFAULT_IMG_SIZE
    if backend == "torch":
        logger.info("cstrack: PyTorch backend on %s", device)
    return Detector(
        build_backend(network, backend, device, size, providers=providers, weights=weights, half=half),
        config,
        recheck,
        class_names=class_names,
        source=weights,
    )

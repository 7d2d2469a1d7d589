"""Choosing what runs the network: a model spec and a backend name become a ready `Detector`.

The models package knows how to run a network (`TorchBackend`) and the export package how to
run its ONNX graph (`OnnxBackend`); which one a tracker uses, on which device, is decided here.

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

from cstrack.errors import InputError
from cstrack.models.device import resolve_device
from cstrack.models.inference import Detector, DetectorBackend, TorchBackend
from cstrack.models.network import TrackingNetwork
from cstrack.models.registry import DEFAULT_IMG_SIZE, resolve_model

BACKENDS = ("auto", "torch", "onnx")
DEFAULT_BACKEND = "auto"

logger = logging.getLogger(__name__)


def onnx_runtime_installed() -> bool:
    """Whether the `onnx` extra (onnx and onnxruntime) is installed; nothing is imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def resolve_backend(
    backend: str, device: str = "cpu", half: bool = False, providers: str | Sequence[str] | None = None
) -> str:
    """The backend, torch or onnx, that a name stands for: "auto" is onnx on the CPU when
    onnxruntime is installed, and when execution providers are named; torch otherwise (CUDA
    devices, --half, no onnxruntime)."""
    if backend not in BACKENDS:
        raise InputError(None, f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if providers and backend == "torch":
        raise InputError(None, "--providers chooses ONNX Runtime's execution providers: use --backend onnx")
    if backend != "auto":
        return backend
    if providers:
        return "onnx"
    if device != "cpu" or half or not onnx_runtime_installed():
        return "torch"
    return "onnx"


def load_model(spec: str | PathLike, arch: str | None = None) -> TrackingNetwork:
    """A model from a bundled name, a .safetensors file (arch from `arch` or its metadata) or a
    registry name (randomly initialised, with a warning): `cstrack.models.resolve_model`'s."""
    return resolve_model(spec, arch).model


def onnx_providers(providers: str | Sequence[str] | None, half: bool = False) -> list[str]:
    """The execution providers the onnx backend will use (`select_providers`), refusing --half
    without a GPU one; InputError naming the extra when onnxruntime is not installed."""
    from cstrack.export.onnx import GPU_PROVIDERS, select_providers  # InputError without the extra

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
    providers: str | Sequence[str] | None = None,
    weights: str | PathLike | None = None,
    half: bool = False,
) -> DetectorBackend:
    """`model` run by PyTorch on `device`, or exported at `img_size` and run by ONNX Runtime
    (`providers`: see `cstrack.export.onnx.select_providers`; with `weights`, the file `model`
    was loaded from, the graphs come from the export cache; `half`: float16 graphs, which need a
    GPU provider). `backend` "auto": see `resolve_backend`."""
    backend = resolve_backend(backend, device, half, providers)
    if backend == "torch":
        return TorchBackend(model, device)
    from cstrack.export.onnx import OnnxBackend

    chosen = onnx_providers(providers, half)
    if weights is not None:
        from cstrack.export.cache import cached_backend

        return cached_backend(model, Path(weights), img_size, providers=chosen, half=half)
    return OnnxBackend.from_model(model, img_size, providers=chosen, half=half)


def build_detector(
    model: str | PathLike | nn.Module,
    arch: str | None = None,
    img_size: tuple[int, int] | None = None,
    device: str = "auto",
    half: bool = False,
    backend: str = DEFAULT_BACKEND,
    conf: float = 0.5,
    providers: str | Sequence[str] | None = None,
    **detector_options: Any,
) -> Detector:
    """A `Detector` for a model name, weights file or module, BatchNorm fused; `detector_options`
    are more keyword arguments of `Detector` (`iou_threshold`, `recheck_threshold` ...).
    `backend`: auto (default), torch or onnx, see `resolve_backend`; `providers`: ONNX Runtime's
    execution providers (`cstrack.export.onnx.select_providers`)."""
    device = resolve_device(device)  # a bad device fails before a model is loaded
    backend = resolve_backend(backend, device, half, providers)
    if half and backend == "torch" and not device.startswith("cuda"):
        raise InputError(None, "--half needs a CUDA device")
    if backend == "onnx":
        providers = onnx_providers(providers, half)  # a bad name fails before a model is loaded
    weights, class_names, trained_size = None, None, None
    if isinstance(model, (str, PathLike)):
        resolved = resolve_model(model, arch)
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
    size = img_size or trained_size or DEFAULT_IMG_SIZE
    if backend == "torch":
        logger.info("cstrack: PyTorch backend on %s", device)
    return Detector(
        build_backend(network, backend, device, size, providers=providers, weights=weights, half=half),
        img_size=img_size,
        obj_threshold=conf,
        score_threshold=conf,
        class_names=class_names,
        source=weights,
        **detector_options,
    )

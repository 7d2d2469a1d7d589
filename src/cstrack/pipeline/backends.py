"""Choosing what runs the network: a model spec and a backend name become a ready `Detector`.

The models package knows how to run a network (`TorchBackend`) and the export package how to
run its ONNX graph (`OnnxBackend`); which one a tracker uses, on which device, is decided here.
"""

from __future__ import annotations

from os import PathLike
from typing import Any

from torch import nn

from cstrack.errors import InputError
from cstrack.models.device import resolve_device
from cstrack.models.inference import Detector, DetectorBackend, TorchBackend
from cstrack.models.network import OMC, CSTrack
from cstrack.models.registry import DEFAULT_IMG_SIZE, resolve_model

BACKENDS = ("torch", "onnx")


def load_model(spec: str | PathLike, arch: str | None = None) -> CSTrack | OMC:
    """A model from a bundled name, a .safetensors file (arch from `arch` or its metadata) or a
    registry name (randomly initialised, with a warning): `cstrack.models.resolve_model`'s."""
    return resolve_model(spec, arch).model


def build_backend(
    model: CSTrack | OMC, backend: str, device: str, img_size: tuple[int, int]
) -> DetectorBackend:
    """`model` run by PyTorch on `device`, or exported at `img_size` and run by ONNX Runtime."""
    if backend not in BACKENDS:
        raise InputError(None, f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return TorchBackend(model, device)
    from cstrack.export.onnx import OnnxBackend  # onnxruntime only when asked for

    return OnnxBackend.from_model(model, img_size)


def build_detector(
    model: str | PathLike | nn.Module,
    arch: str | None = None,
    img_size: tuple[int, int] | None = None,
    device: str = "auto",
    half: bool = False,
    backend: str = "torch",
    conf: float = 0.5,
) -> Detector:
    """A `Detector` for a model name, weights file or module, BatchNorm fused."""
    device = resolve_device(device)  # a bad device fails before a model is loaded
    if half and not device.startswith("cuda"):
        raise InputError(None, "--half needs a CUDA device")
    if isinstance(model, (str, PathLike)):
        resolved = resolve_model(model, arch)
        model, img_size = resolved.model, img_size or resolved.img_size
    if not isinstance(model, (CSTrack, OMC)):
        raise InputError(None, f"a CSTrack or OMC module is needed, not {type(model).__name__}")
    network: Any = model.eval().fuse()
    if half:
        network = network.half()
    size = img_size or DEFAULT_IMG_SIZE
    return Detector(
        build_backend(network, backend, device, size),
        img_size=size,
        obj_threshold=conf,
        score_threshold=conf,
    )

"""ONNX export of the CSTrack/OMC networks: the graphs that `cstrack.backends.onnx.OnnxBackend` runs.

Two graphs, so that the re-check network runs only when there are tracklets:
  base     images (1, 3, H, W) RGB / 255
           -> boxes (1, N, 4) xyxy input pixels, decoded for every anchor, not clipped (pre-NMS)
              obj (1, N), cls (1, N, nc) probabilities (score = obj * max cls, as `Decoded`)
              embedding (1, E, H/8, W/8) raw ID embedding map
              p3, p4, p5 detection features (only for a model with the re-check network)
  recheck  p3, p4, p5, embedding (from base), templates (K, E) with a dynamic K (0 allowed)
           -> heat (1, 1, H/8, W/8) M_p, boxes (1, H/8, W/8, 4) xyxy input pixels
Thresholds, NMS, clipping and embedding look-ups stay in Python (`Detector`), shared with the
torch backend, so both give the same DetectionResult. The graphs are traced from a copy of the
model with BatchNorm folded. By default H and W are dynamic axes (any multiples of 32): the box decode's
cell grids and REN's adaptive average pool (exported as two averaging matmuls, the same bins and
means up to float rounding) are computed from the feature shapes inside the graph; `dynamic=False`
fixes them at the export size. The metadata `cstrack.img_size` is the export (trained) size, the
default input size of a dynamic graph. `half=True` traces a float16 copy (inputs and outputs
float16), for GPU execution providers: ONNX Runtime's CPU provider runs it, but slower than float32.
The TorchScript-based exporter is used (`dynamo=False`): the dynamo exporter needs onnxscript.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import torch
from torch import nn

from cstrack import __version__
from cstrack.atomic import atomic_write_bytes
from cstrack.config import check_input_size
from cstrack.errors import InputError
from cstrack.models.network import OMC, CSTrackOutput, TrackingNetwork
from cstrack.models.recheck import RECHECK_STRIDE
from cstrack.optional import require

# The `onnx` extra. Without it, importing this module (cstrack export, --backend onnx) fails with
# one line that says what to install.
onnx = require("onnx", "onnx", feature="ONNX support (cstrack export, cstrack track --backend onnx)")

DEFAULT_OPSET = 17
# The opsets the graphs are exported and checked at: 11 is the oldest tested, 20 the newest of
# PyTorch's TorchScript exporter (others fail inside the exporter with a traceback).
OPSETS = range(11, 21)
IMAGES = "images"
BASE_OUTPUTS = ("boxes", "obj", "cls", "embedding")
FEATURES = ("p3", "p4", "p5")
TEMPLATES = "templates"
RECHECK_OUTPUTS = ("heat", "boxes")
RECHECK_SUFFIX = ".recheck.onnx"
# Dynamic axes: the input's height and width, and what follows them (levels at strides 8, 16, 32).
_LEVEL_AXES = {f"p{3 + i}": {2: f"height_{s}", 3: f"width_{s}"} for i, s in enumerate((8, 16, 32))}
_EMBEDDING_AXES = {2: f"height_{RECHECK_STRIDE}", 3: f"width_{RECHECK_STRIDE}"}
BASE_AXES = {
    IMAGES: {2: "height", 3: "width"},
    "boxes": {1: "candidates"},
    "obj": {1: "candidates"},
    "cls": {1: "candidates"},
    "embedding": _EMBEDDING_AXES,
    **_LEVEL_AXES,
}
RECHECK_AXES = {
    **_LEVEL_AXES,
    "embedding": _EMBEDDING_AXES,
    TEMPLATES: {0: "K"},
    "heat": _EMBEDDING_AXES,
    "boxes": {1: _EMBEDDING_AXES[2], 2: _EMBEDDING_AXES[3]},
}


def _pool_matrix(size: int | torch.Tensor, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, size) averaging matrix of adaptive pooling: bin i spans floor(i*L/n) .. ceil((i+1)*L/n).

    Built with tensor operations from `size`, so that a trace with dynamic axes computes it from
    the feature's shape inside the graph instead of storing one input size's matrix.
    """
    index = torch.arange(bins, device=like.device)
    cells = torch.arange(size, device=like.device)
    start = torch.div(index * size, bins, rounding_mode="floor")
    end = torch.div((index + 1) * size + (bins - 1), bins, rounding_mode="floor")
    inside = (cells[None] >= start[:, None]) & (cells[None] < end[:, None])
    return inside.to(like.dtype) / (end - start).to(like.dtype)[:, None]


class MatmulAdaptiveAvgPool(nn.Module):
    """nn.AdaptiveAvgPool2d as A_h @ x @ A_w^T: the same bins, exportable for any input size."""

    def __init__(self, output_size: int | tuple[int, int]):
        super().__init__()
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        rows = _pool_matrix(h, self.output_size[0], x)
        cols = _pool_matrix(w, self.output_size[1], x)
        return rows @ x @ cols.T


def inference_copy(model: TrackingNetwork, half: bool = False) -> TrackingNetwork:
    """A CPU eval copy (float32, float16 with `half`) with BatchNorm folded and exportable pools;
    `model` is untouched."""
    prepared = copy.deepcopy(model).cpu().float().eval().fuse()
    for module in list(prepared.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(module, name, MatmulAdaptiveAvgPool(child.output_size))
    return prepared.half() if half else prepared


class BaseGraph(nn.Module):
    """images -> decoded boxes, obj, cls, embedding (+ the detection features the re-check reads)."""

    def __init__(self, model: TrackingNetwork, features: bool):
        super().__init__()
        self.model = model
        self.features = features

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.model(images)
        decoded = self.model.decode(output, clip=False)
        features = tuple(output.features) if self.features else ()
        return decoded.boxes, decoded.obj, decoded.cls, output.embedding, *features


class ReCheckGraph(nn.Module):
    """(p3, p4, p5, embedding, templates) -> heat M_p and decoded re-check boxes."""

    def __init__(self, model: OMC):
        super().__init__()
        self.model = model

    def forward(
        self,
        p3: torch.Tensor,
        p4: torch.Tensor,
        p5: torch.Tensor,
        embedding: torch.Tensor,
        templates: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        recheck = self.model.recheck(CSTrackOutput([], embedding, None, (p3, p4, p5)), templates)
        return recheck.heat, self.model.decode_recheck(recheck.box)


@dataclass(frozen=True)
class OnnxModels:
    """The exported graphs (checked ModelProtos) and what a backend needs to post-process them."""

    base: onnx.ModelProto
    recheck: onnx.ModelProto | None

    def save(self, path: str | PathLike) -> list[Path]:
        """Write base to `path` and the re-check graph beside it as `<stem>.recheck.onnx`, atomically."""
        path = Path(path)
        written = [path]
        atomic_write_bytes(path, self.base.SerializeToString())
        if self.recheck is not None:
            written.append(recheck_path(path))
            atomic_write_bytes(written[-1], self.recheck.SerializeToString())
        return written


def recheck_path(base_path: str | PathLike) -> Path:
    path = Path(base_path)
    return path.with_name(path.name.removesuffix(".onnx") + RECHECK_SUFFIX)


def _trace(
    module: nn.Module,
    args: tuple,
    inputs: Sequence[str],
    outputs: Sequence[str],
    opset: int,
    dynamic_axes: dict | None = None,
) -> onnx.ModelProto:
    buffer = io.BytesIO()
    # The exporter warns about tracing (Python numbers taken from shapes; the size-dependent parts
    # are tensor operations on the traced shapes, checked at two sizes in tests/export), its own
    # deprecation and InstanceNorm's training flag; none applies to an eval-mode trace.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buffer,
            input_names=list(inputs),
            output_names=list(outputs),
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def _annotate(
    proto: onnx.ModelProto,
    graph: str,
    model: TrackingNetwork,
    img_size: tuple[int, int],
    dynamic: bool,
    half: bool,
) -> None:
    """Metadata a backend needs to post-process without the torch model."""
    detect = model.detect
    fields = {
        "cstrack.graph": graph,
        "cstrack.img_size": f"{img_size[0]},{img_size[1]}",
        "cstrack.dynamic_size": "true" if dynamic else "false",
        "cstrack.dtype": "float16" if half else "float32",
        "cstrack.strides": ",".join(str(s) for s in model.strides),
        "cstrack.anchors_per_cell": str(detect.na),
        "cstrack.classes": str(detect.nc),
        "cstrack.embedding_dim": str(model.emb_dim),
    }
    onnx.helper.set_model_props(proto, fields)
    proto.producer_name, proto.producer_version = "cstrack", __version__


def export_onnx(
    model: TrackingNetwork,
    img_size: tuple[int, int],
    recheck: bool | None = None,
    opset: int = DEFAULT_OPSET,
    *,
    dynamic: bool = True,
    half: bool = False,
) -> OnnxModels:
    """Trace the base graph (and the re-check graph: by default when the model has it) and check them.

    `img_size` (W, H) is the size traced at, recorded as the graphs' default; with `dynamic`
    (the default) they take any multiples of 32, else only this size. `half`: float16 graphs.
    """
    width, height = check_input_size(img_size)
    if opset not in OPSETS:
        raise InputError(None, f"opset {opset} is not supported: choose {OPSETS.start} to {OPSETS.stop - 1}")
    if recheck and not model.has_recheck:
        raise InputError(None, "the model has no re-check network to export")
    recheck = model.has_recheck if recheck is None else recheck
    prepared = inference_copy(model, half)
    dtype = torch.float16 if half else torch.float32
    images = torch.zeros(1, 3, height, width, dtype=dtype)
    outputs = BASE_OUTPUTS + (FEATURES if recheck else ())
    axes = {name: BASE_AXES[name] for name in (IMAGES, *outputs)} if dynamic else None
    base = _trace(BaseGraph(prepared, recheck), (images,), [IMAGES], outputs, opset, axes)
    _annotate(base, "base", prepared, (width, height), dynamic, half)
    onnx.checker.check_model(base, full_check=True)
    second = None
    if recheck:
        # Placeholders of the right shapes: the trace records operations, not these values.
        features = [
            torch.randn(1, c, height // s, width // s, dtype=dtype)
            for c, s in zip(model.cfg.level_channels, model.strides)
        ]
        embedding = torch.randn(
            1, prepared.emb_dim, height // RECHECK_STRIDE, width // RECHECK_STRIDE, dtype=dtype
        )
        args = (*features, embedding, torch.randn(2, prepared.emb_dim, dtype=dtype))
        inputs = [*FEATURES, "embedding", TEMPLATES]
        axes = RECHECK_AXES if dynamic else {TEMPLATES: RECHECK_AXES[TEMPLATES]}
        second = _trace(ReCheckGraph(prepared), args, inputs, RECHECK_OUTPUTS, opset, axes)
        _annotate(second, "recheck", prepared, (width, height), dynamic, half)
        onnx.checker.check_model(second, full_check=True)
    return OnnxModels(base, second)

"""ONNX export of the CSTrack/OMC networks and an ONNX Runtime backend for `Detector`.

Two graphs, so that the re-check network runs only when there are tracklets:
  base     images (1, 3, H, W) RGB / 255
           -> boxes (1, N, 4) xyxy input pixels, decoded for every anchor, not clipped (pre-NMS)
              obj (1, N), cls (1, N, nc) probabilities (score = obj * max cls, as `Decoded`)
              embedding (1, E, H/8, W/8) raw ID embedding map
              p3, p4, p5 detection features (only for a model with the re-check network)
  recheck  p3, p4, p5, embedding (from base), templates (K, E) with a dynamic K (0 allowed)
           -> heat (1, 1, H/8, W/8) M_p, boxes (1, H/8, W/8, 4) xyxy input pixels
Thresholds, NMS, clipping and embedding look-ups stay in Python, shared with the torch backend,
so both give the same DetectionResult. The graphs are traced from a copy of the model with
BatchNorm folded, at a fixed input size; REN's adaptive average pool, which the ONNX exporter
only supports when the output divides the input, is exported as two averaging matmuls (the same
bins and means, up to float rounding).
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

import numpy as np
import torch
from torch import nn

from cstrack import __version__
from cstrack.atomic import atomic_write_bytes
from cstrack.errors import InputError
from cstrack.models.detect import Decoded, anchor_layout
from cstrack.models.inference import NetworkOutput, TorchBackend, check_input_size
from cstrack.models.network import OMC, CSTrack, CSTrackOutput
from cstrack.models.recheck import RECHECK_STRIDE
from cstrack.optional import require

# The `onnx` extra. Without it, importing this module (cstrack export, --backend onnx) fails with
# one line that says what to install.
_FEATURE = "ONNX support (cstrack export, cstrack track --backend onnx)"
onnx = require("onnx", "onnx", feature=_FEATURE)
ort = require("onnxruntime", "onnx", feature=_FEATURE)
_ort_state = require("onnxruntime.capi.onnxruntime_pybind11_state", "onnx", feature=_FEATURE)
Fail, InvalidGraph, InvalidProtobuf = _ort_state.Fail, _ort_state.InvalidGraph, _ort_state.InvalidProtobuf

DEFAULT_OPSET = 17
IMAGES = "images"
BASE_OUTPUTS = ("boxes", "obj", "cls", "embedding")
FEATURES = ("p3", "p4", "p5")
TEMPLATES = "templates"
RECHECK_OUTPUTS = ("heat", "boxes")
RECHECK_SUFFIX = ".recheck.onnx"


def _pool_matrix(size: int, bins: int) -> torch.Tensor:
    """(bins, size) averaging matrix of adaptive pooling: bin i spans floor(i*L/n) .. ceil((i+1)*L/n)."""
    matrix = torch.zeros(bins, size)
    for i in range(bins):
        start, end = (i * size) // bins, -((-(i + 1) * size) // bins)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


class MatmulAdaptiveAvgPool(nn.Module):
    """nn.AdaptiveAvgPool2d as A_h @ x @ A_w^T: the same bins, exportable for any input size."""

    def __init__(self, output_size: int | tuple[int, int]):
        super().__init__()
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = (int(v) for v in x.shape[-2:])
        rows = _pool_matrix(h, self.output_size[0]).to(x)
        cols = _pool_matrix(w, self.output_size[1]).to(x)
        return rows @ x @ cols.T


def inference_copy(model: CSTrack | OMC) -> CSTrack | OMC:
    """A CPU float32 eval copy with BatchNorm folded and exportable pools; `model` is untouched."""
    prepared = copy.deepcopy(model).cpu().float().eval().fuse()
    for module in list(prepared.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(module, name, MatmulAdaptiveAvgPool(child.output_size))
    return prepared


class BaseGraph(nn.Module):
    """images -> decoded boxes, obj, cls, embedding (+ the detection features the re-check reads)."""

    def __init__(self, model: CSTrack | OMC, features: bool):
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
    # The exporter warns about tracing (shapes taken as constants, by design at a fixed input size),
    # its own deprecation and InstanceNorm's training flag; none applies to an eval-mode trace.
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


def _annotate(proto: onnx.ModelProto, graph: str, model: CSTrack | OMC, img_size: tuple[int, int]) -> None:
    """Metadata a backend needs to post-process without the torch model."""
    detect = model.detect
    fields = {
        "cstrack.graph": graph,
        "cstrack.img_size": f"{img_size[0]},{img_size[1]}",
        "cstrack.strides": ",".join(str(s) for s in model.strides),
        "cstrack.anchors_per_cell": str(detect.na),
        "cstrack.classes": str(detect.nc),
        "cstrack.embedding_dim": str(model.emb_dim),
    }
    onnx.helper.set_model_props(proto, fields)
    proto.producer_name, proto.producer_version = "cstrack", __version__


def export_onnx(
    model: CSTrack | OMC, img_size: tuple[int, int], recheck: bool | None = None, opset: int = DEFAULT_OPSET
) -> OnnxModels:
    """Trace the base graph (and the re-check graph: by default when the model has it) and check them."""
    width, height = check_input_size(img_size)
    if recheck and not model.has_recheck:
        raise InputError(None, "the model has no re-check network to export")
    recheck = model.has_recheck if recheck is None else recheck
    prepared = inference_copy(model)
    images = torch.zeros(1, 3, height, width)
    outputs = BASE_OUTPUTS + (FEATURES if recheck else ())
    base = _trace(BaseGraph(prepared, recheck), (images,), [IMAGES], outputs, opset)
    _annotate(base, "base", prepared, (width, height))
    onnx.checker.check_model(base, full_check=True)
    second = None
    if recheck:
        # Placeholders of the right shapes: the trace records operations, not these values.
        features = [
            torch.randn(1, c, height // s, width // s)
            for c, s in zip(model.cfg.level_channels, model.strides)
        ]
        embedding = torch.randn(1, prepared.emb_dim, height // RECHECK_STRIDE, width // RECHECK_STRIDE)
        args = (*features, embedding, torch.randn(2, prepared.emb_dim))
        second = _trace(
            ReCheckGraph(prepared),
            args,
            [*FEATURES, "embedding", TEMPLATES],
            RECHECK_OUTPUTS,
            opset,
            dynamic_axes={TEMPLATES: {0: "K"}},
        )
        _annotate(second, "recheck", prepared, (width, height))
        onnx.checker.check_model(second, full_check=True)
    return OnnxModels(base, second)


def paired_outputs(
    model: CSTrack | OMC, models: OnnxModels, templates: int = 2, seed: int = 0
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each output of PyTorch (`model` as given, on the CPU) beside ONNX Runtime's, on one random input."""
    onnx_backend = OnnxBackend(models.base, models.recheck)
    torch_backend = TorchBackend(model, channels_last=True)  # a copy: `model` stays as it is
    generator = torch.Generator().manual_seed(seed)
    width, height = onnx_backend.img_size
    x = torch.rand(1, 3, height, width, generator=generator)
    with torch.inference_mode():
        ours, theirs = torch_backend.run(x), onnx_backend.run(x)
        pairs = {
            name: (getattr(ours.decoded, name), getattr(theirs.decoded, name))
            for name in ("boxes", "obj", "cls")
        }
        pairs["embedding"] = (ours.embedding, theirs.embedding)
        if onnx_backend.has_recheck:
            t = torch.randn(templates, model.emb_dim, generator=generator)
            recheck = zip(torch_backend.recheck(ours, t), onnx_backend.recheck(theirs, t))
            pairs.update(zip(("heat", "recheck_boxes"), recheck))
    return pairs


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """All graph optimisations, sequential execution, `threads` intra-op threads (default: torch's)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return options


def _session(source: onnx.ModelProto | str | PathLike, options: ort.SessionOptions) -> ort.InferenceSession:
    if isinstance(source, onnx.ModelProto):
        return ort.InferenceSession(source.SerializeToString(), options, providers=["CPUExecutionProvider"])
    path = Path(source)
    if not path.is_file():
        raise InputError(path, "ONNX file not found")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except (Fail, InvalidGraph, InvalidProtobuf) as exc:
        raise InputError(path, f"not a loadable ONNX model: {exc}") from exc


class OnnxBackend:
    """Runs the exported graphs with ONNX Runtime (CPU) behind the interface of `TorchBackend`."""

    def __init__(
        self,
        base: onnx.ModelProto | str | PathLike,
        recheck: onnx.ModelProto | str | PathLike | None = None,
        threads: int | None = None,
    ):
        options = session_options(threads)
        self.base = _session(base, options)
        self.recheck_session = None if recheck is None else _session(recheck, options)
        meta = self.base.get_modelmeta().custom_metadata_map
        try:
            width, height = (int(v) for v in meta["cstrack.img_size"].split(","))
            self.strides = tuple(int(v) for v in meta["cstrack.strides"].split(","))
            self.nc = int(meta["cstrack.classes"])
            na = int(meta["cstrack.anchors_per_cell"])
        except (KeyError, ValueError) as exc:
            raise InputError(
                None if isinstance(base, onnx.ModelProto) else base,
                f"not a cstrack base graph (metadata {exc})",
            ) from exc
        self.img_size = (width, height)
        self.stride = self.strides[0]
        self.level, self.anchor = anchor_layout([(height // s, width // s) for s in self.strides], na)
        self._outputs = [o.name for o in self.base.get_outputs()]

    @classmethod
    def from_model(
        cls, model: CSTrack | OMC, img_size: tuple[int, int], threads: int | None = None
    ) -> OnnxBackend:
        """Export `model` in memory (both graphs when it has the re-check network) and load it."""
        models = export_onnx(model, img_size)
        return cls(models.base, models.recheck, threads)

    @classmethod
    def from_files(cls, base_path: str | PathLike, threads: int | None = None) -> OnnxBackend:
        """Load `cstrack export` output; the re-check graph is picked up beside it when present."""
        second = recheck_path(base_path)
        return cls(base_path, second if second.is_file() else None, threads)

    @property
    def has_recheck(self) -> bool:
        return self.recheck_session is not None

    def run(self, x: torch.Tensor) -> NetworkOutput:
        values = dict(zip(self._outputs, self.base.run(None, {IMAGES: x.cpu().numpy()})))
        boxes, obj, cls, embedding = (torch.from_numpy(values[name]) for name in BASE_OUTPUTS)
        decoded = Decoded(boxes, obj, cls, self.level, self.anchor)
        features = {name: values[name] for name in (*FEATURES, "embedding") if name in values}
        return NetworkOutput(decoded, embedding, features)

    def recheck(self, output: NetworkOutput, templates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.recheck_session is None:
            raise ValueError("this ONNX backend has no re-check graph")
        feeds = dict(output.features)
        feeds[TEMPLATES] = np.ascontiguousarray(templates.cpu().numpy(), dtype=np.float32)
        heat, boxes = self.recheck_session.run(None, feeds)
        return torch.from_numpy(heat)[0, 0], torch.from_numpy(boxes)[0].reshape(-1, 4)

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
BatchNorm folded. By default H and W are dynamic axes (any multiples of 32): the box decode's
cell grids and REN's adaptive average pool (exported as two averaging matmuls, the same bins and
means up to float rounding) are computed from the feature shapes inside the graph; `dynamic=False`
fixes them at the export size. The metadata `cstrack.img_size` is the export (trained) size, the
default input size of a dynamic graph. `half=True` traces a float16 copy (inputs and outputs
float16), for GPU execution providers: ONNX Runtime's CPU provider runs it, but slower than float32.
The TorchScript-based exporter is used (`dynamo=False`): the dynamo exporter needs onnxscript.

`OnnxBackend` picks ONNX Runtime's execution providers by availability (TensorRT, CUDA,
OpenVINO, then the CPU) unless told which (`select_providers`), and logs the choice.
"""

from __future__ import annotations

import copy
import io
import logging
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
from cstrack.models.network import OMC, CSTrackOutput, TrackingNetwork
from cstrack.models.recheck import RECHECK_STRIDE
from cstrack.optional import require

# The `onnx` extra. Without it, importing this module (cstrack export, --backend onnx) fails with
# one line that says what to install.
_FEATURE = "ONNX support (cstrack export, cstrack track --backend onnx)"
onnx = require("onnx", "onnx", feature=_FEATURE)
ort = require("onnxruntime", "onnx", feature=_FEATURE)
_ort_state = require("onnxruntime.capi.onnxruntime_pybind11_state", "onnx", feature=_FEATURE)
Fail, InvalidGraph, InvalidProtobuf = _ort_state.Fail, _ort_state.InvalidGraph, _ort_state.InvalidProtobuf

logger = logging.getLogger(__name__)

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

# Execution providers, in the order `select_providers` prefers them, and the short names that
# --providers accepts for them (full ONNX Runtime names are accepted too).
PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
PREFERRED_PROVIDERS = tuple(PROVIDER_NAMES.values())
GPU_PROVIDERS = frozenset({"TensorrtExecutionProvider", "CUDAExecutionProvider"})
CPU_PROVIDER = "CPUExecutionProvider"


def select_providers(requested: str | Sequence[str] | None = None) -> list[str]:
    """ONNX Runtime execution providers to run with, most preferred first.

    None (or empty): those of TensorRT, CUDA, OpenVINO that this onnxruntime has, in that order,
    then the CPU. Otherwise a comma-separated string or a sequence of names, short (tensorrt,
    cuda, openvino, cpu; any case) or ONNX Runtime's own (CUDAExecutionProvider); a name that is
    unknown or that this installation lacks is an InputError. ONNX Runtime runs what the chosen
    providers cannot on its CPU provider.
    """
    available = list(ort.get_available_providers())
    if not requested:
        return [name for name in PREFERRED_PROVIDERS if name in available] or [CPU_PROVIDER]
    items = requested.split(",") if isinstance(requested, str) else list(requested)
    chosen: list[str] = []
    for item in (str(item).strip() for item in items):
        name = PROVIDER_NAMES.get(item.lower(), item)
        if not item or (name not in PREFERRED_PROVIDERS and name not in available):
            known = ", ".join([*PROVIDER_NAMES, *(a for a in available if a not in PREFERRED_PROVIDERS)])
            raise InputError(None, f"unknown ONNX Runtime execution provider {item!r}; choose from {known}")
        if name not in available:
            raise InputError(
                None,
                f"execution provider {name} is not available in this onnxruntime "
                f"(available: {', '.join(available)})",
            )
        if name not in chosen:
            chosen.append(name)
    return chosen


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


def paired_outputs(
    model: TrackingNetwork,
    models: OnnxModels,
    templates: int = 2,
    seed: int = 0,
    img_size: tuple[int, int] | None = None,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each output of PyTorch (`model` as given, on the CPU) beside ONNX Runtime's, on one random
    input of `img_size` (W, H; default: the export size; another one needs dynamic graphs)."""
    onnx_backend = OnnxBackend(models.base, models.recheck, providers=[CPU_PROVIDER])
    torch_backend = TorchBackend(model, channels_last=True)  # a copy: `model` stays as it is
    generator = torch.Generator().manual_seed(seed)
    width, height = check_input_size(img_size or onnx_backend.img_size)
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
    """All graph optimisations, sequential execution, `threads` intra-op threads (default: torch's).

    The intra-op threads do not spin-wait between runs: a backend holds two sessions (base and
    re-check), each with its own threads, and PyTorch's between them (NMS, look-ups); spinning
    threads of one session took the cores from the next, which made the re-check graph 2x slower
    on 2 cores (benchmarks/model_speed.py).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _session(
    source: onnx.ModelProto | str | PathLike, options: ort.SessionOptions, providers: Sequence[str]
) -> ort.InferenceSession:
    if isinstance(source, onnx.ModelProto):
        return ort.InferenceSession(source.SerializeToString(), options, providers=list(providers))
    path = Path(source)
    if not path.is_file():
        raise InputError(path, "ONNX file not found")
    try:
        return ort.InferenceSession(str(path), options, providers=list(providers))
    except (Fail, InvalidGraph, InvalidProtobuf) as exc:
        raise InputError(path, f"not a loadable ONNX model: {exc}") from exc


_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def _input_type(session: ort.InferenceSession, name: str) -> type[np.floating]:
    kind = next(i.type for i in session.get_inputs() if i.name == name)
    return _NUMPY_TYPES.get(kind, np.float32)


class OnnxBackend:
    """Runs the exported graphs with ONNX Runtime behind the interface of `TorchBackend`.

    `providers` as `select_providers` takes them (default: the best this onnxruntime has).
    `img_size` is the size the graphs were exported at; `dynamic` says whether they take any
    other multiples of 32 (then `Detector` accepts any input size). Float16 graphs are fed and
    read as float16 and give float32 results.
    """

    def __init__(
        self,
        base: onnx.ModelProto | str | PathLike,
        recheck: onnx.ModelProto | str | PathLike | None = None,
        threads: int | None = None,
        providers: str | Sequence[str] | None = None,
    ):
        options = session_options(threads)
        chosen = select_providers(providers)
        self.base = _session(base, options, chosen)
        self.recheck_session = None if recheck is None else _session(recheck, options, chosen)
        self._templates_dtype = (
            np.float32 if self.recheck_session is None else _input_type(self.recheck_session, TEMPLATES)
        )
        meta = self.base.get_modelmeta().custom_metadata_map
        try:
            width, height = (int(v) for v in meta["cstrack.img_size"].split(","))
            self.strides = tuple(int(v) for v in meta["cstrack.strides"].split(","))
            self.nc = int(meta["cstrack.classes"])
            self.na = int(meta["cstrack.anchors_per_cell"])
        except (KeyError, ValueError) as exc:
            raise InputError(
                None if isinstance(base, onnx.ModelProto) else base,
                f"not a cstrack base graph (metadata {exc})",
            ) from exc
        self.img_size = (width, height)
        self.stride = self.strides[0]
        shape = next(i.shape for i in self.base.get_inputs() if i.name == IMAGES)
        self.dynamic = not all(isinstance(d, int) for d in shape[2:])  # named (or unknown) H and W
        self.input_dtype = _input_type(self.base, IMAGES)
        self.providers = list(self.base.get_providers())
        self._layouts: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self._outputs = [o.name for o in self.base.get_outputs()]
        logger.info("cstrack: ONNX Runtime execution providers: %s", ", ".join(self.providers))
        if self.input_dtype == np.float16 and not GPU_PROVIDERS & set(self.providers):
            logger.warning(
                "cstrack: a float16 graph on %s: it runs, but slower than float32 there "
                "(float16 is for the TensorRT and CUDA providers)",
                self.providers[0],
            )

    @classmethod
    def from_model(
        cls,
        model: TrackingNetwork,
        img_size: tuple[int, int],
        threads: int | None = None,
        providers: str | Sequence[str] | None = None,
        *,
        dynamic: bool = True,
        half: bool = False,
    ) -> OnnxBackend:
        """Export `model` in memory (both graphs when it has the re-check network) and load it."""
        models = export_onnx(model, img_size, dynamic=dynamic, half=half)
        return cls(models.base, models.recheck, threads, providers)

    @classmethod
    def from_files(
        cls,
        base_path: str | PathLike,
        threads: int | None = None,
        providers: str | Sequence[str] | None = None,
    ) -> OnnxBackend:
        """Load `cstrack export` output; the re-check graph is picked up beside it when present."""
        second = recheck_path(base_path)
        return cls(base_path, second if second.is_file() else None, threads, providers)

    @property
    def has_recheck(self) -> bool:
        return self.recheck_session is not None

    def layout(self, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(level, anchor) of every decoded row for an input of `height` x `width` pixels."""
        key = (height, width)
        if key not in self._layouts:
            grids = [(height // s, width // s) for s in self.strides]
            self._layouts[key] = anchor_layout(grids, self.na)
        return self._layouts[key]

    def run(self, x: torch.Tensor) -> NetworkOutput:
        images = x.detach().cpu().numpy().astype(self.input_dtype, copy=False)
        values = dict(zip(self._outputs, self.base.run(None, {IMAGES: images})))
        boxes, obj, cls, embedding = (torch.from_numpy(values[name]).float() for name in BASE_OUTPUTS)
        decoded = Decoded(boxes, obj, cls, *self.layout(*images.shape[2:]))
        features = {name: values[name] for name in (*FEATURES, "embedding") if name in values}
        return NetworkOutput(decoded, embedding, features)

    def recheck(self, output: NetworkOutput, templates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.recheck_session is None:
            raise ValueError("this ONNX backend has no re-check graph")
        feeds = dict(output.features)
        feeds[TEMPLATES] = np.ascontiguousarray(templates.detach().cpu().numpy(), dtype=self._templates_dtype)
        heat, boxes = (torch.from_numpy(v).float() for v in self.recheck_session.run(None, feeds))
        return heat[0, 0], boxes[0].reshape(-1, 4)

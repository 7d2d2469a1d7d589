"""`OnnxBackend`: the graphs of `cstrack.export.onnx` run by ONNX Runtime behind `Detector`'s
backend interface, so that it gives the same DetectionResult as `TorchBackend`.

The graphs come from a model exported in memory (`from_model`), from the graph cache of a weights
file (`from_cache`, `cstrack.export.cache`) or from `cstrack export` files (`from_files`).
`select_providers` chooses ONNX Runtime's execution providers, by availability (TensorRT, CUDA,
OpenVINO, then the CPU) unless told which; `OnnxBackend` runs on the chosen ones and logs them.
`paired_outputs` sets its outputs beside PyTorch's (`cstrack export --verify`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import torch

from cstrack.backends.torch import TorchBackend
from cstrack.config import check_input_size
from cstrack.errors import InputError
from cstrack.export.cache import cached_graphs
from cstrack.export.onnx import (
    BASE_OUTPUTS,
    FEATURES,
    IMAGES,
    TEMPLATES,
    OnnxModels,
    export_onnx,
    onnx,
    recheck_path,
)
from cstrack.models.detect import Decoded, anchor_layout
from cstrack.models.inference import NetworkOutput
from cstrack.models.network import TrackingNetwork
from cstrack.optional import require

# The `onnx` extra. Without it, importing this module (--backend onnx, cstrack export) fails with
# one line that says what to install.
_FEATURE = "ONNX Runtime (cstrack track --backend onnx, cstrack export)"
ort = require("onnxruntime", "onnx", feature=_FEATURE)
_ort_state = require("onnxruntime.capi.onnxruntime_pybind11_state", "onnx", feature=_FEATURE)
Fail, InvalidGraph, InvalidProtobuf = _ort_state.Fail, _ort_state.InvalidGraph, _ort_state.InvalidProtobuf

logger = logging.getLogger(__name__)

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

    `providers` are the execution providers `select_providers` chose (default: its choice, the
    best this onnxruntime has), used as given. `img_size` is the size the graphs were exported at; `dynamic` says whether they take any
    other multiples of 32 (then `Detector` accepts any input size). Float16 graphs are fed and
    read as float16 and give float32 results.
    """

    def __init__(
        self,
        base: onnx.ModelProto | str | PathLike,
        recheck: onnx.ModelProto | str | PathLike | None = None,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
    ):
        options = session_options(threads)
        chosen = list(providers) if providers else select_providers()
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
        providers: Sequence[str] | None = None,
        *,
        dynamic: bool = True,
        half: bool = False,
    ) -> OnnxBackend:
        """Export `model` in memory (both graphs when it has the re-check network) and load it."""
        models = export_onnx(model, img_size, dynamic=dynamic, half=half)
        return cls(models.base, models.recheck, threads, providers)

    @classmethod
    def from_cache(
        cls,
        model: TrackingNetwork,
        weights: str | PathLike[str],
        img_size: tuple[int, int],
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        *,
        half: bool = False,
    ) -> OnnxBackend:
        """`model`, whose weights came from the file `weights`, from the graph cache
        (`cstrack.export.cache.cached_graphs`): exported and stored on the first call, loaded from
        the files on later ones."""
        models = cached_graphs(model, weights, img_size, half)
        return cls(models.base, models.recheck, threads, providers)

    @classmethod
    def from_files(
        cls,
        base_path: str | PathLike,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
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

"""Training checkpoints as safetensors: tensors plus one JSON metadata string, never a pickle.

A checkpoint (`last.safetensors`, `best.safetensors` in the run folder) holds
  model.<key>        the model's state_dict          (load with `read_weights(path)`)
  ema.<key>          the EMA model's state_dict       (`read_weights(path, ema=True)`)
  classifier.<key>   the ID classifier of the training wrapper
  optimizer.<i>.<name>  the tensors of the optimizer's per-parameter state (momentum buffers)
  rng.torch, rng.cuda.<d>, rng.numpy   random states (uint8 / uint32 tensors)
and the metadata key `cstrack.training`, JSON with the epoch, best fitness, EMA update count,
the optimizer's param groups and non-tensor state, the schedule and the python / numpy RNG
scalars. Files are written to a temporary name beside the target and renamed into place.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from cstrack.errors import InputError

FORMAT = "cstrack-train-1"
META_KEY = "cstrack.training"
MODEL, EMA, CLASSIFIER, OPTIMIZER, RNG = "model.", "ema.", "classifier.", "optimizer.", "rng."


@dataclass
class TrainingState:
    """Everything a run needs to continue exactly where it stopped."""

    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None
    classifier: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, Any]
    meta: dict[str, Any]  # epoch, best_fitness, ema_updates, schedule, config ...


def capture_rng() -> dict[str, Any]:
    """The python, numpy, torch and (if any) CUDA random states."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + key: value.detach().cpu().contiguous() for key, value in state.items()}


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state_dict as tensors and a JSON-able rest."""
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        scalars[str(index)] = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{OPTIMIZER}{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[str(index)][name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(i): dict(values) for i, values in meta["scalars"].items()}
    for key, value in tensors.items():
        index, name = key[len(OPTIMIZER) :].split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def _split_rng(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    kind, keys, position, has_gauss, cached = state["numpy"]
    version, internal, gauss_next = state["python"]
    tensors = {f"{RNG}torch": state["torch"], f"{RNG}numpy": torch.from_numpy(keys.astype(np.int64))}
    for device, cuda_state in enumerate(state.get("cuda", [])):
        tensors[f"{RNG}cuda.{device}"] = cuda_state
    meta = {
        "python": [version, list(internal), gauss_next],
        "numpy": [kind, int(position), int(has_gauss), float(cached)],
    }
    return tensors, meta


def _join_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    version, internal, gauss_next = meta["python"]
    kind, position, has_gauss, cached = meta["numpy"]
    state: dict[str, Any] = {
        "python": (version, tuple(internal), gauss_next),
        "numpy": (kind, tensors[f"{RNG}numpy"].numpy().astype(np.uint32), position, has_gauss, cached),
        "torch": tensors[f"{RNG}torch"],
    }
    cuda = sorted((int(k.rsplit(".", 1)[1]), v) for k, v in tensors.items() if k.startswith(f"{RNG}cuda."))
    if cuda:
        state["cuda"] = [value for _, value in cuda]
    return state


def _unshared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copy tensors whose memory an earlier one uses (safetensors refuses shared storage)."""
    seen: set[int] = set()
    out = {}
    for key, value in tensors.items():
        pointer = value.untyped_storage().data_ptr()
        out[key] = value.clone() if pointer in seen and value.numel() else value
        seen.add(pointer)
    return out


def save_checkpoint(path: str | PathLike, state: TrainingState) -> Path:
    """Write `state` atomically to `path` (a .safetensors file)."""
    path = Path(path)
    optimizer_tensors, optimizer_meta = _split_optimizer(state.optimizer)
    rng_tensors, rng_meta = _split_rng(state.rng)
    tensors = {
        **_prefixed(MODEL, state.model),
        **(_prefixed(EMA, state.ema) if state.ema is not None else {}),
        **_prefixed(CLASSIFIER, state.classifier),
        **optimizer_tensors,
        **rng_tensors,
    }
    tensors = _unshared(tensors)
    meta = {**state.meta, "format": FORMAT, "optimizer": optimizer_meta, "rng": rng_meta}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(temporary), metadata={META_KEY: json.dumps(meta)})
        os.replace(temporary, path)
    except OSError as error:
        raise InputError(path, f"cannot write checkpoint: {error.strerror or error}") from error
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _open(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            names = handle.keys()  # safe_open is not iterable
            return {key: handle.get_tensor(key) for key in names}, handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(path, f"not a readable safetensors file: {error}") from error


def _section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}


def is_checkpoint(path: str | PathLike) -> bool:
    """Whether a safetensors file is a training checkpoint (rather than plain model weights)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return META_KEY in (handle.metadata() or {})
    except (SafetensorError, OSError, ValueError):
        return False


def load_checkpoint(path: str | PathLike) -> TrainingState:
    """Read a checkpoint written by `save_checkpoint`."""
    path = Path(path)
    tensors, metadata = _open(path)
    if META_KEY not in metadata:
        raise InputError(path, "not a cstrack training checkpoint (no training metadata)")
    meta = json.loads(metadata[META_KEY])
    if meta.get("format") != FORMAT:
        raise InputError(path, f"unsupported checkpoint format {meta.get('format')!r}, expected {FORMAT}")
    ema = _section(tensors, EMA)
    return TrainingState(
        model=_section(tensors, MODEL),
        ema=ema or None,
        classifier=_section(tensors, CLASSIFIER),
        optimizer=_join_optimizer(
            {key: value for key, value in tensors.items() if key.startswith(OPTIMIZER)}, meta.pop("optimizer")
        ),
        rng=_join_rng(tensors, meta.pop("rng")),
        meta=meta,
    )


def read_weights(path: str | PathLike, ema: bool = False) -> dict[str, torch.Tensor]:
    """The model weights of a training checkpoint (the EMA ones with ema=True), or of a plain file."""
    path = Path(path)
    tensors, metadata = _open(path)
    if META_KEY not in metadata:
        return tensors
    weights = _section(tensors, EMA if ema else MODEL)
    if not weights:
        raise InputError(
            path, "checkpoint holds no EMA weights" if ema else "checkpoint holds no model weights"
        )
    return weights

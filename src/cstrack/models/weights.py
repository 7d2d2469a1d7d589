"""Loading and saving weights: one checked entry point each, never unpickling.

Checkpoints are read with `safetensors.torch.load_file` only (pickled `.pt` files from the
release must first be converted to safetensors by `cstrack.converters.release`). Key layouts that
differ by a whole prefix are aligned: `module.` (DataParallel), and the release's stage-1
(`model.<i>`) vs stage-2 (`model.model.<i>`) layouts. Tensors are cast to the model's dtypes
(releases are FP16). Non-finite values are refused: NaN weights would load and silently detect
nothing. Saving is atomic, with string metadata (e.g. the architecture) in the header.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn

from cstrack.atomic import atomic_write_bytes, check_not_input
from cstrack.errors import InputError, printable

SHOWN = 5
KEY_CHARS = 120  # of a key quoted in an error


def _safetensors_path(source: str | PathLike) -> Path:
    path = Path(source)
    if not path.is_file():
        raise InputError(path, "weights file not found")
    if path.suffix != ".safetensors":
        raise InputError(path, "only .safetensors weights are loaded (convert pickled checkpoints first)")
    return path


def _read(source: str | PathLike | Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    if isinstance(source, Mapping):
        return dict(source), "<state_dict>"
    path = _safetensors_path(source)
    try:
        return load_file(path), str(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(path, f"not a readable safetensors file: {exc}") from exc


def weights_metadata(path: str | PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file's header (empty when it has none)."""
    path = _safetensors_path(path)
    try:
        with safe_open(path, "pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(path, f"not a readable safetensors file: {exc}") from exc


def check_weights_output(output: str | PathLike, source: str | PathLike) -> None:
    """Refuse, before a conversion reads anything, an output that `--model` could not load back
    (not `.safetensors`) or that is the file being converted."""
    if Path(output).suffix != ".safetensors":
        raise InputError(output, "the output must end in .safetensors (the only weights format loaded)")
    check_not_input(output, [source])


def save_weights(
    state: nn.Module | Mapping[str, torch.Tensor],
    path: str | PathLike,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a model's (or a state_dict's) tensors to a safetensors file atomically, with metadata."""
    tensors = state.state_dict() if isinstance(state, nn.Module) else state
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, dict(metadata or {}))
    atomic_write_bytes(path, data)
    return Path(path)


def _candidates(keys: list[str]) -> list[dict[str, str]]:
    """Renamings of the file's keys: as is, without a `module.` prefix, one `model.` less or more."""
    plain = {k: k.removeprefix("module.") for k in keys}
    return [
        plain,
        {k: v.removeprefix("model.") for k, v in plain.items() if v.startswith("model.model.")},
        {k: f"model.{v}" for k, v in plain.items()},
    ]


def align_keys(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The state with keys renamed by whichever prefix rule matches the most of the model's keys."""
    targets = set(model.state_dict())
    best = max(_candidates(list(state)), key=lambda m: len(targets.intersection(m.values())))
    return {best.get(k, k): v for k, v in state.items()}


def _listing(keys: list[str]) -> str:
    more = f" (+{len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
    return ", ".join(printable(k, KEY_CHARS) for k in keys[:SHOWN]) + more


def non_finite(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> list[str]:
    """Keys of `state` the model would hold as NaN or inf, in its own dtype (1e300 is inf in float32)."""
    return [
        k
        for k, v in state.items()
        if k in own and own[k].is_floating_point() and not bool(v.to(own[k].dtype).isfinite().all())
    ]


def load_weights(
    model: nn.Module, path_or_state_dict: str | PathLike | Mapping[str, torch.Tensor], strict: bool = True
) -> tuple[list[str], list[str]]:
    """Load a safetensors file or a state_dict into `model`, checking keys and shapes first.

    Shape mismatches and NaN or inf values always raise InputError (naming the file and the first
    keys); missing or unexpected keys raise only when `strict`. Returns the (missing, unexpected) keys.
    """
    state, where = _read(path_or_state_dict)
    state = align_keys(state, model)
    own = model.state_dict()
    shapes = [
        f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if shapes:
        raise InputError(where, f"{len(shapes)} tensors have the wrong shape: {_listing(shapes)}")
    # Integers cast to float load "fine" (int32 bit patterns as small whole numbers) and detect nothing.
    integers = [
        f"{k} {v.dtype} vs model {own[k].dtype}"
        for k, v in state.items()
        if k in own and own[k].is_floating_point() and not v.is_floating_point()
    ]
    if integers:
        raise InputError(
            where, f"{len(integers)} tensors are integers where the model has floats: {_listing(integers)}"
        )
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {_listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_listing(unexpected)}")
        raise InputError(where, "weights do not match the model: " + "; ".join(parts))
    bad = non_finite(state, own)
    if bad:
        raise InputError(
            where,
            f"non-finite values (NaN or inf) in {len(bad)} tensors, first {printable(bad[0], KEY_CHARS)}",
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return missing, unexpected

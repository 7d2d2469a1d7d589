"""Converting the authors' released checkpoints (pickled `.pt`) to safetensors without running them.

A released checkpoint is a `torch.save` file holding a dict: `model` (and for OMC `ema`) is a whole
pickled nn.Module in FP16 or a state_dict; beside it `epoch`, `best_fitness`, `training_results`,
`optimizer`, `updates`, `wandb_id`. `cstrack.converters.unpickler` reads it without importing the
released code or letting it call anything; this module picks the entry and writes safetensors.

Which entry is converted: `ema` when present and valid, else `model` (entry="auto"). YOLOv5-style
training evaluates and ships the EMA weights, so they are the released model; the EMA is skipped
when it is None, when `updates` says it was never updated, or when its tensors do not fit the
architecture or are not finite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from cstrack import __version__
from cstrack.converters.unpickler import MESSAGE_CHARS, entry_state_dict, read_checkpoint
from cstrack.errors import InputError
from cstrack.models.mobilenet import imagenet_backbone_state
from cstrack.models.registry import count_parameters, model_config, model_from_config
from cstrack.models.weights import check_weights_output, load_weights, printable, save_weights

ENTRIES = ("auto", "ema", "model")


def _updates(checkpoint: Mapping) -> float | None:
    """The EMA's update count (`updates`): a number or a one-element tensor, else malformed."""
    value = checkpoint.get("updates")
    if value is None or isinstance(value, (int, float)):
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        return value.item()
    kind = (
        f"tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
    )
    raise ValueError(f"'updates' (the EMA's update count) is a {kind}, not a number")


def _candidates(checkpoint: Any, entry: str) -> tuple[list[tuple[str, Any]], list[str]]:
    """(name, entry) pairs to try in order, and why an EMA is passed over."""
    if not isinstance(checkpoint, Mapping):
        raise TypeError("the checkpoint is not a dict")
    if "model" not in checkpoint and "ema" not in checkpoint:
        return [("state_dict", checkpoint)], []
    if entry != "auto":
        if checkpoint.get(entry) is None:
            raise ValueError(f"the checkpoint has no {entry!r} entry")
        return [(entry, checkpoint[entry])], []
    if checkpoint.get("ema") is None:
        return [("model", checkpoint["model"])], []
    if _updates(checkpoint) == 0:
        return [("model", checkpoint["model"])], ["ema: never updated (updates = 0)"]
    return [("ema", checkpoint["ema"]), ("model", checkpoint.get("model"))], []


def conversion_metadata(
    arch: str, options: dict, source: Path, entry: str, epoch: int | None
) -> dict[str, str]:
    """The safetensors header of a converted file: what `model_from_weights` and people read back."""
    return {
        "format": "pt",
        "arch": arch,
        "options": json.dumps(options),
        "source": source.name,
        "entry": entry,
        "epoch": "" if epoch is None else str(epoch),
        "converter": f"cstrack {__version__}",
    }


@dataclass(frozen=True)
class Conversion:
    """What `convert_checkpoint` wrote."""

    source: Path
    output: Path
    arch: str
    entry: str  # "ema", "model" or "state_dict" (a bare state_dict file)
    epoch: int | None
    tensors: int
    parameters: int
    notes: tuple[str, ...]  # why an entry tried first was not used


def convert_checkpoint(
    source: str | PathLike,
    output: str | PathLike,
    arch: str,
    entry: str = "auto",
    base_only: bool = False,
) -> Conversion:
    """Convert a released `.pt` checkpoint into a safetensors file that `create_model(arch)` loads.

    Every key and shape is checked against the architecture (base_only: without the re-check
    heads, for OMC stage-1 checkpoints); FP16 becomes float32. The output is written atomically
    with metadata: arch, options, source file name, entry and epoch.
    """
    source = Path(source)
    check_weights_output(output, source)
    if entry not in ENTRIES:
        raise InputError(None, f"entry must be one of {ENTRIES}, got {entry!r}")
    overrides = {"recheck": False} if base_only else {}
    model = model_from_config(model_config(arch, **overrides)).eval()
    checkpoint = read_checkpoint(source)
    try:
        candidates, notes = _candidates(checkpoint, entry)
    except (TypeError, ValueError) as exc:
        raise InputError(source, printable(exc, MESSAGE_CHARS)) from None
    for name, value in candidates:
        try:
            load_weights(model, entry_state_dict(value))  # refuses NaN and inf
        except (TypeError, ValueError) as exc:  # InputError is a ValueError
            problem = exc.problem if isinstance(exc, InputError) else printable(exc, MESSAGE_CHARS)
            notes.append(f"{name}: {problem}")
            continue
        epoch = checkpoint.get("epoch") if isinstance(checkpoint, Mapping) else None
        epoch = epoch if isinstance(epoch, int) else None
        save_weights(model, output, conversion_metadata(arch, overrides, source, name, epoch))
        return Conversion(
            source,
            Path(output),
            arch,
            name,
            epoch,
            len(model.state_dict()),
            count_parameters(model),
            tuple(notes),
        )
    raise InputError(
        source, f"no entry fits {arch}{' (base only)' if base_only else ''}: " + "; ".join(notes)
    )


def convert_backbone(source: str | PathLike, output: str | PathLike, arch: str) -> Conversion:
    """Initial weights for `cstrack train --weights`: ARCH with its backbone from an ImageNet file.

    `source` is a MobileNetV2 state_dict or pickled module (torchvision-style `features.*` keys),
    read with the same restricted unpickler; the rest of the network keeps its fresh initialisation.
    """
    source = Path(source)
    check_weights_output(output, source)
    model = model_from_config(model_config(arch)).eval()
    if model.cfg.backbone != "mobilenetv2":
        raise InputError(
            None, f"--backbone needs a MobileNetV2 architecture, {arch} has {model.cfg.backbone}"
        )
    checkpoint = read_checkpoint(source)
    try:
        candidates, _ = _candidates(checkpoint, "auto")
        features = entry_state_dict(candidates[0][1])
    except (TypeError, ValueError) as exc:
        raise InputError(source, printable(exc, MESSAGE_CHARS)) from None
    base = model.model if model.has_recheck else model
    torch.nn.Sequential(*list(base.model)[:10]).load_state_dict(imagenet_backbone_state(features, source))
    save_weights(model, output, conversion_metadata(arch, {}, source, "backbone", None))
    return Conversion(
        source, Path(output), arch, "backbone", None, len(model.state_dict()), count_parameters(model), ()
    )

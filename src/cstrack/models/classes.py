"""The classes a model detects: their names in weights files, and class layers across class counts.

A weights file written by `cstrack train` records its class names in the safetensors header,
`class_names`, a JSON list (one name per class the head predicts); files that do not record
them (the bundled models, converted releases, older runs) are read as `default_class_names(nc)`:
("pedestrian",) for one class, ("class0", "class1", ...) for more.

`adapt_class_layers` lets a model start from weights with another number of classes (e.g.
`cstrack train --weights omc_yolox_nano.bytetrack_pets` on pedestrians and cars): only the
tensors of the class logits differ in shape, so they are rebuilt from the model's own
initialisation, with the rows of every class whose name the file also has copied from it (and,
in the anchor head, where one conv predicts boxes, objectness and classes together, the box
and objectness rows of every anchor copied as they are).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from os import PathLike

import torch
from torch import nn

from cstrack.errors import InputError
from cstrack.models.detect import Detect
from cstrack.models.weights import align_keys
from cstrack.models.yolox import YOLOXHead

__all__ = [
    "CLASS_NAMES_KEY",
    "DEFAULT_CLASS_NAMES",
    "adapt_class_layers",
    "class_names_metadata",
    "default_class_names",
    "recorded_class_names",
]

#: The safetensors header key of the class names (a JSON list of strings).
CLASS_NAMES_KEY = "class_names"
DEFAULT_CLASS_NAMES = ("pedestrian",)
# Box (x, y, w, h) and objectness outputs before the class logits in each anchor's rows.
_BOX_AND_OBJECTNESS = 5


def default_class_names(nc: int) -> tuple[str, ...]:
    """The names of a model's classes when nothing records them."""
    return DEFAULT_CLASS_NAMES if nc == 1 else tuple(f"class{index}" for index in range(nc))


def recorded_class_names(path: str | PathLike | None, metadata: Mapping[str, str]) -> tuple[str, ...] | None:
    """The class names a weights header records (`class_names`), None when it records none.

    Recorded names must be a JSON list of distinct non-empty strings (InputError otherwise).
    """
    value = metadata.get(CLASS_NAMES_KEY)
    if not value:
        return None
    try:
        names = json.loads(value)
    except json.JSONDecodeError as error:
        raise InputError(path, f"unreadable {CLASS_NAMES_KEY!r} metadata: {error}") from None
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(name, str) and name.strip() for name in names)
        or len(set(names)) != len(names)
    ):
        raise InputError(
            path, f"{CLASS_NAMES_KEY!r} metadata must be a list of distinct names, got {value!r}"
        )
    return tuple(names)


def class_names_metadata(
    path: str | PathLike | None, metadata: Mapping[str, str], nc: int
) -> tuple[str, ...]:
    """The class names a weights header records for a model of `nc` classes, else the defaults."""
    names = recorded_class_names(path, metadata)
    if names is None:
        return default_class_names(nc)
    if len(names) != nc:
        raise InputError(
            path, f"{CLASS_NAMES_KEY!r} metadata names {len(names)} classes but the model has {nc}"
        )
    return names


def _head_prefix(model: nn.Module, head: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is head:
            return f"{name}." if name else ""
    raise ValueError("the detection head is not a submodule of the model")


def _class_rows(head: Detect | YOLOXHead, nc: int) -> tuple[list[list[int]], list[int]]:
    """Per class, the output rows of one class-layer tensor of a head with `nc` classes; and the
    rows that are not class logits (box and objectness rows of the anchor head, none for YOLOX)."""
    if isinstance(head, YOLOXHead):
        return [[index] for index in range(nc)], []
    outputs = _BOX_AND_OBJECTNESS + nc
    per_class = [
        [anchor * outputs + _BOX_AND_OBJECTNESS + index for anchor in range(head.na)] for index in range(nc)
    ]
    shared = [anchor * outputs + row for anchor in range(head.na) for row in range(_BOX_AND_OBJECTNESS)]
    return per_class, shared


def _class_layer_keys(model: nn.Module, head: Detect | YOLOXHead) -> list[str]:
    """The state keys of the tensors whose first axis grows with the number of classes."""
    prefix = _head_prefix(model, head)
    name, convs = ("cls_preds", head.cls_preds) if isinstance(head, YOLOXHead) else ("m", head.m)
    return [f"{prefix}{name}.{index}.{part}" for index in range(len(convs)) for part in ("weight", "bias")]


def _file_classes(head: Detect | YOLOXHead, rows: int) -> int | None:
    """The number of classes a class-layer tensor with `rows` output rows was made for."""
    if isinstance(head, YOLOXHead):
        return rows
    outputs, remainder = divmod(rows, head.na)
    return outputs - _BOX_AND_OBJECTNESS if remainder == 0 and outputs > _BOX_AND_OBJECTNESS else None


def adapt_class_layers(
    model: nn.Module,
    head: Detect | YOLOXHead,
    state: Mapping[str, torch.Tensor],
    file_names: Sequence[str] | None,
    names: Sequence[str],
) -> tuple[dict[str, torch.Tensor], str | None]:
    """`state` (keys aligned to `model`) with its class layers fitted to `model`'s classes `names`.

    Tensors of the same shape are kept. Class-layer tensors made for another number of classes
    become the model's own tensors with the rows of each class in both `file_names` (default:
    `default_class_names` of the file's count) and `names` copied from the file, and the anchor
    head's box and objectness rows too. Returns the state and a one-line report (None when
    nothing was changed). Any other mismatch is left for `load_weights` to refuse.
    """
    aligned = align_keys(state, model)
    own = model.state_dict()
    adapted, file_nc = 0, None
    copied: list[str] = []
    for key in _class_layer_keys(model, head):
        if key not in aligned or key not in own or aligned[key].shape == own[key].shape:
            continue
        source, target = aligned[key], own[key]
        count = _file_classes(head, source.shape[0])
        if count is None or source.shape[1:] != target.shape[1:]:
            continue
        file_nc = count
        known = list(file_names) if file_names is not None else list(default_class_names(count))
        if len(known) != count:
            raise InputError(
                None, f"the weights name {len(known)} classes but their class layers hold {count}"
            )
        old_rows, old_shared = _class_rows(head, count)
        new_rows, new_shared = _class_rows(head, len(names))
        fitted = target.detach().clone()
        with torch.no_grad():
            fitted[new_shared] = source[old_shared].to(fitted.dtype)
            copied = []
            for index, name in enumerate(names):
                if name in known:
                    fitted[new_rows[index]] = source[old_rows[known.index(name)]].to(fitted.dtype)
                    copied.append(name)
        aligned[key] = fitted
        adapted += 1
    if not adapted:
        return aligned, None
    fresh = [name for name in names if name not in copied]
    return aligned, (
        f"class layers: {adapted} tensors refitted from {file_nc} to {len(names)} classes "
        f"(from the file: {', '.join(copied) or 'none'}; initialised: {', '.join(fresh) or 'none'})"
    )

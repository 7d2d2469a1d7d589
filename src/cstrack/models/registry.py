"""Named model variants: `create_model(name, **overrides)` and `list_models()`, the network a
weights file holds (`model_from_weights`), and the one reader of model specs (`model_from_spec`)
that track, export, train --weights and the Python API share.

A name with a tag, timm-style `arch.tag` (`create_model("omc_yolox_nano.bytetrack_pets")`), is a
pretrained model (`cstrack.models.pretrained`: in the package, or downloaded once); a plain `arch`
is randomly initialised.

Families (the two released constructions):
  cstrack_*  first CSTrack release: BottleneckCSP + LeakyReLU(0.1), YOLOv5 xy decode (bar=False,
             its Detect still holds the frozen BAR scale k = 10), no DenseMask, no re-check.
  omc_*      OMC release: C3 + SiLU, BAR, DenseMask, re-check network (returns an `OMC` module).
Sizes (YOLOv5 depth / width multiples):
  n 0.33 / 0.25, s 0.33 / 0.50, m 0.67 / 0.75, l 1.0 / 1.0, x 1.33 / 1.25.
CSTrack-S ("30% of channels and layers", no released config) is taken as YOLOv5-S: depth 0.33
is the paper's ~30% of layers; width 0.50 halves the channels (about 19% of the L parameters),
the standard YOLOv5 light setting, so it can start from COCO-pretrained YOLOv5-S weights.
REN and Detect follow the level widths, SAAN's internal width is 256 x width (embedding stays 512)
and the re-check width is 256 x width: 64 n, 128 s, 192 m, 256 l, 320 x.

omc_mobilenetv2 swaps the YOLOv5 backbone of omc_n for MobileNetV2 (see `mobilenet.py`), so a
small model can start from ImageNet features (the architecture of `omc_mobilenetv2.pets`).

omc_yolox_nano / cstrack_yolox_nano are built on YOLOX-Nano (`yolox.py`) so that they can start
from the pretrained YOLOX-Nano detectors (`cstrack convert FILE.onnx OUT --arch ... --backbone`).
Departures from the papers, all forced by keeping the pretrained detector intact:
- backbone and neck are YOLOX-Nano's depthwise CSPDarknet and PAFPN (P3/P4/P5 = 64/128/256,
  the channels of the n size), not YOLOv5's; every conv has a bias (the BatchNorm is folded).
- the detection head is YOLOX's decoupled anchor-free head (one prediction per cell, SimOTA
  loss in training), not the anchor-based Detect; its box decode is YOLOX's unbounded offset,
  which already allows centres beyond the border, so BAR's k-scaled offset is used only by the
  re-check box branch (k = 10, learnable).
- REN's detection branch is F + g * (relation @ F) with g = 0 at the start (`ren_gate`), so the
  pretrained head first sees the features it was trained on; the ID branch is the paper's.
- the input pre-processing of the pretrained file (BGR 0-255 for COCO, ImageNet-normalised RGB
  for ByteTrack's) is a fixed per-pixel map stored in the weights (`InputTransform`).
SAAN (512-d embeddings at stride 8), DenseMask and the re-check network are as in omc_n.
omc_yolox_nano_lite narrows what the one-shot parts add: 128-d embeddings, SAAN and re-check
fusion 32 channels wide (the paper-width omc_yolox_nano stays available).

Overrides are CSTrackConfig fields, e.g. `ren=False, saan=False, recheck=False, bar=False,
dense_mask=False` for ablations, or `recheck_mask="soft"`. A model with the re-check network is
an `OMC` (keys `model.model.*`, `siambox.*`, `siamheatmap.*`), otherwise a `CSTrack` (`model.*`),
as the release's stage-1 and stage-2 checkpoints are laid out.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, fields, replace
from os import PathLike
from pathlib import Path

import torch

from cstrack.errors import InputError
from cstrack.models.classes import DEFAULT_CLASS_NAMES, class_names_metadata, default_class_names
from cstrack.models.network import OMC, CSTrackConfig, TrackingNetwork, base_network
from cstrack.models.pretrained import img_size_metadata, is_pretrained, list_pretrained, pretrained_weights
from cstrack.models.weights import load_weights, weights_metadata

logger = logging.getLogger(__name__)

FAMILIES: dict[str, dict[str, object]] = {
    "cstrack": {"block": "csp", "act": "leaky", "bar": False, "dense_mask": False, "recheck": False},
    "omc": {"block": "c3", "act": "silu", "bar": True, "dense_mask": True, "recheck": True},
}
SIZES: dict[str, tuple[float, float]] = {
    "n": (0.33, 0.25),
    "s": (0.33, 0.50),
    "m": (0.67, 0.75),
    "l": (1.0, 1.0),
    "x": (1.33, 1.25),
}
VARIANTS: dict[str, CSTrackConfig] = {
    f"{family}_{size}": CSTrackConfig(depth=depth, width=width, **options)
    for family, options in FAMILIES.items()
    for size, (depth, width) in SIZES.items()
}
# A light variant with an ImageNet-pretrainable backbone: MobileNetV2 (width 1.0) under the n-size
# PAN and heads. Its backbone weights come from `cstrack convert MOBILENETV2.pt --backbone`.
VARIANTS["omc_mobilenetv2"] = replace(VARIANTS["omc_n"], backbone="mobilenetv2")
# YOLOX-Nano (depthwise CSPDarknet + PAFPN, P3/P4/P5 = 64/128/256) with its decoupled anchor-free
# head kept as the detection head, so that pretrained YOLOX-Nano detectors (`cstrack convert
# FILE.onnx --backbone`) carry their detection quality over; REN's detection branch starts as the
# identity (ren_gate). SiLU in REN/SAAN/DenseMask/re-check for both families (YOLOX's activation).
VARIANTS["omc_yolox_nano"] = replace(VARIANTS["omc_n"], backbone="yolox", ren_gate=True)
VARIANTS["cstrack_yolox_nano"] = replace(VARIANTS["omc_yolox_nano"], dense_mask=False, recheck=False)
# The light one-shot parts on YOLOX-Nano (a documented departure, chosen by measured cost): a
# 128-d embedding (FairMOT's width; JDE/CSTrack use 512), SAAN and the re-check fusion 32 wide
# instead of 64. About half the time the paper-width parts add to YOLOX-Nano (model card).
VARIANTS["omc_yolox_nano_lite"] = replace(
    VARIANTS["omc_yolox_nano"], emb_dim=128, saan_width=32, recheck_width=32
)


def list_models() -> list[str]:
    return sorted(VARIANTS)


def model_config(name: str, **overrides: object) -> CSTrackConfig:
    """The configuration of a named variant with CSTrackConfig fields overridden."""
    if name not in VARIANTS:
        raise InputError(None, f"unknown model {name!r}; known models: {', '.join(list_models())}")
    known = {f.name for f in fields(CSTrackConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(None, f"unknown model options {unknown}; known options: {sorted(known)}")
    try:
        return replace(VARIANTS[name], **overrides)
    except (TypeError, ValueError) as exc:
        raise InputError(None, f"model {name!r}: {exc}") from exc


def model_from_config(cfg: CSTrackConfig) -> TrackingNetwork:
    """The randomly initialised network of `cfg`: an `OMC` when it has the re-check network."""
    return OMC(cfg) if cfg.recheck else base_network(cfg)


def create_model(
    name: str, checkpoint_path: str | PathLike | None = None, **overrides: object
) -> TrackingNetwork:
    """Build a registered variant, optionally loading a safetensors checkpoint (strictly).

    `name` may be a pretrained `arch.tag` (its trained weights, no checkpoint or overrides then).
    """
    if is_pretrained(name):
        if checkpoint_path is not None or overrides:
            raise InputError(
                None, f"{name!r} is a trained model: give its arch for a checkpoint or overrides"
            )
        return model_from_weights(pretrained_weights(name))
    model = model_from_config(model_config(name, **overrides))
    if checkpoint_path is not None:
        load_weights(model, checkpoint_path)
    return model


def _from_weights(path: Path, metadata: dict[str, str], arch: str | None) -> TrackingNetwork:
    if arch is None:
        arch = metadata.get("arch")
        if arch is None:
            raise InputError(path, "the file names no architecture (no 'arch' metadata): pass one")
    try:
        options = json.loads(metadata.get("options") or "{}") if arch == metadata.get("arch") else {}
    except json.JSONDecodeError as exc:
        raise InputError(path, f"unreadable 'options' metadata: {exc}") from exc
    return create_model(arch, path, **options)


def model_from_weights(path: str | PathLike, arch: str | None = None) -> TrackingNetwork:
    """The model a safetensors file holds: `arch`, else the arch (and options) `cstrack convert` stored."""
    return _from_weights(Path(path), weights_metadata(path), arch)


def weights_file(spec: str | PathLike) -> Path | None:
    """The weights file a model spec names: a pretrained model's file, a .safetensors path, or None."""
    if is_pretrained(str(spec)):
        return pretrained_weights(str(spec))
    path = Path(spec)
    return path if path.suffix == ".safetensors" or path.is_file() else None


@dataclass(frozen=True)
class LoadedModel:
    """What a model spec names: the module, the file its weights came from, the input size the
    file records (None when not recorded or randomly initialised), a stem for derived files, and
    the names of the classes it detects (the file's `class_names`, else `default_class_names`)."""

    model: TrackingNetwork
    weights: Path | None
    img_size: tuple[int, int] | None
    stem: str
    class_names: tuple[str, ...] = DEFAULT_CLASS_NAMES


def model_from_spec(spec: str | PathLike, arch: str | None = None) -> LoadedModel:
    """A pretrained `arch.tag`, a .safetensors file (arch from `arch` or its header) or a registry name
    (randomly initialised, with a warning); the file's header is read once."""
    path = weights_file(spec)
    if path is not None:
        metadata = weights_metadata(path)
        stem = str(spec) if is_pretrained(str(spec)) else path.stem
        model = _from_weights(path, metadata, arch)
        names = class_names_metadata(path, metadata, model.detect.nc)
        return LoadedModel(model, path, img_size_metadata(path, metadata), stem, names)
    name = str(spec)
    if name not in VARIANTS:
        known = ", ".join(list_pretrained() + list_models())
        raise InputError(None, f"unknown model {name!r}: give a .safetensors file or one of {known}")
    logger.warning("cstrack: model %r has no weights here: random initialisation", name)
    model = create_model(name)
    return LoadedModel(model, None, None, name, default_class_names(model.detect.nc))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

"""Trained weights that ship inside the package, addressed by a timm-style `arch.tag` name.

    Tracker("omc_yolox_nano.bytetrack_pets")          # the bundled default model
    bundled_weights("omc_yolox_nano.bytetrack_pets")  # its safetensors file
    Tracker("omc_mobilenetv2.pets")                   # the earlier default, still bundled

Each file's metadata names its architecture and the input size it was trained at (`img_size`,
"W,H"), which trackers use unless told otherwise; its model card sits beside it as
`<file stem>.md` (data, recipe, exact commands, training time, scores).
"""

from __future__ import annotations

from importlib import resources
from os import PathLike
from pathlib import Path

from cstrack.errors import InputError, quote
from cstrack.models.inference import check_input_size
from cstrack.models.weights import weights_metadata

BUNDLED: dict[str, str] = {
    "omc_yolox_nano.bytetrack_pets": "omc_yolox_nano_bytetrack_pets.safetensors",
    "omc_mobilenetv2.pets": "omc_mobilenetv2_pets.safetensors",
}
DEFAULT_PRETRAINED = "omc_yolox_nano.bytetrack_pets"


def list_pretrained() -> list[str]:
    return sorted(BUNDLED)


def bundled_weights(name: str) -> Path:
    """The file of a bundled model; InputError when the name is unknown or the file was not installed."""
    if name not in BUNDLED:
        raise InputError(None, f"no bundled model {name!r}; bundled: {', '.join(list_pretrained())}")
    path = Path(str(resources.files("cstrack.weights").joinpath(BUNDLED[name])))
    if not path.is_file():
        raise InputError(path, f"bundled model {name!r} is missing from this installation")
    return path


def model_card(name: str) -> Path:
    return bundled_weights(name).with_suffix(".md")


def img_size_metadata(path: str | PathLike, metadata: dict[str, str]) -> tuple[int, int] | None:
    """(width, height) from a weights file's header already read; None when not recorded."""
    value = metadata.get("img_size")
    if not value:
        return None
    try:
        width, height = (int(v) for v in value.split(","))
    except ValueError:
        raise InputError(path, f"unreadable 'img_size' metadata {quote(value)}; expected 'W,H'") from None
    try:
        return check_input_size((width, height), "its 'img_size' metadata")
    except InputError as error:
        raise InputError(path, error.problem) from None


def trained_img_size(path: str | PathLike) -> tuple[int, int] | None:
    """The (width, height) a weights file was trained at, from its metadata; None when not recorded."""
    return img_size_metadata(path, weights_metadata(path))

"""The options several commands share (--model, --arch, --img-size, --device), defined once so
their spelling, metavars and help do not drift apart between commands, and the options of the
settings in `cstrack.config`: one per field, its default and help read from the field.

The options only parse: the settings check their values when they are made (`TrackerConfig`,
`RuntimeConfig`), in the library, so the command line and the API refuse the same values alike.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from cstrack.config import (
    DEFAULT_IMG_SIZE,
    SIZE_MULTIPLE,
    TRACKER_SECTIONS,
    RuntimeConfig,
    field_help,
    option,
    rules,
)


def check_img_size(args: argparse.Namespace) -> None:
    """--img-size, when given, is a size the network takes (`check_input_size`: one line, exit 2)."""
    from cstrack.config import check_input_size

    if args.img_size is not None:
        check_input_size(args.img_size, "--img-size")


def add_model_options(
    parser: argparse.ArgumentParser, *, default: str | None = None, required: bool = False
) -> None:
    """--model (a bundled name, a .safetensors file or a registered variant) and --arch."""
    shown = f" (default: {default})" if default else ""
    parser.add_argument(
        "--model",
        default=default,
        required=required,
        metavar="NAME_OR_WEIGHTS",
        help="a bundled model (e.g. omc_yolox_nano.bytetrack_pets), a .safetensors file, or a registered "
        f"variant name (random weights){shown}",
    )
    parser.add_argument(
        "--arch",
        metavar="NAME",
        help="architecture of a .safetensors file (default: the one its metadata names)",
    )


def add_img_size_option(
    parser: argparse.ArgumentParser,
    *,
    default: tuple[int, int] | None = None,
    default_help: str = f"the size the weights were trained at, else {DEFAULT_IMG_SIZE[0]} {DEFAULT_IMG_SIZE[1]}",
) -> None:
    parser.add_argument(
        "--img-size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        default=default,
        help=f"network input width and height, multiples of {SIZE_MULTIPLE} (default: {default_help})",
    )


def add_device_option(
    parser: argparse.ArgumentParser,
    *,
    choices: tuple[str, ...] | None = None,
    default: str = RuntimeConfig.device,
) -> None:
    """--device DEVICE for every command; `choices` and `default` where a command takes only some
    devices (training: its own setting)."""
    named = (
        field_help(RuntimeConfig, "device")
        if choices is None
        else f"{', '.join(choices[:-1])} or {choices[-1]}"
    )
    parser.add_argument(
        "--device",
        default=default,
        choices=choices,
        metavar="DEVICE",
        help=f"{named} (default: %(default)s)",
    )


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """--backend, --device, --half and --providers: the fields of `RuntimeConfig`."""
    parser.add_argument(
        option(RuntimeConfig, "backend"),
        default=RuntimeConfig.backend,
        metavar="|".join(rules(RuntimeConfig)["backend"].choices),
        help=f"{field_help(RuntimeConfig, 'backend')} (default: %(default)s)",
    )
    add_device_option(parser)
    parser.add_argument(
        option(RuntimeConfig, "half"), action="store_true", help=field_help(RuntimeConfig, "half")
    )
    parser.add_argument(
        option(RuntimeConfig, "providers"), metavar="LIST", help=field_help(RuntimeConfig, "providers")
    )


def runtime_config(args: argparse.Namespace) -> RuntimeConfig:
    """The `RuntimeConfig` of the runtime options (checked as it is made)."""
    return RuntimeConfig(backend=args.backend, device=args.device, half=args.half, providers=args.providers)


def _float_or_off(text: str) -> float | str:
    return "off" if text.strip().lower() == "off" else float(text)


_float_or_off.__name__ = "number or 'off'"  # what argparse names in its error message


def add_tracker_options(parser: argparse.ArgumentParser, *, title: str = "tracker configuration") -> None:
    """--tracker-config FILE and one option per field of the settings `tracker.yaml` holds (--conf,
    --track-buffer, --byte-low, --img-size ...), which apply on top of the file; their defaults
    are shown, not set (None: not given), so that the file's values stand unless an option is
    given."""
    group = parser.add_argument_group(
        title,
        "every setting of the detector, the association cascade, BYTE and OMC's re-check; the "
        "options override --tracker-config, which overrides the defaults",
    )
    group.add_argument(
        "--tracker-config",
        type=Path,
        metavar="FILE",
        help="YAML file of `field: value` lines (the fields are the options below with underscores, "
        "e.g. track_buffer: 60); fields left out keep their defaults",
    )
    for section in TRACKER_SECTIONS.values():
        for item in dataclasses.fields(section):
            rule, text = item.metadata["rule"], item.metadata["help"]
            default: Any = item.default
            name = option(section, item.name)
            if rule.base == "bool":
                shown = "on" if default else "off"
                group.add_argument(
                    name,
                    dest=item.name,
                    action=argparse.BooleanOptionalAction,
                    help=f"{text} (default: {shown})",
                )
            elif rule.base == "choice":
                group.add_argument(
                    name,
                    dest=item.name,
                    metavar="|".join(rule.choices),
                    help=f"{text} (default: {default})",
                )
            elif rule.base == "size":
                group.add_argument(name, dest=item.name, type=int, nargs=2, metavar=("W", "H"), help=text)
            elif rule.optional:
                shown = "off" if default is None else default
                group.add_argument(
                    name,
                    dest=item.name,
                    type=_float_or_off,
                    metavar="X",
                    help=f"{text} (default: {shown}; 'off' turns it off)",
                )
            else:
                group.add_argument(
                    name, dest=item.name, type=int if rule.base == "int" else float,
                    metavar="N" if rule.base == "int" else "X", help=f"{text} (default: {default})",
                )  # fmt: skip


def tracker_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The fields of `tracker.yaml` given as options: field -> value (None: not given)."""
    return {
        item.name: getattr(args, item.name)
        for section in TRACKER_SECTIONS.values()
        for item in dataclasses.fields(section)
    }

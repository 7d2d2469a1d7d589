"""The options several commands share (--model, --arch, --img-size, --device), defined once so
their spelling, metavars, checks and help do not drift apart between commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

SIZE_MULTIPLE = 32  # the network's largest stride (cstrack.models.inference.SIZE_MULTIPLE)
DEVICE_HELP = "auto, cpu, cuda or cuda:N (default: %(default)s)"


def check_img_size(args: argparse.Namespace) -> None:
    """--img-size, when given, is a size the network takes (`check_input_size`: one line, exit 2)."""
    from cstrack.models.inference import check_input_size

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
    default_help: str = "the size the weights were trained at, else 1088 608",
) -> None:
    parser.add_argument(
        "--img-size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        default=default,
        help=f"network input width and height, multiples of {SIZE_MULTIPLE} (default: {default_help})",
    )


def add_device_option(parser: argparse.ArgumentParser, *, choices: tuple[str, ...] | None = None) -> None:
    """--device DEVICE for every command; `choices` where a command takes only some devices."""
    named = (
        DEVICE_HELP
        if choices is None
        else f"{', '.join(choices[:-1])} or {choices[-1]} (default: %(default)s)"
    )
    parser.add_argument("--device", default="auto", choices=choices, metavar="DEVICE", help=named)


TRACKER_CONFIG = "cstrack.pipeline.tracker_config"


def tracker_fields() -> dict[str, tuple[str, str, Any]]:
    """field -> (option, help, default) of every `TrackerConfig` field, read from source (no torch)."""
    from cstrack.cli.defaults import signature_default, source_value

    flags = source_value(TRACKER_CONFIG, "FLAGS")
    return {
        name: (flags.get(name, "--" + name.replace("_", "-")), text, signature_default(owner, keyword))
        for name, (owner, keyword, _kind, _low, _high, _bounds, text) in source_value(
            TRACKER_CONFIG, "SPEC"
        ).items()
    }


def _float_or_off(text: str) -> float | str:
    return "off" if text.strip().lower() == "off" else float(text)


_float_or_off.__name__ = "number or 'off'"  # what argparse names in its error message


def add_tracker_options(parser: argparse.ArgumentParser, *, title: str = "tracker configuration") -> None:
    """--tracker-config FILE and one option per `TrackerConfig` field (--conf, --track-buffer,
    --byte-low ...), which apply on top of the file; their defaults are shown, not set (None: not
    given), so that the file's values stand unless an option is given."""
    from cstrack.cli.defaults import source_value

    kinds = {name: entry[2] for name, entry in source_value(TRACKER_CONFIG, "SPEC").items()}
    group = parser.add_argument_group(
        title,
        "every threshold of the detector, the association cascade, BYTE and OMC's fusion; the "
        "options override --tracker-config, which overrides the defaults",
    )
    group.add_argument(
        "--tracker-config",
        type=Path,
        metavar="FILE",
        help="YAML file of `field: value` lines (the fields are the options below with underscores, "
        "e.g. track_buffer: 60); fields left out keep their defaults",
    )
    for name, (option, text, default) in tracker_fields().items():
        kind = kinds[name]
        if kind == "bool":
            shown = "on" if default else "off"
            group.add_argument(
                option, action=argparse.BooleanOptionalAction, default=None, help=f"{text} (default: {shown})"
            )
        elif kind == "choice":
            module, names = source_value(TRACKER_CONFIG, "CHOICES")[name]
            group.add_argument(
                option, choices=source_value(module, names), help=f"{text} (default: {default})"
            )
        elif kind == "float?":
            shown = "off" if default is None else default
            group.add_argument(
                option,
                type=_float_or_off,
                metavar="X",
                help=f"{text} (default: {shown}; 'off' turns it off)",
            )
        else:
            group.add_argument(
                option, type=int if kind == "int" else float, metavar="N" if kind == "int" else "X",
                help=f"{text} (default: {default})",
            )  # fmt: skip


def tracker_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The `TrackerConfig` fields given as options: field -> value (None: not given)."""
    return {
        name: getattr(args, option[2:].replace("-", "_")) for name, (option, _, _) in tracker_fields().items()
    }

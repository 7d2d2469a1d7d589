"""The options several commands share (--model, --arch, --img-size, --device), defined once so
their spelling, metavars, checks and help do not drift apart between commands."""

from __future__ import annotations

import argparse

SIZE_MULTIPLE = 32  # the network's largest stride (cstrack.models.inference.SIZE_MULTIPLE)
DEVICE_HELP = "auto, cpu, cuda or cuda:N (default: %(default)s)"


def check_img_size(args: argparse.Namespace) -> None:
    """--img-size, when given, is two positive multiples of 32 (InputError: one line, exit 2)."""
    from cstrack.errors import InputError

    if args.img_size is not None and not all(v > 0 and v % SIZE_MULTIPLE == 0 for v in args.img_size):
        width, height = args.img_size
        raise InputError(
            None, f"--img-size must be two positive multiples of {SIZE_MULTIPLE}, got {width} {height}"
        )


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
    parser.add_argument(
        "--device",
        default="auto",
        choices=choices,
        help=DEVICE_HELP if choices is None else "default: %(default)s",
    )

"""Entry point of the `cstrack` command: one module per subcommand, each with `register()`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from cstrack import __version__
from cstrack.errors import InputError

# Each name is a module cstrack.cli.<name>_cmd exposing register(subparsers) that sets `func`.
SUBCOMMANDS: tuple[str, ...] = ("eval", "track", "synth", "data", "convert", "export", "train")
# FFmpeg's own log lines ("moov atom not found") would come before the command's one-line error;
# -8 is AV_LOG_QUIET. A value the user set wins.
FFMPEG_LOG_LEVEL = "-8"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cstrack",
        description="CSTrack and OMC one-shot multi-object tracking: track, train, evaluate, export.",
    )
    parser.add_argument("--version", action="version", version=f"cstrack {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"cstrack.cli.{name}_cmd").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_LOG_LEVEL)
    try:
        return int(args.func(args) or 0)
    except InputError as error:
        print(f"cstrack {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cstrack {args.command}: interrupted", file=sys.stderr)
        return 130

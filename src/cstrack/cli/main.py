"""Entry point of the `cstrack` command: one module per subcommand, each with `register()`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TextIO

from cstrack import __version__
from cstrack.errors import InputError

# Each name is a module cstrack.cli.<name>_cmd exposing register(subparsers) that sets `func`.
# In the order of use, which `cstrack --help` and the CLI reference keep: track, score, tune, make
# data, train, deploy, then the housekeeping.
SUBCOMMANDS: tuple[str, ...] = (
    "track",
    "eval",
    "tune",
    "synth",
    "data",
    "train",
    "train_embedding",
    "export",
    "convert",
    "eval_reid",
    "cache",
)
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


def subcommand_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of `cstrack COMMAND`, built by `build_parser`."""
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[command]


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes to whatever `sys.stderr` is when a record comes (tests and
    embedding programs swap it), rather than to the stream it first saw."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """StreamHandler.__init__ sets it; the property above decides."""


def configure_logging() -> None:
    """The library reports through `logging` (warnings, training progress); the command prints
    those records as plain lines on stderr. An API user configures logging as they like."""
    logger = logging.getLogger("cstrack")
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@contextmanager
def terminate_as_interrupt() -> Iterator[list[int]]:
    """While a command runs, SIGTERM (what `docker stop`, systemd and Kubernetes send) takes the
    path of Ctrl-C: it raises KeyboardInterrupt, so that `track` completes its partial files and
    temporary files are removed; a second SIGTERM ends the process at once. Yields the signals
    received (none, or SIGTERM). Signal handlers belong to the main thread: elsewhere, nothing changes."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        signal.signal(signum, signal.SIG_DFL)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would print the top-level usage; the subcommand's is the one that helps
        subcommand_parser(parser, args.command).error(f"unrecognized arguments: {' '.join(unknown)}")
    configure_logging()
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_LOG_LEVEL)
    with terminate_as_interrupt() as received:
        try:
            status = int(args.func(args) or 0)
        except InputError as error:
            print(f"cstrack {args.command}: error: {error}", file=sys.stderr)
            status = 2
        except KeyboardInterrupt:
            print(f"cstrack {args.command}: interrupted", file=sys.stderr)
            status = 130
    # 128 + the signal's number, as a shell reports a command that a signal ended: 143 for SIGTERM.
    return 128 + received[0] if received else status

"""`cstrack cache list|clear`: show or empty the cache of exported ONNX graphs.

The cache module (and with it onnx and torch) is imported only when the command runs, so that
`--help` starts fast.
"""

from __future__ import annotations

import argparse
import time

from cstrack.user_cache import CACHE_ENV, DEFAULT_MAX_MB, MAX_MB_ENV

_MB = 1 << 20


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="list or clear the cache of exported ONNX graphs",
        description=(
            "The onnx backend exports the graphs of a weights file once per input size and "
            f"precision and keeps them in ${CACHE_ENV} (else $XDG_CACHE_HOME/cstrack, else "
            f"~/.cache/cstrack). The cache holds at most ${MAX_MB_ENV} megabytes (default "
            f"{DEFAULT_MAX_MB}); the least recently used entries are removed "
            "beyond it."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    actions.add_parser(
        "list", help="the cached exports, least recently used first, with their sizes"
    ).set_defaults(func=run_list)
    actions.add_parser("clear", help="remove every cached export").set_defaults(func=run_clear)


def _megabytes(size: int) -> str:
    return f"{size / _MB:.1f} MB"


def run_list(args: argparse.Namespace) -> int:
    from cstrack.export.cache import cache_dir, cache_entries, cache_limit

    limit = cache_limit()
    entries = cache_entries()
    for entry in entries:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used))
        print(f"{_megabytes(entry.size):>10}  {used}  {entry.folder.name}")
    total = sum(entry.size for entry in entries)
    print(f"{len(entries)} entries, {_megabytes(total)} of at most {_megabytes(limit)} in {cache_dir()}")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    from cstrack.export.cache import cache_dir, clear_cache

    removed = clear_cache()
    print(
        f"removed {len(removed)} entries, {_megabytes(sum(entry.size for entry in removed))}, "
        f"from {cache_dir()}"
    )
    return 0

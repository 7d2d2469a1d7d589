"""Numbered run folders, as Ultralytics users expect: `runs/track/exp`, then `exp2`, `exp3` ..., so
that a run never writes over the results (and `tracker.yaml`) of an earlier one."""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

from cstrack.config import RUN_NAME, RUNS_ROOT


def next_run_folder(
    root: str | PathLike[str] = RUNS_ROOT, name: str = RUN_NAME, exist_ok: bool = False
) -> Path:
    """`root/name` when no such folder is there, else `root/nameN` with N one above the highest
    there; with `exist_ok`, the highest one there (the last run's). Nothing is created."""
    root = Path(root)
    pattern = re.compile(rf"{re.escape(name)}(\d*)")
    numbers = [
        int(match[1] or 1)
        for match in (pattern.fullmatch(path.name) for path in (root.iterdir() if root.is_dir() else ()))
        if match and (match[1] == "" or int(match[1]) >= 2) and (root / match[0]).is_dir()
    ]
    number = max(numbers, default=0) + (0 if exist_ok and numbers else 1)
    return root / (name if number == 1 else f"{name}{number}")

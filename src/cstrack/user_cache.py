"""The user's cstrack cache folder and the file digest its entries are checked by.

Two caches live under one root: the exported ONNX graphs (`cstrack.export.cache`, `onnx/`) and the
downloaded pretrained weights (`cstrack.models.pretrained`, `weights/`). This module imports
nothing heavy, so that finding a core install's weights does not need the `onnx` extra.
"""

from __future__ import annotations

import hashlib
import os
from os import PathLike
from pathlib import Path

CACHE_ENV = "CSTRACK_CACHE"
#: The graph cache's size limit (`cstrack.export.cache`): $CSTRACK_CACHE_MAX_MB megabytes, else this.
MAX_MB_ENV = "CSTRACK_CACHE_MAX_MB"
DEFAULT_MAX_MB = 500
_MB = 1 << 20


def cache_dir() -> Path:
    """The cstrack cache folder: $CSTRACK_CACHE, else $XDG_CACHE_HOME/cstrack, else ~/.cache/cstrack."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "cstrack"
    return Path.home() / ".cache" / "cstrack"


def file_sha256(path: str | PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_MB):
            digest.update(chunk)
    return digest.hexdigest()

"""A cache of exported ONNX graphs, so that the ONNX Runtime backend starts in a fraction of a second.

Tracing and checking the graphs takes seconds at every start of `cstrack track`; the graphs of a
weights file are written once under the user's cache folder and loaded from there afterwards:

    $CSTRACK_CACHE, else $XDG_CACHE_HOME/cstrack, else ~/.cache/cstrack
        onnx/<file stem>-<W>x<H>[-fp16]-<key>/model.onnx (+ model.recheck.onnx)

`<key>` is a digest of the weights file's SHA-256, the input size, the precision, the model's
configuration (an --arch override reads the same file as another network) and the cstrack
version (a new exporter writes new graphs). Files are written through a temporary name and a
rename (`cstrack.atomic`), the re-check graph before the base graph, so a base graph that is
there is complete, and concurrent runs at worst export twice. A cache that cannot be written
(read-only home, full disk) or read back is only a warning: the graphs are then used from memory.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from cstrack import __version__
from cstrack.atomic import atomic_write_bytes
from cstrack.errors import InputError
from cstrack.export.onnx import OnnxBackend, OnnxModels, export_onnx, recheck_path, select_providers
from cstrack.models.network import OMC, CSTrack

CACHE_ENV = "CSTRACK_CACHE"
BASE_NAME = "model.onnx"
_CHUNK = 1 << 20

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    """The cstrack cache folder: $CSTRACK_CACHE, else $XDG_CACHE_HOME/cstrack, else ~/.cache/cstrack."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "cstrack"
    return Path.home() / ".cache" / "cstrack"


def file_sha256(path: str | PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_entry(model: CSTrack | OMC, weights: str | PathLike, img_size: tuple[int, int], half: bool) -> Path:
    """Where the base graph of `model` (loaded from `weights`) exported at `img_size` is cached."""
    width, height = img_size
    precision = "float16" if half else "float32"
    fields = [file_sha256(weights), f"{width}x{height}", precision, repr(model.cfg), __version__]
    key = hashlib.sha256("\n".join(fields).encode()).hexdigest()[:16]
    suffix = "-fp16" if half else ""
    return cache_dir() / "onnx" / f"{Path(weights).stem}-{width}x{height}{suffix}-{key}" / BASE_NAME


def _store(models: OnnxModels, base: Path) -> None:
    """Re-check graph first, base last: a base graph in the cache means the entry is complete."""
    if models.recheck is not None:
        atomic_write_bytes(recheck_path(base), models.recheck.SerializeToString())
    atomic_write_bytes(base, models.base.SerializeToString())


def cached_backend(
    model: CSTrack | OMC,
    weights: str | PathLike,
    img_size: tuple[int, int],
    threads: int | None = None,
    providers: str | Sequence[str] | None = None,
    half: bool = False,
) -> OnnxBackend:
    """An `OnnxBackend` of `model`, whose weights came from the file `weights`, from the cache:
    exported and stored on the first call, loaded from the files on later ones."""
    providers = select_providers(providers)  # a bad name fails before any export
    base = cache_entry(model, weights, img_size, half)
    complete = base.is_file() and (not model.has_recheck or recheck_path(base).is_file())
    if complete:
        try:
            return OnnxBackend.from_files(base, threads, providers)
        except InputError as exc:  # a damaged entry (a disk error, a hand edit): export anew
            logger.warning("cstrack: re-exporting the cached ONNX graphs: %s", exc)
    models = export_onnx(model, img_size, half=half)
    try:
        _store(models, base)
    except InputError as exc:
        logger.warning("cstrack: ONNX graphs not cached (%s); they are exported at every start", exc)
    return OnnxBackend(models.base, models.recheck, threads, providers)

"""A cache of exported ONNX graphs, so that the ONNX Runtime backend starts in a fraction of a second.

Tracing and checking the graphs takes seconds at every start of `cstrack track`; the graphs of a
weights file are written once under the user's cache folder and loaded from there afterwards:

    $CSTRACK_CACHE, else $XDG_CACHE_HOME/cstrack, else ~/.cache/cstrack
        onnx/<file stem>-<W>x<H>[-fp16]-<key>/model.onnx (+ model.recheck.onnx)

`<key>` is a digest of the weights file's SHA-256, the input size, the precision, the model's
configuration (an --arch override reads the same file as another network) and the cstrack
version (a new exporter writes new graphs). The key only names the entry: each graph also records
the weights' SHA-256 and its own in its metadata, checked on load, so a graph copied into an entry
by hand (another model's, or an edited one) is exported anew rather than used. Files are written
through a temporary name and a rename (`cstrack.atomic`), the re-check graph before the base graph,
so a base graph that is there is complete, and concurrent runs at worst export twice. A cache that
cannot be written (read-only home, full disk) or read back is only a warning: the graphs are then
used from memory.

The cache holds at most $CSTRACK_CACHE_MAX_MB megabytes (default 500, about 38 entries): after an
export, the least recently used entries (a load touches its base graph) are removed. An entry is
removed by renaming its folder to a hidden name and then deleting it, so a concurrent reader finds
a whole entry or none (and exports anew). `cstrack cache list` and `cstrack cache clear` show and
empty it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import shutil
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from cstrack import __version__
from cstrack.atomic import atomic_write_bytes, temporary_path
from cstrack.errors import InputError, quote
from cstrack.export.onnx import OnnxModels, export_onnx, onnx, recheck_path
from cstrack.models.network import TrackingNetwork
from cstrack.optional import require
from cstrack.user_cache import DEFAULT_MAX_MB, MAX_MB_ENV, cache_dir, file_sha256

ONNX_FOLDER = "onnx"
BASE_NAME = "model.onnx"
# Metadata of every cached graph, checked on load (see the module docstring).
WEIGHTS_SHA256 = "cstrack.weights_sha256"
GRAPH_SHA256 = "cstrack.graph_sha256"
_MB = 1 << 20
# What parsing a damaged graph raises: protobuf's, which comes with onnx (the `onnx` extra).
DecodeError = require("google.protobuf.message", "onnx").DecodeError

logger = logging.getLogger(__name__)


def cache_limit() -> int:
    """The most bytes the graph cache may hold: $CSTRACK_CACHE_MAX_MB megabytes, else DEFAULT_MAX_MB."""
    text = os.environ.get(MAX_MB_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_MB * _MB
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = math.nan
    if not (math.isfinite(megabytes) and megabytes >= 0):
        raise InputError(
            None, f"{MAX_MB_ENV}={quote(text)}: expected megabytes, a number >= 0 (default {DEFAULT_MAX_MB})"
        )
    return int(megabytes * _MB)


def cache_entry(
    model: TrackingNetwork,
    weights: str | PathLike[str],
    img_size: tuple[int, int],
    half: bool,
    weights_sha256: str | None = None,
) -> Path:
    """Where the base graph of `model` (loaded from `weights`, whose SHA-256 is computed unless
    given) exported at `img_size` is cached."""
    width, height = img_size
    precision = "float16" if half else "float32"
    digest = weights_sha256 or file_sha256(weights)
    fields = [digest, f"{width}x{height}", precision, repr(model.cfg), __version__]
    key = hashlib.sha256("\n".join(fields).encode()).hexdigest()[:16]
    suffix = "-fp16" if half else ""
    return cache_dir() / ONNX_FOLDER / f"{Path(weights).stem}-{width}x{height}{suffix}-{key}" / BASE_NAME


def graph_sha256(proto: onnx.ModelProto) -> str:
    """SHA-256 of the graph itself (nodes and weights), not of the model metadata that records it."""
    return hashlib.sha256(proto.graph.SerializeToString(deterministic=True)).hexdigest()


def _store(models: OnnxModels, base: Path, weights_sha256: str) -> None:
    """Re-check graph first, base last: a base graph in the cache means the entry is complete.
    Each graph's metadata gets the weights' SHA-256 and its own (the protos are changed in place)."""
    for path, proto in ((recheck_path(base), models.recheck), (base, models.base)):
        if proto is not None:
            proto.metadata_props.add(key=WEIGHTS_SHA256, value=weights_sha256)
            proto.metadata_props.add(key=GRAPH_SHA256, value=graph_sha256(proto))
            atomic_write_bytes(path, proto.SerializeToString())


def _load(path: Path, weights_sha256: str) -> onnx.ModelProto | None:
    """The cached graph at `path` if it records `weights_sha256` and its own hash; None when it is
    not there (not written yet, or removed meanwhile by another process); else InputError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        proto = onnx.ModelProto.FromString(data)
    except DecodeError as exc:
        raise InputError(path, f"not an ONNX model: {exc}") from exc
    recorded = {prop.key: prop.value for prop in proto.metadata_props}
    if WEIGHTS_SHA256 not in recorded:
        raise InputError(path, "no weights SHA-256 recorded: not a graph that this cache wrote")
    if recorded[WEIGHTS_SHA256] != weights_sha256:
        raise InputError(path, "not exported from these weights (its recorded weights SHA-256 differs)")
    if recorded.get(GRAPH_SHA256) != graph_sha256(proto):
        raise InputError(
            path, "the graph is not the one exported (its SHA-256 differs from the recorded one)"
        )
    return proto


def _load_entry(base: Path, weights_sha256: str, recheck: bool) -> OnnxModels | None:
    """Both graphs of a complete entry, checked; None when the entry is not (all) there."""
    first = _load(base, weights_sha256)
    second = _load(recheck_path(base), weights_sha256) if first is not None and recheck else None
    if first is None or (recheck and second is None):
        return None
    return OnnxModels(first, second)


@dataclass(frozen=True)
class CacheEntry:
    """One cached export: its folder, its size in bytes, and when it was last used (Unix time)."""

    folder: Path
    size: int
    last_used: float


def cache_entries() -> list[CacheEntry]:
    """The entries of the graph cache, least recently used first. An entry's last use is its newest
    file's modification time (a load touches the base graph); hidden folders (entries being removed)
    are left out."""
    root = cache_dir() / ONNX_FOLDER
    try:
        folders = [folder for folder in root.iterdir() if folder.is_dir() and not folder.name.startswith(".")]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise InputError(root, f"cannot read the cache: {exc.strerror or exc}") from exc
    entries = []
    for folder in folders:
        try:
            stats = [path.stat() for path in folder.iterdir() if path.is_file()]
        except OSError:  # removed meanwhile by another process
            continue
        size = sum(stat.st_size for stat in stats)
        entries.append(CacheEntry(folder, size, max((stat.st_mtime for stat in stats), default=0.0)))
    return sorted(entries, key=lambda entry: entry.last_used)


def remove_entry(folder: Path) -> bool:
    """Remove a cache entry: renamed to a hidden name first, in one step, so that a reader finds the
    whole entry or none; False when another process removed it first."""
    hidden = temporary_path(folder, ".removed")
    try:
        folder.rename(hidden)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise InputError(folder, f"cannot remove the cache entry: {exc.strerror or exc}") from exc
    shutil.rmtree(hidden, ignore_errors=True)
    return True


def prune(limit: int, keep: Path | None = None) -> list[CacheEntry]:
    """Remove the least recently used entries until the cache holds at most `limit` bytes; the
    entry folder `keep` (the one in use) stays whatever its size. Returns the entries removed."""
    entries = cache_entries()
    total = sum(entry.size for entry in entries)
    removed = []
    for entry in entries:
        if total <= limit:
            break
        if entry.folder != keep and remove_entry(entry.folder):
            total -= entry.size
            removed.append(entry)
    return removed


def clear_cache() -> list[CacheEntry]:
    """Remove every entry, and what removals that were killed midway left (hidden folders)."""
    removed = [entry for entry in cache_entries() if remove_entry(entry.folder)]
    for leftover in (cache_dir() / ONNX_FOLDER).glob(".*.removed"):
        shutil.rmtree(leftover, ignore_errors=True)
    return removed


def _touch(base: Path) -> None:
    """Mark an entry as just used (its base graph's modification time), for `prune`."""
    with contextlib.suppress(OSError):  # a read-only cache is still read, only not reordered
        os.utime(base)


def cached_graphs(
    model: TrackingNetwork,
    weights: str | PathLike[str],
    img_size: tuple[int, int],
    half: bool = False,
) -> OnnxModels:
    """The graphs of `model`, whose weights came from the file `weights`, exported at `img_size`:
    exported and stored on the first call, loaded from the cache on later ones."""
    limit = cache_limit()  # a bad $CSTRACK_CACHE_MAX_MB fails before any export
    weights_sha256 = file_sha256(weights)
    base = cache_entry(model, weights, img_size, half, weights_sha256)
    try:
        cached = _load_entry(base, weights_sha256, model.has_recheck)
        if cached is not None:
            _touch(base)
            return cached
    except InputError as exc:  # a damaged or substituted entry (a disk error, a hand edit): export anew
        logger.warning("cstrack: re-exporting the cached ONNX graphs: %s", exc)
    models = export_onnx(model, img_size, half=half)
    try:
        _store(models, base, weights_sha256)
        prune(limit, keep=base.parent)
    except InputError as exc:
        logger.warning("cstrack: ONNX graphs not cached (%s); they are exported at every start", exc)
    return models

"""Trained weights addressed by a timm-style `arch.tag` name: the current ones ship inside the
package, superseded ones are release assets, downloaded once on first use (the wheel stays small).

    Tracker("omc_yolox_nano.bytetrack_pets")              # the default model, inside the package
    pretrained_weights("omc_yolox_nano.bytetrack_pets")   # its safetensors file
    Tracker("omc_mobilenetv2.pets")                       # the earlier default, downloaded once

Each file's metadata names its architecture and the input size it was trained at (`img_size`,
"W,H"), which trackers use unless told otherwise. Every model card stays in the package as
`cstrack/weights/<file stem>.md` (data, recipe, exact commands, training time, scores), whether
its weights are there or downloaded.

A downloaded file comes from `$CSTRACK_WEIGHTS_URL/FILE`, by default `RELEASE_URL` (the
project's release assets; a mirror, or a local folder as `file:///path/to/weights`, may stand
in), into `weights/` of the cstrack cache folder (`$CSTRACK_CACHE`, see `cstrack.user_cache`). It
is streamed to a temporary name and renamed only once its size and SHA-256 are the published
ones; a file found there (downloaded by hand, say) is checked the same way before use.
"""

from __future__ import annotations

import http.client
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from os import PathLike
from pathlib import Path

from cstrack.atomic import temporary_path
from cstrack.config import check_input_size
from cstrack.errors import QUOTE_CHARS, InputError, printable, quote
from cstrack.models.weights import weights_metadata
from cstrack.user_cache import cache_dir, file_sha256

logger = logging.getLogger(__name__)

# name -> its file in cstrack/weights, shipped in the wheel (which must stay under 30 MB).
BUNDLED: dict[str, str] = {
    "omc_yolox_nano.bytetrack_pets": "omc_yolox_nano_bytetrack_pets.safetensors",
}


@dataclass(frozen=True)
class Release:
    """A weights file published as a release asset: its file name, SHA-256 and size in bytes."""

    file: str
    sha256: str
    size: int


# name -> its release asset (the files of the repository's weights/ folder). A name here and not in
# BUNDLED is downloaded on first use, so taking a model out of the wheel is deleting its BUNDLED line.
RELEASED: dict[str, Release] = {
    "omc_mobilenetv2.pets": Release(
        "omc_mobilenetv2_pets.safetensors",
        "ae12bcd93c9fadd777e6c836936dabcad9897cc9ae8ee39310ca92c9c14fc2df",
        19_308_832,
    ),
    "omc_yolox_nano.bytetrack_pets": Release(
        "omc_yolox_nano_bytetrack_pets.safetensors",
        "6131c870766cde232a4a8caa820743673b014551a5022686e3773bb63f3f23f3",
        12_570_220,
    ),
}
# Where the release assets are published; $CSTRACK_WEIGHTS_URL replaces it (a mirror, file://).
RELEASE_URL = "https://github.com/cstrack/cstrack/releases/download/weights-v1"
WEIGHTS_URL_ENV = "CSTRACK_WEIGHTS_URL"
WEIGHTS_FOLDER = "weights"  # under the cache folder
DOWNLOAD_TIMEOUT_S = 60
_CHUNK = 1 << 20


def list_pretrained() -> list[str]:
    return sorted(BUNDLED.keys() | RELEASED.keys())


def is_pretrained(name: str) -> bool:
    """Whether `name` is a trained model's `arch.tag` (packaged or downloadable), not a variant."""
    return name in BUNDLED or name in RELEASED


def _file_name(name: str) -> str:
    if name in BUNDLED:
        return BUNDLED[name]
    if name in RELEASED:
        return RELEASED[name].file
    raise InputError(None, f"no pretrained model {name!r}; pretrained: {', '.join(list_pretrained())}")


def _packaged(file: str) -> Path:
    return Path(str(resources.files("cstrack.weights").joinpath(file)))


def pretrained_weights(name: str) -> Path:
    """The weights file of a pretrained model: the package's copy when there is one, else the
    cached download, else downloaded now (once); InputError when it cannot be had."""
    path = _packaged(_file_name(name))
    if path.is_file():
        return path
    if name not in RELEASED:
        raise InputError(path, f"bundled model {name!r} is missing from this installation")
    return _cached_download(RELEASED[name])


def model_card(name: str) -> Path:
    """The card of a pretrained model, in the package even when its weights are downloaded."""
    return _packaged(_file_name(name)).with_suffix(".md")


def _weights_url() -> str:
    """The folder URL the release assets are downloaded from: $CSTRACK_WEIGHTS_URL, else RELEASE_URL."""
    return (os.environ.get(WEIGHTS_URL_ENV) or RELEASE_URL).rstrip("/")


def _mismatch(path: Path, release: Release) -> str | None:
    """What tells `path` apart from the published file (its size and SHA-256), or None."""
    size, digest = path.stat().st_size, file_sha256(path)
    if (size, digest) == (release.size, release.sha256):
        return None
    return f"{size} bytes with sha256 {digest}, expected {release.size} bytes with sha256 {release.sha256}"


def _cached_download(release: Release) -> Path:
    """`release`'s file in the cache folder, checked, downloaded first when it is not there."""
    target = cache_dir() / WEIGHTS_FOLDER / release.file
    if not target.is_file():
        _download(release, target)
    elif problem := _mismatch(target, release):
        raise InputError(target, f"{problem}: not the published file; delete it to download it again")
    return target


def _reason(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    return printable(getattr(error, "reason", None) or error, QUOTE_CHARS)


def _read(url: str, limit: int, folder: Path, file: str) -> Iterator[bytes]:
    """The body at `url` in chunks, at most `limit` bytes; an unreachable URL is the one-line
    InputError that says how to place the file by hand."""
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            while limit > 0 and (chunk := response.read(min(_CHUNK, limit))):
                limit -= len(chunk)
                yield chunk
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise InputError(
            None,
            f"cstrack cannot reach {url} ({_reason(error)}); download {file} from "
            f"{url.rsplit('/', 1)[0]} into {folder} (or set ${WEIGHTS_URL_ENV} to a mirror)",
        ) from None


def _download(release: Release, target: Path) -> None:
    """Stream the release asset to a temporary file beside `target` (one byte more than published
    at most) and rename it onto `target` only when its size and SHA-256 are the published ones."""
    url = f"{_weights_url()}/{release.file}"
    temporary = temporary_path(target)
    logger.info("cstrack: downloading %s (%.1f MB) into %s", url, release.size / 1e6, target.parent)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "xb") as stream:
            for chunk in _read(url, release.size + 1, target.parent, release.file):
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        if problem := _mismatch(temporary, release):
            raise InputError(url, f"{problem}: not the published file; nothing was kept")
        os.replace(temporary, target)
    except OSError as error:
        raise InputError(target, f"cannot write: {error.strerror or error}") from error
    finally:
        temporary.unlink(missing_ok=True)


def img_size_metadata(path: str | PathLike[str], metadata: dict[str, str]) -> tuple[int, int] | None:
    """(width, height) from a weights file's header already read; None when not recorded."""
    value = metadata.get("img_size")
    if not value:
        return None
    try:
        width, height = (int(v) for v in value.split(","))
    except ValueError:
        raise InputError(path, f"unreadable 'img_size' metadata {quote(value)}; expected 'W,H'") from None
    try:
        return check_input_size((width, height), "its 'img_size' metadata")
    except InputError as error:
        raise InputError(path, error.problem) from None


def trained_img_size(path: str | PathLike[str]) -> tuple[int, int] | None:
    """The (width, height) a weights file was trained at, from its metadata; None when not recorded."""
    return img_size_metadata(path, weights_metadata(path))

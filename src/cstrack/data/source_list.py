"""Many sources named at once: paths, folders of videos, globs and `@list.txt` files, each found
source given a unique output name that keeps its relative path.

    items = expand_sources(["archive/", "extra/*.mp4", "@more.txt", "rtsp://cam/1"])
    # [SourceItem("archive/cam1/0001.mp4", "archive/cam1/0001"), ...]

Only names are listed here (no video is decoded), so a folder of thousands expands in moments and
a source that cannot be read fails alone when it is tracked. A folder is walked: a MOTChallenge
sequence (seqinfo.ini), a folder with `img1/` or with images is one source (as `open_sources`
reads it) and is not entered; video files (by extension) are sources each; other folders are
entered. Output names are the sources' paths relative to the deepest folder common to everything
named (a folder named alone is that folder), videos without their extension; webcams and streams
keep their `open_sources` names. Two sources of one output name are refused, naming both.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path, PurePosixPath

from cstrack.data.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, live_name, live_target, natural_key
from cstrack.errors import InputError

LIST_PREFIX = "@"
GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class SourceItem:
    """One source to track: what `open_sources` opens, and its output name (`cam1/0001`: the
    results go to `OUT/cam1/0001.txt`)."""

    spec: str | int
    name: str

    @property
    def folder(self) -> str:
        """The output name's folder part ('' for a name without one)."""
        parent = str(PurePosixPath(self.name).parent)
        return "" if parent == "." else parent


def expand_sources(specs: Sequence[str | int | PathLike[str]]) -> list[SourceItem]:
    """The sources that `specs` name, in the order given (a folder's in natural order)."""
    if not specs:
        raise InputError(None, "no source given")
    live: list[SourceItem] = []
    roots: list[Path] = []
    for spec in specs:
        _named(spec, live, roots, None)
    items = live + _leaf_items(roots)
    _check_unique(items)
    return items


def _named(
    spec: str | int | PathLike[str], live: list[SourceItem], roots: list[Path], listed: Path | None
) -> None:
    """Sort one spec into live sources and paths; `listed` is the list file a line came from."""
    target = live_target(spec)
    if target is not None:
        live.append(SourceItem(target, live_name(target)))
        return
    text = os.fspath(spec) if not isinstance(spec, int) else str(spec)
    path = Path(text) if listed is None else _listed(text, listed)
    if path.exists():
        roots.append(path)
    elif text.startswith(LIST_PREFIX) and listed is None:
        _read_list(Path(text[len(LIST_PREFIX) :]), live, roots)
    elif GLOB_CHARACTERS & set(str(path)):
        matches = sorted(glob.glob(str(path), recursive=True), key=natural_key)
        if not matches:
            raise InputError(path, "no file or folder matches this pattern")
        roots.extend(Path(match) for match in matches)
    else:
        raise InputError(path, "no such file or folder")


def names_many(spec: str | int | PathLike[str]) -> bool:
    """Whether `spec` may name several sources: a list file, a glob, or a folder of sources (a
    dataset root, a folder of videos), as opposed to one video, frames folder, sequence or camera."""
    if live_target(spec) is not None:
        return False
    text = os.fspath(spec) if not isinstance(spec, int) else str(spec)
    path = Path(text)
    if path.exists():
        try:
            return _is_folder_of_sources(path)
        except OSError:
            return False  # unreadable: opening it says so
    return text.startswith(LIST_PREFIX) or bool(GLOB_CHARACTERS & set(text))


def _listed(line: str, list_file: Path) -> Path:
    """A list file's line as a path: relative paths are relative to the list file's folder."""
    return list_file.parent / line


def _read_list(list_file: Path, live: list[SourceItem], roots: list[Path]) -> None:
    """The sources of a list file: one path, glob, URL or webcam index a line; blank lines and
    lines starting with # are skipped."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        problem = getattr(error, "strerror", None) or error
        raise InputError(list_file, f"cannot read this list of sources: {problem}") from None
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith(LIST_PREFIX):
            raise InputError(list_file, "a list of sources cannot name another list", line=number)
        try:
            _named(entry, live, roots, list_file)
        except InputError as error:
            raise InputError(list_file, f"{error.path}: {error.problem}", line=number) from None


def is_single_source(folder: Path) -> bool:
    """Whether a folder is one source: a MOTChallenge sequence, or a folder of frames."""
    if (folder / "seqinfo.ini").is_file() or (folder / "img1").is_dir():
        return True
    return any(entry.suffix.lower() in IMAGE_EXTENSIONS and entry.is_file() for entry in folder.iterdir())


def _leaves(root: Path, seen: set[Path]) -> Iterator[Path]:
    """The sources under `root`: itself when it is a file or a single-source folder, else its
    videos and the sources of its folders (hidden ones skipped; each real folder entered once)."""
    if root.is_file() or is_single_source(root):
        yield root
        return
    real = root.resolve()
    if real in seen:  # a symbolic link back up the tree
        return
    seen.add(real)
    for entry in sorted(root.iterdir(), key=lambda path: natural_key(path.name)):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _leaves(entry, seen)
        elif entry.suffix.lower() in VIDEO_EXTENSIONS:
            yield entry


def _leaf_items(roots: list[Path]) -> list[SourceItem]:
    """Every source under `roots`, named by its path relative to their common folder."""
    if not roots:
        return []
    tops = [Path(os.path.abspath(root)) for root in roots]
    try:
        base = Path(os.path.commonpath([top if _is_folder_of_sources(top) else top.parent for top in tops]))
        items: list[SourceItem] = []
        for root in roots:
            found = list(_leaves(root, set()))
            if not found:
                raise InputError(root, "no images, video or MOTChallenge sequences found here")
            items.extend(
                SourceItem(str(leaf), _output_name(Path(os.path.abspath(leaf)), base)) for leaf in found
            )
    except OSError as error:  # a folder without read permission, a vanished disk
        raise InputError(error.filename or roots[0], f"cannot read: {error.strerror or error}") from None
    return items


def _is_folder_of_sources(path: Path) -> bool:
    return path.is_dir() and not is_single_source(path)


def _output_name(leaf: Path, base: Path) -> str:
    """`leaf`'s path relative to `base`, as `open_sources` names it: a video or image without its
    extension, a frames folder `img1` by its sequence."""
    named = leaf.parent if leaf.name == "img1" else leaf
    relative = PurePosixPath(Path(os.path.relpath(named, base)).as_posix())
    if not relative.parts or relative.parts[0] == "..":  # `leaf` is the base or lies above it
        relative = PurePosixPath(named.name)
    return str(relative.with_suffix("") if leaf.is_file() else relative)


def _check_unique(items: list[SourceItem]) -> None:
    """Refuse two sources of one output name: their results would go to one file."""
    seen: dict[str, SourceItem] = {}
    for item in items:
        if item.name in seen:
            raise InputError(
                str(item.spec),
                f"its results would go where those of {seen[item.name].spec} go ({item.name}.txt): "
                "rename one, or track them into separate --output folders",
            )
        seen[item.name] = item

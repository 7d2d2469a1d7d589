"""Atomic file writes: a crash or an error never leaves a half-written output file behind."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import TextIO

from cstrack.errors import InputError


def same_file(first: str | PathLike[str], second: str | PathLike[str]) -> bool:
    """Whether two paths name one file: the same inode when both exist (symbolic and hard links
    included), else the same path once links and `..` are resolved."""
    a, b = Path(first), Path(second)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_not_input(
    output: str | PathLike[str], inputs: Iterable[str | PathLike[str] | None], what: str = "output"
) -> None:
    """Refuse to write `output` over one of `inputs` (None entries are skipped), before any work:
    `cstrack convert w.pt w.pt` would replace the checkpoint it reads."""
    for source in inputs:
        if source is not None and same_file(output, source):
            raise InputError(output, f"the {what} would overwrite the input {source}: choose another path")


def check_writable(path: str | PathLike[str], what: str = "results", *, file: bool = False) -> None:
    """Refuse, before any work, a folder (`file`: a file) that `what` cannot be written to: a file
    where the folder should be (`file`: a folder where the file should be), a path under a file, or
    a nearest existing folder that is not writable. Nothing is created."""
    path = Path(path)
    if file and path.is_dir():
        raise InputError(path, f"cannot write {what} here: it is a folder, not a file")
    existing = path.parent if file else path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        problem = "is a file, not a folder" if existing == path else f"{existing} is a file, not a folder"
        raise InputError(path, f"cannot write {what} here: {problem}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(path, f"cannot write {what} here: {existing} is not writable")


def temporary_path(target: Path, suffix: str = ".tmp") -> Path:
    """A hidden, unique name beside `target` (ending in `suffix`), so renaming it onto `target` is atomic."""
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}")


@contextmanager
def atomic_write(path: str | PathLike[str]) -> Iterator[TextIO]:
    """Open a temporary text file beside `path`; on success it replaces `path` in one step.

    The temporary file lives in the same folder so that `os.replace` is atomic; on any error it is
    removed and an existing file at `path` is left as it was. The parent folder is created.
    OS errors (permissions, a folder where the file should be) become InputError naming `path`.
    """
    target = Path(path)
    temporary = temporary_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # os.open with mode 0o666 lets the umask decide the permissions, as a plain open() would.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise InputError(target, f"cannot write: {error.strerror or error}") from error
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise InputError(target, f"cannot write: {error.strerror or error}") from error
        raise


def atomic_write_bytes(path: str | PathLike[str], data: bytes) -> None:
    """Binary counterpart of `atomic_write`: through the text stream's byte buffer."""
    with atomic_write(path) as stream:
        stream.buffer.write(data)

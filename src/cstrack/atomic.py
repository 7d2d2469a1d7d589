"""Atomic file writes: a crash or an error never leaves a half-written output file behind."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import TextIO

from cstrack.errors import InputError


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

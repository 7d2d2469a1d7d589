"""The one error type for bad user input: files, folders, arguments."""

from __future__ import annotations

import reprlib
from os import PathLike

#: The most characters of a value taken from a file (or given) that an error message quotes.
QUOTE_CHARS = 80


class InputError(ValueError):
    """A user-supplied file or value is missing or malformed.

    The message names the file, the line when there is one, and the problem, so the CLI can
    print it on one line and exit with status 2.
    """

    def __init__(self, path: str | PathLike | None, problem: str, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.problem = problem
        where = self.path or ""
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {problem}" if where else problem)


def printable(text: object, limit: int) -> str:
    """Text taken from a file, fit for a one-line error: cut at `limit`, control characters escaped."""
    text = str(text)
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)


_QUOTER = reprlib.Repr()
_QUOTER.maxlevel, _QUOTER.maxstring, _QUOTER.maxother = 3, QUOTE_CHARS + 2, QUOTE_CHARS


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """`repr(value)` for an error message, at most `limit` characters (then an ellipsis): a 200 MB
    field or a YAML alias bomb (a list nesting itself 9 times 9 times ...) must not become a
    200 MB "one-line" error; reprlib bounds the work, not only the result."""
    return printable(_QUOTER.repr(value), limit)


def check_options(what: str, owner: object, rules: dict[str, tuple[bool, str]]) -> None:
    """Raise one InputError naming every option of `owner` that breaks its rule, and the rule.

    `rules` maps an attribute name to (valid, the rule in words), e.g. `"lr": (lr > 0, "> 0")`.
    """
    broken = [
        f"{name}={quote(getattr(owner, name))} (must be {rule})"
        for name, (ok, rule) in rules.items()
        if not ok
    ]
    if broken:
        raise InputError(None, f"invalid {what} options: {'; '.join(broken)}")

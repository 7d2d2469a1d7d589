"""The one error type for bad user input: files, folders, arguments."""

from __future__ import annotations

from os import PathLike


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


def check_options(what: str, owner: object, rules: dict[str, tuple[bool, str]]) -> None:
    """Raise one InputError naming every option of `owner` that breaks its rule, and the rule.

    `rules` maps an attribute name to (valid, the rule in words), e.g. `"lr": (lr > 0, "> 0")`.
    """
    broken = [
        f"{name}={getattr(owner, name)!r} (must be {rule})" for name, (ok, rule) in rules.items() if not ok
    ]
    if broken:
        raise InputError(None, f"invalid {what} options: {'; '.join(broken)}")

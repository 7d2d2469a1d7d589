"""Defaults and choices that `--help` shows, read from the source of the modules that define them.

Those modules import torch, cv2 or TrackEval, which takes seconds before any help is printed;
parsing their source with `ast` takes milliseconds and keeps each value defined once, next to the
code that uses it. A value that is not a plain literal there (a call, an expression) or whose
source is not at hand is taken by importing its module: slow, never wrong.
"""

from __future__ import annotations

import ast
import importlib
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the cstrack package
# What reading a value from source raises when it is not a literal there or the file is missing.
NOT_READABLE = (OSError, SyntaxError, KeyError, ValueError, TypeError)


class Definitions(NamedTuple):
    values: dict[str, ast.expr]  # `NAME` or `Class.field` -> the expression assigned to it
    imports: dict[str, tuple[str, str]]  # NAME -> (MODULE, NAME) of `from MODULE import NAME`


def assignment(node: ast.stmt) -> tuple[str, ast.expr] | None:
    """(name, value) of `NAME = value` or `NAME: T = value`; None for any other statement."""
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        return node.target.id, node.value
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    return None


@cache
def definitions(module: str) -> Definitions:
    """Top-level assignments, class-body fields and absolute `from` imports of a module's source."""
    path = SOURCE_ROOT.joinpath(*module.split(".")).with_suffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    values: dict[str, ast.expr] = {}
    imports: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if found := assignment(item):
                    values[f"{node.name}.{found[0]}"] = found[1]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                imports[alias.asname or alias.name] = (node.module, alias.name)
        elif found := assignment(node):
            values[found[0]] = found[1]
    return Definitions(values, imports)


def definition(module: str, name: str) -> ast.expr:
    """The expression that defines `module.name`, following plain names and imports to their source."""
    found = definitions(module)
    if name in found.imports:
        return definition(*found.imports[name])
    node = found.values[name]
    return definition(module, node.id) if isinstance(node, ast.Name) else node


def imported(module: str, name: str) -> Any:
    """`module.name` (`NAME` or `Class.field`) the slow way, by importing the module."""
    value = importlib.import_module(module)
    for attribute in name.split("."):
        value = getattr(value, attribute)
    return value


def source_value(module: str, name: str) -> Any:
    """`module.name` (`NAME` or `Class.field`, a dataclass default), without importing the module."""
    try:
        return ast.literal_eval(definition(module, name))
    except NOT_READABLE:
        return imported(module, name)


def source_keys(module: str, name: str) -> tuple[Any, ...]:
    """The keys of the dict `module.name`, whose values need not be literals."""
    try:
        node = definition(module, name)
        if not isinstance(node, ast.Dict):
            raise TypeError(f"{module}.{name} is not a dict display")
        return tuple(ast.literal_eval(key) for key in node.keys)  # a `**mapping` key (None) is refused
    except NOT_READABLE:
        return tuple(imported(module, name))


def _function_node(module: str, qualname: str) -> ast.FunctionDef:
    """The `def` of "function", "Class.method" or "Class" (its `__init__`) in a module's source."""
    path = SOURCE_ROOT.joinpath(*module.split(".")).with_suffix(".py")
    scope: list[ast.stmt] = ast.parse(path.read_text(encoding="utf-8"), str(path)).body
    for name in [*qualname.split("."), "__init__"]:
        node = next((n for n in scope if getattr(n, "name", None) == name), None)
        if isinstance(node, ast.FunctionDef):
            return node
        if not isinstance(node, ast.ClassDef):
            raise KeyError(f"{module}:{qualname} has no {name}")
        scope = node.body
    raise KeyError(f"{module}:{qualname} is not a function")


def signature_default(owner: str, keyword: str) -> Any:
    """The default of argument `keyword` of "module:function" or "module:Class" (its `__init__`),
    read from source; one that is not a literal, nor a name bound to one, is taken by importing."""
    module, _, qualname = owner.partition(":")
    try:
        arguments = _function_node(module, qualname).args
        positional = [*arguments.posonlyargs, *arguments.args]
        defaults = dict(
            zip([a.arg for a in positional[len(positional) - len(arguments.defaults) :]], arguments.defaults)
        )
        defaults.update(
            (a.arg, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults) if d is not None
        )
        value = defaults[keyword]
        if isinstance(value, ast.Name):
            value = definition(module, value.id)
        return ast.literal_eval(value)
    except NOT_READABLE:
        import inspect

        return inspect.signature(imported(module, qualname)).parameters[keyword].default

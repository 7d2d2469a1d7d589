"""The README's Layout table is the package layering as the code has it: every package of
src/cstrack is in it, and each imports at module level only the packages its row names, all
listed before it (a package's own lazy imports, inside functions, are the `cli`'s alone)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "cstrack"
GROUND_FLOOR = "ground floor"


def layout_rows() -> list[tuple[list[str], set[str], bool]]:
    """(packages, packages they may import, whether the rest may be imported lazily) per row."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Layout") : readme.index("## Development")]
    cells = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith("| `")
    ]
    ground = re.findall(r"`(\w+)`", cells[0][0])
    return [
        (
            re.findall(r"`(\w+)`", names),
            set(re.findall(r"`(\w+)[.`]", imports)) | (set(ground) if GROUND_FLOOR in imports else set()),
            "lazily" in imports,
        )
        for names, _, imports in cells
    ]


def _imports(node: ast.AST, lazy: bool) -> list[str]:
    """The modules imported under `node`, inside functions too with `lazy`."""
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not lazy and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return []
    return [module for child in ast.iter_child_nodes(node) for module in _imports(child, lazy)]


def imported_packages(package: str, lazy: bool) -> set[str]:
    """The cstrack packages that `package` (a folder or a module) imports: at module level, or
    also inside functions with `lazy`. The package root (`cstrack.__version__`) is left out."""
    path = PACKAGE / package
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    modules = [module for file in files for module in _imports(ast.parse(file.read_text()), lazy)]
    found = {module.split(".")[1] for module in modules if module.startswith("cstrack.")}
    return found - {package}


def test_every_package_has_a_row() -> None:
    listed = {name for names, _, _ in layout_rows() for name in names}
    packages = {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    modules = {path.stem for path in PACKAGE.glob("*.py") if not path.stem.startswith("__")}
    assert packages | modules == listed


def test_each_package_imports_what_its_row_names_and_only_from_above() -> None:
    rows = layout_rows()
    above: set[str] = set()
    for names, allowed, lazy in rows:
        for name in names:
            eager = imported_packages(name, lazy=False)
            assert eager <= allowed, f"{name} imports {sorted(eager - allowed)}, which its row does not name"
            assert eager <= above | set(names), f"{name} imports {sorted(eager - above)}, listed after it"
            if not lazy:
                late = imported_packages(name, lazy=True) - allowed
                assert not late, (
                    f"{name} imports {sorted(late)} inside functions, which its row does not name"
                )
        above |= set(names)

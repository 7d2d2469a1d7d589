"""Optional dependencies: import one, or say in one line which extra of cstrack brings it.

    onnx = require("onnx", "onnx", feature="ONNX export")  # the module, or InputError:
    # "ONNX export needs onnx, which is not installed: pip install 'cstrack[onnx]'"

The CLI prints an `InputError` on one line and exits with status 2, so a command that needs a
package of an extra fails with what to install instead of a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from cstrack.errors import InputError


def require(module: str, extra: str, *, feature: str | None = None) -> ModuleType:
    """Import and return `module` (dotted names too), or raise InputError naming `extra`.

    Only the module (or a package above it) being absent becomes an InputError; an installed
    package that fails to import for another reason (a broken build, a missing system library)
    raises its own error, which is what its diagnosis needs.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if not missing or not (module == missing or module.startswith(missing + ".")):
            raise
        what = f"{feature} needs {missing}" if feature else f"{missing} is needed"
        raise InputError(None, f"{what}, which is not installed: pip install 'cstrack[{extra}]'") from None

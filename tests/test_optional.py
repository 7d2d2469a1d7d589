"""`cstrack.optional.require`: the module, or one InputError that names the extra to install."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cstrack.errors import InputError
from cstrack.optional import require


def test_present_module_is_returned() -> None:
    assert require("json", "none") is json
    assert require("json.decoder", "none") is sys.modules["json.decoder"]


def test_missing_module_names_the_extra() -> None:
    with pytest.raises(InputError) as caught:
        require("cstrack_no_such_module", "onnx", feature="ONNX export")
    assert str(caught.value) == (
        "ONNX export needs cstrack_no_such_module, which is not installed: pip install 'cstrack[onnx]'"
    )
    with pytest.raises(InputError, match=r"^cstrack_no_such_module is needed, .*'cstrack\[tune\]'$"):
        require("cstrack_no_such_module", "tune")


def test_missing_package_of_a_dotted_name_is_named() -> None:
    """The absent top-level package is what to install, not the submodule asked for."""
    with pytest.raises(InputError, match=r"needs cstrack_no_such_package, .*'cstrack\[onnx\]'"):
        require("cstrack_no_such_package.capi.state", "onnx", feature="X")
    with pytest.raises(InputError, match=r"needs json\.no_such_submodule,"):
        require("json.no_such_submodule", "onnx", feature="X")


def test_broken_module_keeps_its_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module that is there but fails on a missing dependency of its own is not 'not installed'."""
    (tmp_path / "cstrack_broken_module.py").write_text("import cstrack_its_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as caught:
        require("cstrack_broken_module", "onnx")
    assert caught.value.name == "cstrack_its_missing_dependency"


def test_cli_without_onnx_says_so(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """`cstrack export` where onnx is absent (None in sys.modules hides it): exit 2, one line."""
    from cstrack.cli.main import main

    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.delitem(sys.modules, "cstrack.export.onnx", raising=False)
    assert main(["export", "--model", "omc_n", "--output", "unused.onnx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("cstrack export: error: ") and "needs onnx" in err
    assert err.rstrip().endswith("pip install 'cstrack[onnx]'")

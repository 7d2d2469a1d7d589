"""The wheel: `python -m build` makes an sdist and, from it, a wheel under 30 MB that carry the
bundled weights (and no superseded ones: those are release assets), every model card and py.typed;
a fresh virtualenv that installs torch and then that wheel (no extras) renders and tracks a
sequence, downloads a superseded model (from the checkout's weights/, as tests/conftest.py sets),
`cstrack --version` is the package's version, and what needs the `onnx` extra says so in one line.

Slow (40 s on 2 cores with pip's cache warm, as after `make setup`: mostly pip installing torch
and the core dependencies into the fresh environment; 5 s the build, 15 s tracking 8 frames). The
build runs without isolation, with the `build` and `setuptools` of the test extra, so it needs no
index; the fresh environment installs torch and the core dependencies through pip the way
`make setup` does.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import cstrack
from cstrack.models.pretrained import BUNDLED, RELEASED, list_pretrained, model_card

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# What the build reads; copied so that it writes build/ and *.egg-info outside the checkout.
BUILD_INPUTS = ("pyproject.toml", "README.md", "CHANGELOG.md", "MANIFEST.in", "LICENSE", "NOTICE")
BUNDLED_WEIGHTS = {f"cstrack/weights/{file}" for file in BUNDLED.values()}
PACKAGE_DATA = {"cstrack/py.typed", *BUNDLED_WEIGHTS} | {
    f"cstrack/weights/{model_card(name).name}" for name in list_pretrained()
}
SUPERSEDED = sorted(name for name in RELEASED if name not in BUNDLED)  # downloaded on first use
WHEEL_MAX_BYTES = 30 * 10**6
OPTIONAL = ("onnx", "onnxruntime", "optuna")  # the extras' packages, absent from a core install
INSTALL_TIMEOUT_S = 1800


def _run(command: list[str | Path], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run outside the checkout, with nothing from this environment on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"{result.args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def _build(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    )
    dist = tmp_path / "dist"
    # sdist first, then the wheel from the unpacked sdist: the wheel proves the sdist complete.
    _ok(_run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source], tmp_path))
    (wheel,) = dist.glob("cstrack-*.whl")
    (sdist,) = dist.glob("cstrack-*.tar.gz")
    return wheel, sdist


def test_wheel_installs_and_tracks_without_extras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    version = cstrack.__version__
    wheel, sdist = _build(tmp_path)
    assert wheel.name == f"cstrack-{version}-py3-none-any.whl"
    assert sdist.name == f"cstrack-{version}.tar.gz"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"cstrack-{version}.dist-info/METADATA").decode()
    assert names >= PACKAGE_DATA
    assert {n for n in names if n.endswith(".safetensors")} == BUNDLED_WEIGHTS
    assert wheel.stat().st_size < WHEEL_MAX_BYTES, f"{wheel.stat().st_size / 1e6:.1f} MB"
    assert f"\nVersion: {version}\n" in metadata
    core = [
        line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert not [line for line in core if any(f" {package}" in line for package in OPTIONAL)], core
    for extra in ("onnx", "tune", "bench", "test"):
        assert f"Provides-Extra: {extra}\n" in metadata
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {f"src/{name}" for name in PACKAGE_DATA} | {"CHANGELOG.md", "README.md"} <= in_sdist
    assert {n for n in in_sdist if n.endswith(".safetensors")} == {f"src/{n}" for n in BUNDLED_WEIGHTS}

    venv = tmp_path / "venv"
    python, cli = venv / "bin" / "python", venv / "bin" / "cstrack"
    _ok(_run([sys.executable, "-m", "venv", venv], tmp_path))
    torch = importlib.metadata.version("torch").split("+")[0]  # the pin this environment has (Makefile's)
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _ok(_run([*pip, f"torch=={torch}"], tmp_path, timeout=INSTALL_TIMEOUT_S))
    _ok(_run([*pip, wheel], tmp_path, timeout=INSTALL_TIMEOUT_S))

    probe = (
        "import importlib.util, cstrack; print(cstrack.__file__); "
        f"print(*[m for m in {OPTIONAL!r} if importlib.util.find_spec(m)])"
    )
    location, present = _ok(_run([python, "-c", probe], tmp_path)).splitlines()
    assert Path(location).is_relative_to(venv), location
    assert present == "", f"a core install pulled in {present}"

    assert _ok(_run([cli, "--version"], tmp_path)).strip() == f"cstrack {version}"
    monkeypatch.setenv("CSTRACK_CACHE", str(tmp_path / "cache"))  # empty: the model is downloaded
    download = (
        f"from cstrack.models import model_from_spec; print(model_from_spec({SUPERSEDED[0]!r}).weights)"
    )
    cached = Path(_ok(_run([python, "-c", download], tmp_path)).strip())
    assert cached == tmp_path / "cache" / "weights" / RELEASED[SUPERSEDED[0]].file
    data, results = tmp_path / "synth", tmp_path / "results"
    args = ["--sequences", 1, "--frames", 8, "--width", 320, "--height", 240, "--seed", 3]
    _ok(_run([cli, "synth", data, *args], tmp_path))
    _ok(_run([cli, "track", data / "SYNTH-01", "--output", results, "--format", "mot", "--quiet"], tmp_path))
    rows = [line.split(",") for line in (results / "SYNTH-01.txt").read_text().splitlines()]
    assert rows, "no tracks on the rendered sequence"
    assert all(len(row) == 10 and 1 <= int(row[0]) <= 8 for row in rows)

    refused = _run([cli, "export", "--model", "omc_yolox_nano.bytetrack_pets"], tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.rstrip().endswith("pip install 'cstrack[onnx]'")

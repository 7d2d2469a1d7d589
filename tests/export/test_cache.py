"""The cache of exported ONNX graphs: checked on load, held to its size cap, listed and cleared.

A graph in a cache entry is used only when its metadata records the SHA-256 of the weights being
loaded and of the graph itself: another model's graph (or an edited one) copied into an entry is
exported anew. Beyond $CSTRACK_CACHE_MAX_MB the least recently used entries are removed, each by a
rename before its deletion, so that a concurrent reader finds a whole entry or none.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import cstrack.export.cache as cache
from cstrack.backends.onnx import OnnxBackend
from cstrack.cli.main import main
from cstrack.errors import InputError
from cstrack.export.onnx import recheck_path
from cstrack.models import create_model, save_weights

SIZE = (128, 96)
MB = 1 << 20
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[torch.nn.Module, Path]]:
    """Two omc_n networks of different random weights, each with its weights file."""
    folder = tmp_path_factory.mktemp("weights")
    found = {}
    for seed, name in enumerate(("mine", "other")):
        torch.manual_seed(seed)
        model = create_model("omc_n").eval()
        found[name] = (model, save_weights(model, folder / f"{name}.safetensors", {"arch": "omc_n"}))
    return found


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CSTRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CSTRACK_CACHE_MAX_MB", raising=False)
    return tmp_path / "cache" / "onnx"


def no_export(*args, **kwargs):
    raise AssertionError("exported again")


def recorded(path: Path) -> dict[str, str]:
    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}


def base_outputs(backend) -> list[np.ndarray]:
    x = torch.rand(1, 3, SIZE[1], SIZE[0], generator=torch.Generator().manual_seed(0))
    output = backend.run(x)
    return [output.decoded.boxes.numpy(), output.decoded.obj.numpy(), output.embedding.numpy()]


def test_another_models_graph_in_an_entry_is_detected_and_exported_anew(
    models, root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (model, weights), (other, other_weights) = models["mine"], models["other"]
    expected = base_outputs(OnnxBackend.from_cache(model, weights, SIZE))
    base = cache.cache_entry(model, weights, SIZE, False)
    assert recorded(base)[cache.WEIGHTS_SHA256] == cache.file_sha256(weights)
    assert recorded(recheck_path(base))[cache.WEIGHTS_SHA256] == cache.file_sha256(weights)
    OnnxBackend.from_cache(other, other_weights, SIZE)
    other_base = cache.cache_entry(other, other_weights, SIZE, False)
    for source, target in ((other_base, base), (recheck_path(other_base), recheck_path(base))):
        shutil.copyfile(source, target)  # the other model's graphs where this model's belong

    with caplog.at_level(logging.WARNING, logger="cstrack"):
        backend = OnnxBackend.from_cache(model, weights, SIZE)
    assert "re-exporting the cached ONNX graphs" in caplog.text
    assert "not exported from these weights" in caplog.text
    for got, want in zip(base_outputs(backend), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert recorded(base)[cache.WEIGHTS_SHA256] == cache.file_sha256(weights)  # written anew
    monkeypatch.setattr(cache, "export_onnx", no_export)
    OnnxBackend.from_cache(model, weights, SIZE)  # and used from now on


def test_an_edited_graph_is_detected_by_its_own_hash(
    models, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model, weights = models["mine"]
    OnnxBackend.from_cache(model, weights, SIZE)
    base = cache.cache_entry(model, weights, SIZE, False)
    proto = onnx.load(str(base))
    weight = proto.graph.initializer[0]
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) + 1, weight.name))
    onnx.save(proto, str(base))  # the recorded hashes kept, one weight changed
    with caplog.at_level(logging.WARNING, logger="cstrack"):
        OnnxBackend.from_cache(model, weights, SIZE)
    assert "the graph is not the one exported" in caplog.text
    assert recorded(base)[cache.GRAPH_SHA256] == cache.graph_sha256(onnx.load(str(base)))


def fake_entry(root: Path, name: str, size: int, age: float) -> Path:
    """An entry folder of `size` bytes last used `age` seconds ago."""
    folder = root / name
    folder.mkdir(parents=True)
    base = folder / cache.BASE_NAME
    base.write_bytes(b"\0" * size)
    used = time.time() - age
    os.utime(base, (used, used))
    return folder


def test_prune_removes_the_least_recently_used_entries_first(root: Path) -> None:
    old, older, oldest = (fake_entry(root, name, MB, age) for name, age in (("a", 10), ("b", 20), ("c", 30)))
    assert [entry.folder for entry in cache.cache_entries()] == [oldest, older, old]
    removed = cache.prune(2 * MB, keep=oldest)  # the entry in use stays, however old
    assert [entry.folder for entry in removed] == [older]
    assert sorted(path.name for path in root.iterdir()) == ["a", "c"]  # nothing hidden left behind
    assert cache.prune(2 * MB) == []


def test_an_export_holds_the_cache_to_its_cap_and_a_load_marks_its_entry_used(
    models, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, weights = models["mine"]
    stale = [fake_entry(root, f"stale{k}", MB, 100 + k) for k in range(3)]
    monkeypatch.setenv("CSTRACK_CACHE_MAX_MB", "2.5")  # room for about two of the stale entries
    OnnxBackend.from_cache(model, weights, SIZE)
    entry = cache.cache_entry(model, weights, SIZE, False).parent
    assert [e.folder for e in cache.cache_entries()] == [entry]  # the new one is over the cap alone
    assert not any(folder.exists() for folder in stale)

    monkeypatch.setenv("CSTRACK_CACHE_MAX_MB", "500")
    fresh = fake_entry(root, "fresh", MB, 0)
    os.utime(entry / cache.BASE_NAME, (0, 0))  # used long ago
    monkeypatch.setattr(cache, "export_onnx", no_export)
    OnnxBackend.from_cache(model, weights, SIZE)
    assert [e.folder for e in cache.cache_entries()] == [fresh, entry]  # the load made it the newest


@pytest.mark.parametrize("value", ["lots", "-1", "nan", "inf"])
def test_a_bad_cap_is_refused_before_any_export(
    models, root: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CSTRACK_CACHE_MAX_MB", value)
    monkeypatch.setattr(cache, "export_onnx", no_export)
    with pytest.raises(InputError, match="CSTRACK_CACHE_MAX_MB=.*expected megabytes, a number >= 0"):
        OnnxBackend.from_cache(*models["mine"], SIZE)


def test_an_entry_is_renamed_away_before_it_is_deleted(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader never sees an entry half deleted: by the time deletion starts, the name is gone."""
    folder = fake_entry(root, "entry", MB, 0)
    seen = []
    delete = shutil.rmtree

    def rmtree(path, ignore_errors=False):
        seen.append((Path(path).name, folder.exists()))
        delete(path, ignore_errors=ignore_errors)

    monkeypatch.setattr(cache.shutil, "rmtree", rmtree)
    assert cache.remove_entry(folder)
    ((hidden, still_there),) = seen
    assert hidden.startswith(".entry.") and hidden.endswith(".removed") and not still_there
    assert not cache.remove_entry(folder)  # another process got there first: nothing to do
    assert list(root.iterdir()) == []


def test_a_reader_whose_entry_is_removed_meanwhile_exports_anew_without_a_warning(
    models, root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model, weights = models["mine"]
    OnnxBackend.from_cache(model, weights, SIZE)
    base = cache.cache_entry(model, weights, SIZE, False)
    load = cache._load

    def load_then_lose_the_entry(path: Path, digest: str):
        graph = load(path, digest)
        if path == base:  # another process prunes the entry between the two graphs
            cache.remove_entry(base.parent)
        return graph

    monkeypatch.setattr(cache, "_load", load_then_lose_the_entry)
    with caplog.at_level(logging.WARNING, logger="cstrack"):
        backend = OnnxBackend.from_cache(model, weights, SIZE)
    assert backend.has_recheck
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert base.is_file() and recheck_path(base).is_file()


def test_cache_list_and_clear(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_entry(root, "older-128x96-0123", 2 * MB, 60)
    fake_entry(root, "newer-128x96-4567", MB, 0)
    (root / ".gone-128x96.123.abcd.removed").mkdir()  # left by a removal that was killed
    assert main(["cache", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines[:2]] == ["older-128x96-0123", "newer-128x96-4567"]
    assert lines[0].split()[:2] == ["2.0", "MB"]
    assert lines[2] == f"2 entries, 3.0 MB of at most 500.0 MB in {root.parent}"
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out == f"removed 2 entries, 3.0 MB, from {root.parent}\n"
    assert list(root.iterdir()) == []
    assert main(["cache", "list"]) == 0
    assert capsys.readouterr().out.startswith("0 entries, 0.0 MB")

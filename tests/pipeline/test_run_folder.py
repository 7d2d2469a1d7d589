"""Numbered run folders: exp, exp2, exp3 ...; --exist-ok reuses the last."""

from __future__ import annotations

from pathlib import Path

from cstrack.pipeline.run_folder import next_run_folder


def test_run_folders_are_numbered_and_exist_ok_takes_the_last(tmp_path: Path):
    root = tmp_path / "runs"
    assert next_run_folder(root) == root / "exp"  # the root need not exist
    assert next_run_folder(root, exist_ok=True) == root / "exp"
    (root / "exp").mkdir(parents=True)
    assert next_run_folder(root) == root / "exp2"
    for name in ("exp3", "exp10", "expert", "exp1"):
        (root / name).mkdir()
    (root / "exp11").write_text("a file, not a run")
    assert next_run_folder(root) == root / "exp11"
    assert next_run_folder(root, exist_ok=True) == root / "exp10"
    assert next_run_folder(root, "other") == root / "other"

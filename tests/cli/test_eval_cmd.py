"""`cstrack eval` end to end: table and JSON on real data, one-line errors with exit status 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cstrack.data import SequenceInfo, write_seqinfo

SEQUENCE = "TUD-Campus"


def run_cstrack(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cstrack", *map(str, args)], check=False, capture_output=True, text=True
    )


@pytest.fixture()
def campus(shared_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """GT_ROOT given as the sequence folder itself (71 frames), and RES_DIR with TUD-Campus.txt."""
    source = shared_data / "metrics" / SEQUENCE
    sequence = tmp_path / SEQUENCE
    (sequence / "gt").mkdir(parents=True)
    shutil.copy(source / "gt.txt", sequence / "gt" / "gt.txt")
    write_seqinfo(sequence / "seqinfo.ini", SequenceInfo(SEQUENCE, 25, 71, 640, 480, "img1", ".jpg"))
    (tmp_path / "results").mkdir()
    shutil.copy(source / "test.txt", tmp_path / "results" / f"{SEQUENCE}.txt")
    return sequence, tmp_path / "results"


def test_eval_prints_table_and_writes_json(
    shared_data: Path, campus: tuple[Path, Path], tmp_path: Path
) -> None:
    gt_root, results_dir = campus
    out = tmp_path / "report" / "scores.json"
    completed = run_cstrack(
        "eval", "--gt", gt_root, "--results", results_dir, "--benchmark", "MOT15", "--json", out
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].split()[:6] == ["Sequence", "HOTA", "DetA", "AssA", "LocA", "MOTA"]
    assert lines[1].split()[:6] == [SEQUENCE, "39.1", "41.8", "36.9", "77.0", "52.6"]
    assert lines[2].startswith("COMBINED")

    reference = json.loads((shared_data / "metrics" / "trackeval_reference.json").read_text())[SEQUENCE]
    written = json.loads(out.read_text())
    assert set(written) == {"sequences", "combined"}
    assert written["sequences"][SEQUENCE] == written["combined"]
    assert written["combined"]["IDF1"] == pytest.approx(reference["IDF1"], abs=1e-12)
    assert written["combined"]["FP"] == reference["CLR_FP"]
    assert [entry.name for entry in out.parent.iterdir()] == ["scores.json"]


def assert_one_line_error(completed: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cstrack eval: error: "), completed.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_gt_root_is_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-gt"
    tmp_path.joinpath("results").mkdir()
    completed = run_cstrack("eval", "--gt", missing, "--results", tmp_path / "results")
    assert_one_line_error(completed, str(missing), "folder not found")


def test_malformed_result_line_is_one_line_error_with_file_and_line(campus: tuple[Path, Path]) -> None:
    gt_root, results_dir = campus
    results = results_dir / f"{SEQUENCE}.txt"
    lines = results.read_text().splitlines()
    lines[4] = "5,3,not-a-number,274.5,57.3,130.0,-1,-1,-1,-1"
    results.write_text("\n".join(lines) + "\n")
    completed = run_cstrack("eval", "--gt", gt_root, "--results", results_dir, "--benchmark", "MOT15")
    assert_one_line_error(completed, f"{results}:5:", "field 3 is not a number")

"""`cstrack eval` end to end: table and JSON on real data, one-line errors with exit status 2."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
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


def run_cstrack_capped(*args: str | Path, memory_bytes: int = 2 << 30) -> subprocess.CompletedProcess[str]:
    """`run_cstrack` with the child's address space capped: a runaway allocation fails as
    MemoryError there instead of taking the machine's memory (the OOM killer struck at 23 GB)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return subprocess.run(
        [sys.executable, "-m", "cstrack", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        preexec_fn=cap,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


def set_seq_length(sequence: Path, seq_length: int) -> None:
    write_seqinfo(sequence / "seqinfo.ini", SequenceInfo(SEQUENCE, 25, seq_length, 640, 480, "img1", ".jpg"))


def test_huge_seq_length_scores_as_the_true_length_fast_in_little_memory(
    campus: tuple[Path, Path], tmp_path: Path
) -> None:
    gt_root, results_dir = campus
    true_json, huge_json = tmp_path / "true.json", tmp_path / "huge.json"
    common = ("eval", "--gt", gt_root, "--results", results_dir, "--benchmark", "MOT15", "--json")
    assert run_cstrack_capped(*common, true_json).returncode == 0
    set_seq_length(gt_root, 3_000_000_000)
    start = time.perf_counter()
    completed = run_cstrack_capped(*common, huge_json)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert time.perf_counter() - start < 60
    assert completed.stdout.splitlines()[1].split()[:6] == [SEQUENCE, "39.1", "41.8", "36.9", "77.0", "52.6"]
    assert json.loads(huge_json.read_text()) == json.loads(true_json.read_text())


def test_results_beyond_seq_length_are_still_refused(campus: tuple[Path, Path]) -> None:
    gt_root, results_dir = campus
    set_seq_length(gt_root, 70)
    completed = run_cstrack("eval", "--gt", gt_root, "--results", results_dir, "--benchmark", "MOT15")
    assert_one_line_error(completed, "frame 71 is outside the sequence (seqLength 70)")


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (["2,3,116.37,265.2,0,142.64,-1,-1,-1,-1"], "box width is not positive: '0'"),
        (["2,3,116.37,265.2,62.858,-142.64,-1,-1,-1,-1"], "box height is not positive: '-142.64'"),
        (["2,3,116.37,265.2,1e308,1e308,-1,-1,-1,-1"], "box width is beyond 1000000 pixels: '1e308'"),
        (["1e19,3,116.37,265.2,62.858,142.64,-1,-1,-1,-1"], "frame is beyond 2147483647: '1e19'"),
        (
            [
                "2,1e19,116.37,265.2,62.858,142.64,-1,-1,-1,-1",
                "2,2e19,267.86,202.71,77.704,176.33,-1,-1,-1,-1",
            ],
            "id is outside -2147483648..2147483647: '1e19'",
        ),
    ],
)
def test_bad_boxes_frames_and_ids_are_one_line_errors_with_file_and_line(
    campus: tuple[Path, Path], rows: list[str], problem: str
) -> None:
    gt_root, results_dir = campus
    results = results_dir / f"{SEQUENCE}.txt"
    lines = results.read_text().splitlines()
    lines[4 : 4 + len(rows)] = rows
    results.write_text("\n".join(lines) + "\n")
    completed = run_cstrack("eval", "--gt", gt_root, "--results", results_dir, "--benchmark", "MOT15")
    assert_one_line_error(completed, f"{results}:5:", problem)


@pytest.mark.parametrize("data", [b"\x00\x01\x02\n\x03", b"\x1c\x1d\x1e\n\x1f"])
def test_control_bytes_gt_is_malformed_not_empty(campus: tuple[Path, Path], data: bytes) -> None:
    gt_root, results_dir = campus
    gt = gt_root / "gt" / "gt.txt"
    gt.write_bytes(data)
    completed = run_cstrack("eval", "--gt", gt_root, "--results", results_dir, "--benchmark", "MOT15")
    assert_one_line_error(completed, f"{gt}:1:", "control or non-ASCII character")


def test_blank_gt_still_means_no_rows(campus: tuple[Path, Path], tmp_path: Path) -> None:
    gt_root, results_dir = campus
    (gt_root / "gt" / "gt.txt").write_bytes(b" \t\n\n")
    out = tmp_path / "scores.json"
    completed = run_cstrack(
        "eval", "--gt", gt_root, "--results", results_dir, "--benchmark", "MOT15", "--json", out
    )
    assert completed.returncode == 0, completed.stderr
    combined = json.loads(out.read_text())["combined"]
    assert (combined["FP"], combined["TP"], combined["MOTA"]) == (222, 0, -222.0)


def test_seqinfo_with_a_bom_is_read(campus: tuple[Path, Path]) -> None:
    gt_root, results_dir = campus
    seqinfo = gt_root / "seqinfo.ini"
    seqinfo.write_bytes(b"\xef\xbb\xbf" + seqinfo.read_bytes())
    completed = run_cstrack("eval", "--gt", gt_root, "--results", results_dir, "--benchmark", "MOT15")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[1].split()[:6] == [SEQUENCE, "39.1", "41.8", "36.9", "77.0", "52.6"]


def test_seqinfo_syntax_error_is_one_line_with_file_and_line(campus: tuple[Path, Path]) -> None:
    gt_root, results_dir = campus
    seqinfo = gt_root / "seqinfo.ini"
    seqinfo.write_text(seqinfo.read_text() + "imWidth=800\n")
    completed = run_cstrack("eval", "--gt", gt_root, "--results", results_dir)
    assert_one_line_error(
        completed, f"{seqinfo}:9:", "not a valid ini file: key 'imwidth' appears twice in [Sequence]"
    )


def test_results_with_more_ids_than_can_be_scored_is_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The limit lowered to 8: ten ids in the results and two in the ground truth are refused."""
    from cstrack.cli.main import main
    from cstrack.evaluation import benchmark

    monkeypatch.setattr(benchmark, "MAX_SCORED_IDS", 8)
    sequence, results = tmp_path / "SEQ", tmp_path / "results"
    (sequence / "gt").mkdir(parents=True)
    (sequence / "gt" / "gt.txt").write_text("1,1,10,10,20,40,1,1,1\n1,2,50,10,20,40,1,1,1\n")
    write_seqinfo(sequence / "seqinfo.ini", SequenceInfo("SEQ", 25, 10, 640, 480, "img1", ".jpg"))
    results.mkdir()
    (results / "SEQ.txt").write_text("".join(f"{k},{k},10,10,20,40,0.9,-1,-1,-1\n" for k in range(1, 11)))
    assert main(["eval", "--gt", str(sequence), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"cstrack eval: error: {results / 'SEQ.txt'}: 10 distinct track ids in the results")
    assert "(2 in the ground truth): a sequence is scored with at most 8 ids" in err


def test_eval_takes_mot15_rules_for_mot15_gt(
    campus: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from cstrack.cli.main import main

    gt_root, results_dir = campus
    assert main(["eval", "--gt", str(gt_root), "--results", str(results_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:6] == [
        SEQUENCE,
        "39.1",
        "41.8",
        "36.9",
        "77.0",
        "52.6",
    ]

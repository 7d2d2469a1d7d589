"""`cstrack track` on several sources: lists, globs and folders in one summary; resume; a failing
source exits 1 once the others are done; mistakes are one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cstrack.cli.main import main
from cstrack.data.synth.scene import SynthConfig
from cstrack.data.synth.write import generate_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli_batch") / "data"
    generate_dataset(root, SynthConfig(frames=6, width=320, height=192, people=3), sequences=2, seed=2)
    return root


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["track", *args, "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_list_and_a_glob_track_into_one_summary_and_a_rerun_resumes(capsys, dataset: Path, tmp_path: Path):
    listing = tmp_path / "sources.txt"
    listing.write_text(f"# the first sequence\n{dataset / 'SYNTH-01'}\n")
    out = tmp_path / "out"
    code, printed, _ = run_cli(capsys, f"@{listing}", str(dataset / "*-02"), "--output", str(out), "--eval")
    assert code == 0
    assert sorted(path.name for path in out.glob("*.txt")) == ["SYNTH-01.txt", "SYNTH-02.txt"]
    lines = printed.splitlines()
    assert lines[0].split() == ["source", "status", "frames", "ms/frame", "HOTA", "MOTA", "IDF1"]
    assert [line.split()[:3] for line in lines[1:3]] == [["SYNTH-01", "done", "6"], ["SYNTH-02", "done", "6"]]
    assert lines[3].startswith("COMBINED")
    code, printed, _ = run_cli(capsys, str(dataset), "--output", str(out), "--eval")
    assert code == 0 and "2 sources (2 skipped)" in printed
    assert "skipped 2 source(s) whose complete results were there (--force tracks them again)" in printed


def test_a_failing_source_exits_1_after_the_others(capsys, dataset: Path, tmp_path: Path):
    shutil.copytree(dataset / "SYNTH-01", tmp_path / "SYNTH-01")  # named beside each other
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 512)
    out = tmp_path / "out"
    code, printed, err = run_cli(capsys, str(tmp_path / "SYNTH-01"), str(broken), "--output", str(out))
    assert code == 1
    assert "failed: broken: " in printed and "cannot decode this video" in printed
    assert err.strip().splitlines()[-1] == "cstrack track: 1 source(s) failed (listed above)"
    assert [path.name for path in out.glob("*.txt")] == ["SYNTH-01.txt"]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--show"], "--show shows one source"),
        (["--workers", "0"], "workers must be an integer >= 1"),
        (["--model", "omc_n", "--workers", "2"], "each worker would draw its own random weights"),
    ],
)
def test_batch_mistakes_are_one_line_errors(capsys, dataset: Path, tmp_path: Path, options, message):
    code, _, err = run_cli(capsys, str(dataset), "--output", str(tmp_path / "out"), *options)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1

"""`cstrack eval --frames A-B` scores what `cstrack track --frames A-B --eval` scored (issue 14.3).

A MOT file from `track --frames 601-795` keeps frame numbers 601-795; scored over the whole
sequence, frames 1-600 count as misses. With `--frames` the ground truth and results are cut to
the window exactly as `track --eval` cuts them, so the scores are the same to the last bit.
Synthetic sequences (`cstrack synth`) always; PETS09-S2L1 where ../shared/data has it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cstrack.data.mot import MotSequence, format_results
from cstrack.data.sources import FrameRange, SequenceSource
from cstrack.evaluation import SCORE_FIELDS, evaluate_sequence
from cstrack.pipeline.runner import evaluate_run


def run_cstrack(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cstrack", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """One rendered sequence of 30 frames (MOT17-style gt), made by `cstrack synth`."""
    root = tmp_path_factory.mktemp("synth")
    completed = run_cstrack(
        "synth", root, "--frames", "30", "--seed", "2", "--width", "320", "--height", "240", "--people", "4"
    )
    assert completed.returncode == 0, completed.stderr
    return root / "SYNTH-01"


def imperfect_results(gt: np.ndarray, first: int, last: int) -> np.ndarray:
    """(M, 7) results of a tracker that ran on frames first..last only: the gt boxes there, shifted,
    with rows missing, an identity switch and false positives."""
    rows = gt[(gt[:, 0] >= first) & (gt[:, 0] <= last) & (gt[:, 6] != 0)]
    if gt.shape[1] == 9:  # MOT16/17 layout: the pedestrians
        rows = rows[rows[:, 7] == 1]
    results = np.column_stack([rows[:, :6], np.full(len(rows), 0.9)])
    results = results[np.arange(len(results)) % 7 != 3]  # missed boxes
    results[::3, 2] += 4.0  # poorly placed boxes
    switch = (results[:, 1] == results[0, 1]) & (results[:, 0] > (first + last) / 2)
    results[switch, 1] = 1000  # an identity switch halfway
    false = results[::11].copy()
    false[:, 1] += 2000
    false[:, 3] += 300
    table = np.vstack([results, false])
    return table[np.lexsort((table[:, 1], table[:, 0]))]


def renumbered_scores(
    gt: np.ndarray, results: np.ndarray, seq_length: int, window: FrameRange, benchmark: str
):
    """The window scored as `track --eval` used to score it: cut and renumbered from frame 1."""
    last = min(window.last or seq_length, seq_length)
    gt = gt[(gt[:, 0] >= window.first) & (gt[:, 0] <= last)].copy()
    results = results[(results[:, 0] >= window.first) & (results[:, 0] <= last)].copy()
    gt[:, 0] -= window.first - 1
    results[:, 0] -= window.first - 1
    return evaluate_sequence(gt, results, last - window.first + 1, benchmark)


def check_window(sequence: Path, window: FrameRange, benchmark: str, tmp_path: Path) -> dict:
    """Scores of `cstrack eval --frames` on a results file of `window`, checked against track's."""
    mot = MotSequence.open(sequence)
    gt = mot.read_gt()
    results = imperfect_results(gt, window.first, window.last)
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    (results_dir / f"{mot.name}.txt").write_text(format_results(results))
    out = tmp_path / "scores.json"
    common = ("eval", "--gt", sequence, "--results", results_dir, "--benchmark", benchmark)
    completed = run_cstrack(*common, "--frames", str(window), "--json", out)
    assert completed.returncode == 0, completed.stderr
    scored = json.loads(out.read_text())["sequences"][mot.name]
    as_written = np.loadtxt(results_dir / f"{mot.name}.txt", delimiter=",", ndmin=2)[:, :7]
    tracked = evaluate_run(as_written, SequenceSource(mot, window), benchmark)
    assert tracked["frames"] == [window.first, window.last]
    assert scored == {key: tracked[key] for key in SCORE_FIELDS}
    assert scored == renumbered_scores(gt, as_written, mot.info.seq_length, window, benchmark)
    whole = run_cstrack(*common, "--json", out)
    assert whole.returncode == 0, whole.stderr
    unwindowed = json.loads(out.read_text())["sequences"][mot.name]
    assert unwindowed["HOTA"] < scored["HOTA"] and unwindowed["FN"] > scored["FN"]
    assert unwindowed["FP"] == scored["FP"]  # every result row lies in the window
    return {"window": scored, "whole": unwindowed}


def test_eval_frames_scores_the_window_of_a_synthetic_sequence(synthetic: Path, tmp_path: Path):
    scores = check_window(synthetic, FrameRange(11, 25), "MOT17", tmp_path)
    assert 0.3 < scores["window"]["HOTA"] < 0.95


def test_eval_frames_scores_the_pets_test_window(shared_data: Path, tmp_path: Path):
    scores = check_window(shared_data / "PETS09-S2L1", FrameRange(601, 795), "MOT15", tmp_path)
    # 601-795 is a quarter of the sequence: scored whole, three quarters of the gt are misses.
    assert scores["whole"]["HOTA"] < 0.6 * scores["window"]["HOTA"]


def printed_scores(text: str) -> dict[str, str]:
    """HOTA, MOTA, IDF1, IDSW from `track --eval`'s line or `eval`'s table, as printed."""
    line = re.search(r"HOTA (\S+)  MOTA (\S+)  IDF1 (\S+)  IDSW (\S+)", text)
    if line:
        return dict(zip(("HOTA", "MOTA", "IDF1", "IDSW"), line.groups(), strict=True))
    header, row = text.splitlines()[:2]
    table = dict(zip(header.split(), row.split(), strict=True))
    return {key: table[key] for key in ("HOTA", "MOTA", "IDF1", "IDSW")}


def test_track_frames_eval_and_eval_frames_print_the_same(synthetic: Path, tmp_path: Path):
    """The real tracker (the bundled model, at a small input size) on frames 11-25."""
    out_dir = tmp_path / "track"
    tracked = run_cstrack(
        "track", synthetic, "--frames", "11-25", "--eval", "--benchmark", "MOT17",
        "--img-size", "320", "256", "--device", "cpu", "--output", out_dir, "--quiet",
    )  # fmt: skip
    assert tracked.returncode == 0, tracked.stderr
    assert "(MOT17 rules, frames 11-25)" in tracked.stdout
    scored = run_cstrack(
        "eval", "--gt", synthetic, "--results", out_dir, "--frames", "11-25", "--json", tmp_path / "s.json"
    )
    assert scored.returncode == 0, scored.stderr
    assert printed_scores(tracked.stdout) == printed_scores(scored.stdout)
    from_track = json.loads((out_dir / "SYNTH-01.scores.json").read_text())
    from_eval = json.loads((tmp_path / "s.json").read_text())["sequences"]["SYNTH-01"]
    assert from_eval == {key: from_track[key] for key in SCORE_FIELDS}


def one_line_error(completed: subprocess.CompletedProcess[str], command: str) -> str:
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cstrack {command}: error: "), completed.stderr
    return lines[0]


def test_bad_windows_and_benchmarks_are_one_line_errors(synthetic: Path, tmp_path: Path):
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    (results_dir / "SYNTH-01.txt").write_text("")
    common = ("eval", "--gt", synthetic, "--results", results_dir, "--frames")
    assert one_line_error(run_cstrack(*common, "0-3"), "eval").endswith(
        "frame range '0-3' must satisfy 1 <= A <= B"
    )
    assert one_line_error(run_cstrack(*common, "5-x"), "eval").endswith("must look like A-B, A- or A")
    assert one_line_error(run_cstrack(*common, "31-40"), "eval").endswith(
        f"{synthetic / 'gt' / 'gt.txt'}: frames 31-40 are outside this sequence of 30 frames"
    )
    track = ("track", synthetic, "--model", "omc_n", "--output", tmp_path / "out", "--quiet")
    assert one_line_error(run_cstrack(*track, "--benchmark", "MOT17"), "track").endswith(
        "a benchmark sets the rules of the scores: it needs evaluate=True (--eval)"
    )
    assert one_line_error(run_cstrack(*track, "--eval", "--benchmark", "MOT99"), "track").endswith(
        "unknown benchmark 'MOT99'; expected one of MOT15, MOT16, MOT17, MOT20"
    )
    assert one_line_error(run_cstrack(*common[:-1], "--benchmark", "MOT99"), "eval").endswith(
        "unknown benchmark 'MOT99'; expected one of MOT15, MOT16, MOT17, MOT20"
    )
    assert not (tmp_path / "out").exists()


def test_mot17_rules_on_mot15_ground_truth_are_refused_before_tracking(shared_data: Path, tmp_path: Path):
    out_dir = tmp_path / "out"
    completed = run_cstrack(
        "track", shared_data / "PETS09-S2L1", "--frames", "601-603", "--eval", "--benchmark", "MOT17",
        "--model", "omc_n", "--output", out_dir, "--quiet",
    )  # fmt: skip
    line = one_line_error(completed, "track")
    assert "are not MOTChallenge classes 1-13" in line and "evaluate it as MOT15" in line
    assert not out_dir.exists()

"""Our scores equal TrackEval 1.3.0's on a real tracker's output (TUD-Campus, TUD-Stadtmitte)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cstrack.data import SequenceInfo, read_mot_file, read_results, read_seqinfo, write_seqinfo
from cstrack.evaluation import SCORE_FIELDS, SequenceTables, evaluate, evaluate_tables, format_table

SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")
# The reference names some fields as TrackEval does.
REFERENCE_NAMES = {"FP": "CLR_FP", "FN": "CLR_FN", "TP": "CLR_TP", "Recall": "CLR_Re", "Precision": "CLR_Pr"}


@pytest.fixture(scope="module")
def tud_layout(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """GT_ROOT/SEQ/{gt/gt.txt,seqinfo.ini} and RES_DIR/SEQ.txt, seqLength = last frame of gt or results."""
    root = tmp_path_factory.mktemp("tud")
    for name in SEQUENCES:
        source = shared_data / "metrics" / name
        seq_length = int(max(read_mot_file(source / f)[:, 0].max() for f in ("gt.txt", "test.txt")))
        (root / "gt" / name / "gt").mkdir(parents=True)
        shutil.copy(source / "gt.txt", root / "gt" / name / "gt" / "gt.txt")
        write_seqinfo(
            root / "gt" / name / "seqinfo.ini", SequenceInfo(name, 25, seq_length, 640, 480, "img1", ".jpg")
        )
        (root / "results").mkdir(exist_ok=True)
        shutil.copy(source / "test.txt", root / "results" / f"{name}.txt")
    return root / "gt", root / "results"


def test_scores_equal_trackeval_reference(shared_data: Path, tud_layout: tuple[Path, Path]) -> None:
    reference = json.loads((shared_data / "metrics" / "trackeval_reference.json").read_text())
    scores = evaluate(*tud_layout, benchmark="MOT15")
    assert list(scores["sequences"]) == list(SEQUENCES)
    for name, ours in [*scores["sequences"].items(), ("COMBINED_SEQ", scores["combined"])]:
        assert set(ours) == set(SCORE_FIELDS)
        for key, value in ours.items():
            assert value == pytest.approx(reference[name][REFERENCE_NAMES.get(key, key)], abs=1e-6), (
                name,
                key,
            )


def test_tables_in_memory_score_as_the_files_do(tud_layout: tuple[Path, Path]) -> None:
    gt_root, results_dir = tud_layout
    tables = {
        name: SequenceTables(
            read_mot_file(gt_root / name / "gt" / "gt.txt"),
            read_results(results_dir / f"{name}.txt"),
            read_seqinfo(gt_root / name / "seqinfo.ini").seq_length,
        )
        for name in SEQUENCES
    }
    in_memory = evaluate_tables(tables, benchmark="MOT15")
    assert in_memory == evaluate(gt_root, results_dir, benchmark="MOT15")
    assert 0.3 < in_memory["combined"]["HOTA"] < 0.6 and set(in_memory["sequences"]) == set(SEQUENCES)
    with pytest.raises(ValueError, match="no sequences"):
        evaluate_tables({})


def test_counts_are_ints_and_ratios_fractions(tud_layout: tuple[Path, Path]) -> None:
    combined = evaluate(*tud_layout, benchmark="MOT15", sequences=["TUD-Campus"])["combined"]
    assert type(combined["IDSW"]) is int and type(combined["MT"]) is int
    assert type(combined["HOTA"]) is float and 0 <= combined["HOTA"] <= 1


def test_format_table_rows_and_percentages(tud_layout: tuple[Path, Path]) -> None:
    lines = format_table(evaluate(*tud_layout, benchmark="MOT15")).splitlines()
    assert [line.split()[0] for line in lines] == ["Sequence", *SEQUENCES, "COMBINED"]
    header, campus = lines[0].split(), lines[1].split()
    assert campus[header.index("MOTA")] == "52.6" and campus[header.index("IDSW")] == "7"


def test_evaluation_imports_without_torch() -> None:
    code = (
        "import sys, cstrack.data, cstrack.evaluation, cstrack.cli.eval_cmd; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

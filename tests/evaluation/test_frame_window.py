"""`frame_window`: the ground truth and results of frames A-B, as `--frames A-B` scores them."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.data.sources import FrameRange
from cstrack.errors import InputError
from cstrack.evaluation import SequenceTables, evaluate_tables, frame_window


def table(frames: list[int], columns: int = 10) -> np.ndarray:
    rows = np.ones((len(frames), columns))
    rows[:, 0] = frames
    rows[:, 1] = np.arange(len(frames)) % 3 + 1
    rows[:, 2:6] = [10, 20, 30, 60]
    return rows


def test_rows_outside_the_window_go_and_num_frames_ends_with_it():
    tables = SequenceTables(table([1, 4, 5, 9, 10]), table([2, 5, 6, 10], 7), 10)
    gt, results, num_frames = frame_window(tables, "4-9")
    assert gt[:, 0].tolist() == [4, 5, 9] and results[:, 0].tolist() == [5, 6] and num_frames == 9
    assert frame_window(tables, FrameRange(5, None)).num_frames == 10
    assert frame_window(tables, "9-400").gt[:, 0].tolist() == [9, 10]  # cut at seqLength
    assert frame_window(tables, None) is tables
    empty = SequenceTables(table([1]), np.zeros((0, 7)), 10)
    assert frame_window(empty, "2-3").results.shape == (0, 7)
    with pytest.raises(InputError, match="frames 11-12 are outside this sequence of 10 frames") as error:
        frame_window(tables, "11-12", gt_path="seq/gt/gt.txt")
    assert error.value.path == "seq/gt/gt.txt"
    with pytest.raises(InputError, match="must look like A-B"):
        frame_window(tables, "four")


def test_evaluate_tables_with_frames_scores_only_the_window():
    gt = table(list(range(1, 21)))
    results = table(list(range(8, 15)), 7)
    tables = {"SEQ": SequenceTables(gt, results, 20)}
    windowed = evaluate_tables(tables, "MOT15", frames="8-14")
    assert windowed["sequences"]["SEQ"]["FN"] == 0 and windowed["combined"]["MOTA"] == 1.0
    whole = evaluate_tables(tables, "MOT15")
    assert whole["combined"]["FN"] == 13 and whole["combined"]["HOTA"] < windowed["combined"]["HOTA"]
    cut = {"SEQ": SequenceTables(gt[7:14], results, 14)}
    assert evaluate_tables(cut, "MOT15") == windowed

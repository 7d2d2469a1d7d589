"""MOT tables with lines or columns no MOT file has (issue 23): refused before parsing, with the
limit in the one-line error and no value of the line quoted whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from cstrack.data.mot import MAX_COLUMNS, MAX_LINE_CHARS, read_results
from cstrack.errors import InputError

ROW = "1,1,10.00,20.00,30.00,60.00,0.9000,-1,-1,-1\n"


def test_a_huge_line_is_refused_in_bounded_memory(tmp_path: Path, address_space_limit):
    path = tmp_path / "SEQ.txt"
    path.write_text(ROW + "1,7" + "7" * 50_000_000 + ",1,1,1,1,1,-1,-1,-1\n")
    with address_space_limit(600 << 20), pytest.raises(InputError) as caught:
        read_results(path)
    assert str(caught.value) == f"{path}:2: line longer than {MAX_LINE_CHARS} characters: not a MOT table"


def test_too_many_columns_are_refused(tmp_path: Path):
    path = tmp_path / "SEQ.txt"
    path.write_text(",".join(["1"] * (MAX_COLUMNS + 1)) + "\n")
    with pytest.raises(InputError, match=f":1: more than {MAX_COLUMNS} columns"):
        read_results(path)


def test_an_ordinary_table_still_reads(tmp_path: Path):
    path = tmp_path / "SEQ.txt"
    path.write_text(ROW * 3)
    assert read_results(path).shape == (3, 10)

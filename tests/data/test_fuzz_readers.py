"""Fuzz the MOT readers with hostile mutations of real files: parse to a valid table, or InputError.

Fixed seeds, a few hundred cases each, a few seconds in all. Every case must either return data
that meets the readers' invariants or raise InputError with a one-line message naming the file;
any other exception (or a table with NaN, a zero-size box, a wrapped id ...) fails the test.
Tables that parse are also scored, since the evaluation must hold up on whatever the reader lets
through.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cstrack.data import MotSequence, read_mot_file, read_seqinfo
from cstrack.data.mot import FRAME, ID, MAX_FRAME, MAX_ID, MAX_PIXELS, MIN_ID, H, W, X, Y
from cstrack.errors import InputError
from cstrack.evaluation import evaluate_sequence

TABLE_CASES = 300
SEQINFO_CASES = 200
SOURCE_ROWS = 40  # the first rows of each real file: several frames, and fast to score
# Field values a hostile file may hold: huge, negative, not finite, not numbers, not ASCII.
HOSTILE_FIELDS = (
    "1e308",
    "-1e308",
    "1e19",
    "-1e19",
    "2147483648",
    "-2147483649",
    "9" * 400,
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "0",
    "-0",
    "-5",
    "1.5",
    "1e-320",
    "abc",
    "",
    " ",
    "1_0",
    "0x10",
    "\x00",
    "\x1c",
    "\u00a0",
    "\ufeff",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: float() reads it as 3
)
CONTROL_BYTES = (b"\x00", b"\x01", b"\x07", b"\x0b", b"\x0c", b"\x1b", b"\x1c", b"\x1f", b"\x7f", b"\xc2\x85")
BOM = b"\xef\xbb\xbf"


def flip_bytes(data: bytes, rng: random.Random, most: int) -> bytes:
    """1 to `most` bytes of `data` set to random values."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, most)):
        buffer[rng.randrange(len(buffer))] = rng.randrange(256)
    return bytes(buffer)


def mutate_table(data: bytes, rng: random.Random) -> bytes:
    """One to three random mutations of a MOT table's bytes."""
    for _ in range(rng.randint(1, 3)):
        lines = data.split(b"\n")
        kind = rng.randrange(9)
        if kind == 0 and data:
            data = flip_bytes(data, rng, 4)
        elif kind == 1:  # truncate a line
            index = rng.randrange(len(lines))
            lines[index] = lines[index][: rng.randrange(len(lines[index]) + 1)]
            data = b"\n".join(lines)
        elif kind == 2:  # replace a field
            index = rng.randrange(len(lines))
            fields = lines[index].split(b",")
            fields[rng.randrange(len(fields))] = rng.choice(HOSTILE_FIELDS).encode()
            lines[index] = b",".join(fields)
            data = b"\n".join(lines)
        elif kind == 3:  # a BOM at the start or inside
            position = 0 if rng.random() < 0.5 else rng.randrange(len(data) + 1)
            data = data[:position] + BOM + data[position:]
        elif kind == 4:  # control bytes
            position = rng.randrange(len(data) + 1)
            data = data[:position] + rng.choice(CONTROL_BYTES) * rng.randint(1, 3) + data[position:]
        elif kind == 5:  # a whole file of control bytes or blanks
            data = b"".join(
                rng.choice((*CONTROL_BYTES, b" ", b"\t", b"\n")) for _ in range(rng.randint(0, 6))
            )
        elif kind == 6:  # delete or repeat a line
            index = rng.randrange(len(lines))
            lines[index : index + 1] = [] if rng.random() < 0.5 else [lines[index]] * 2
            data = b"\n".join(lines)
        elif kind == 7:  # another separator or line ending
            data = data.replace(b",", b" ") if rng.random() < 0.5 else data.replace(b"\n", b"\r\n")
        else:  # bytes that are not UTF-8
            position = rng.randrange(len(data) + 1)
            data = data[:position] + rng.choice((b"\xff", b"\xc3", b"\xed\xa0\x80")) + data[position:]
    return data


def assert_valid_table(table: np.ndarray) -> None:
    """The invariants of every table read_mot_file returns."""
    assert table.dtype == np.float64 and table.ndim == 2
    if not len(table):
        return
    assert table.shape[1] >= 7 and np.isfinite(table).all()
    frames, ids = table[:, FRAME], table[:, ID]
    assert ((frames >= 1) & (frames <= MAX_FRAME) & (frames == np.floor(frames))).all()
    assert ((ids >= MIN_ID) & (ids <= MAX_ID) & (ids == np.floor(ids))).all()
    assert ((table[:, [W, H]] > 0) & (table[:, [W, H]] <= MAX_PIXELS)).all()
    assert (np.abs(table[:, [X, Y]]) <= MAX_PIXELS).all()


def assert_one_line_error(error: InputError, path: Path) -> None:
    message = str(error)
    assert message.startswith(f"{path}:") and "\n" not in message and "\r" not in message


def first_rows(path: Path) -> bytes:
    return b"\n".join(path.read_bytes().split(b"\n")[:SOURCE_ROWS]) + b"\n"


def test_fuzz_mot_table_reader(shared_data: Path, tmp_path: Path) -> None:
    campus = shared_data / "metrics" / "TUD-Campus"
    sources = {
        "MOT15 gt": first_rows(campus / "gt.txt"),
        "results": first_rows(campus / "test.txt"),
        "MOT17 gt": first_rows(shared_data / "MOT17-mini" / "MOT17-09" / "gt" / "gt.txt"),
    }
    clean_results = read_mot_file(write(tmp_path / "clean.txt", sources["results"]))
    rng = random.Random(20240607)
    path = tmp_path / "fuzzed.txt"
    outcomes: Counter[str] = Counter()
    for _ in range(TABLE_CASES):
        kind = rng.choice(list(sources))
        write(path, mutate_table(sources[kind], rng))
        try:
            table = read_mot_file(path)
        except InputError as error:
            assert_one_line_error(error, path)
            outcomes["refused"] += 1
            continue
        assert_valid_table(table)
        outcomes["parsed"] += 1
        # What the reader lets through must score, or be refused by the evaluation's own rules.
        gt, results = (clean_results, table) if kind == "results" else (table, clean_results)
        try:
            scores = evaluate_sequence(gt, results, 3_000_000_000, "MOT15", gt_path="gt", results_path="res")
        except InputError as error:
            assert "\n" not in str(error)
            outcomes["refused by the evaluation"] += 1
        else:
            assert all(math.isfinite(value) for value in scores.values())
    print(f"MOT table fuzz: {dict(outcomes)}")
    assert outcomes["parsed"] + outcomes["refused"] == TABLE_CASES
    assert min(outcomes["parsed"], outcomes["refused"]) >= TABLE_CASES // 10


def mutate_seqinfo(text: str, rng: random.Random) -> bytes:
    """One to three random mutations of a seqinfo.ini."""
    data = text.encode()
    for _ in range(rng.randint(1, 3)):
        lines = data.split(b"\n")
        kind = rng.randrange(7)
        if kind == 0 and data:
            data = flip_bytes(data, rng, 3)
        elif kind == 1:  # replace a value
            index = rng.randrange(1, len(lines))
            key = lines[index].split(b"=", 1)[0]
            lines[index] = key + b"=" + rng.choice(HOSTILE_FIELDS).encode()
            data = b"\n".join(lines)
        elif kind == 2:  # a BOM, control bytes or invalid UTF-8
            position = 0 if rng.random() < 0.5 else rng.randrange(len(data) + 1)
            insert = rng.choice((BOM, *CONTROL_BYTES, b"\xff"))
            data = data[:position] + insert + data[position:]
        elif kind == 3:  # truncate a line
            index = rng.randrange(len(lines))
            lines[index] = lines[index][: rng.randrange(len(lines[index]) + 1)]
            data = b"\n".join(lines)
        elif kind == 4:  # delete or repeat a line (the header, a key)
            index = rng.randrange(len(lines))
            lines[index : index + 1] = [] if rng.random() < 0.5 else [lines[index]] * 2
            data = b"\n".join(lines)
        elif kind == 5:  # a line that is not ini syntax
            lines.insert(
                rng.randrange(len(lines) + 1), rng.choice((b"garbage", b"[", b"=1", b"  indented=2"))
            )
            data = b"\n".join(lines)
        else:
            data = data.replace(b"\n", b"\r\n")
    return data


def test_fuzz_seqinfo_reader(shared_data: Path, tmp_path: Path) -> None:
    text = (shared_data / "PETS09-S2L1" / "seqinfo.ini").read_text()
    sequence = tmp_path / "SEQ"
    (sequence / "img1").mkdir(parents=True)
    for frame in (1, 2, 3):
        write(sequence / "img1" / f"{frame:06d}.jpg", b"")
    path = sequence / "seqinfo.ini"
    rng = random.Random(20240608)
    outcomes: Counter[str] = Counter()
    for _ in range(SEQINFO_CASES):
        write(path, mutate_seqinfo(text, rng))
        try:
            info = read_seqinfo(path)
        except InputError as error:
            assert_one_line_error(error, path)
            outcomes["refused"] += 1
            continue
        outcomes["parsed"] += 1
        assert math.isfinite(info.frame_rate) and info.frame_rate > 0
        for size in (info.seq_length, info.width, info.height):
            assert type(size) is int and 0 < size < 2**63
        for value in (info.name, info.im_dir, info.im_ext):
            assert value and value.isprintable() and value == value.strip()
        try:
            paths = MotSequence(sequence, info).frame_paths()
        except InputError as error:  # an imExt that matches none of the images there
            assert_one_line_error(error, path)
            assert "matches no image" in str(error)
            continue
        assert len(paths) <= min(3, info.seq_length)
    print(f"seqinfo.ini fuzz: {dict(outcomes)}")
    assert outcomes["parsed"] + outcomes["refused"] == SEQINFO_CASES
    assert min(outcomes["parsed"], outcomes["refused"]) >= SEQINFO_CASES // 10


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data", [b"", b" \t\n\n", BOM + b"\n"])
def test_blank_tables_are_the_only_empty_ones(tmp_path: Path, data: bytes) -> None:
    assert read_mot_file(write(tmp_path / "blank.txt", data)).shape == (0, 10)

"""MOTChallenge I/O: tables, results, seqinfo.ini, sequence discovery and lazy frames."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cstrack.data import (
    MotSequence,
    SequenceInfo,
    atomic_write,
    filter_results,
    find_sequences,
    read_mot_file,
    read_results,
    read_seqinfo,
    write_results,
    write_seqinfo,
)
from cstrack.errors import InputError

ROW = "1,1,10,20,30,40,1"


def make_sequence(folder: Path, seq_length: int = 3) -> Path:
    """A sequence folder with only its seqinfo.ini."""
    info = SequenceInfo(folder.name, 30, seq_length, 640, 480, "img1", ".jpg")
    write_seqinfo(folder / "seqinfo.ini", info)
    return folder


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- read_mot_file -------------------------------------------------------------------------


def test_read_mot_file_comma_whitespace_trailing_comma_and_blank_lines(tmp_path: Path) -> None:
    expected = np.array([[1, 3, 10.5, 20, 30, 40, 0.9, -1, -1, -1], [2, 4, 11, 21, 31, 41, 1, -1, -1, -1]])
    comma = write_text(
        tmp_path / "comma.txt", "1,3,10.5,20,30,40,0.9,-1,-1,-1\n\n2, 4,11,21,31,41,1,-1,-1,-1\n"
    )
    spaces = write_text(
        tmp_path / "spaces.txt", "1 3 10.5 20 30 40 0.9 -1 -1 -1\n2\t4 11 21 31 41 1 -1 -1 -1\n"
    )
    trailing = write_text(
        tmp_path / "trailing.txt", "1,3,10.5,20,30,40,0.9,-1,-1,-1,\r\n2,4,11,21,31,41,1,-1,-1,-1,\r\n"
    )
    for path in (comma, spaces, trailing):
        table = read_mot_file(path)
        assert table.dtype == np.float64
        np.testing.assert_array_equal(table, expected)


def test_read_mot_file_single_row_and_empty_file(tmp_path: Path) -> None:
    assert read_mot_file(write_text(tmp_path / "one.txt", ROW + "\n")).shape == (1, 7)
    empty = read_mot_file(write_text(tmp_path / "empty.txt", "\n  \n"))
    assert empty.shape == (0, 10) and empty.dtype == np.float64


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (f"{ROW}\n1,2,3,4,5,6\n", 2, "expected 7 columns, found 6"),
        (f"{ROW}\n2,1,10,20,30,40,x\n", 2, "field 7 is not a number: 'x'"),
        (f"{ROW}\n\n\n2,,10,20,30,40,1\n", 4, "field 2 is not a number: ''"),
        (f"{ROW}\n2,1,10,20,nan,40,1\n", 2, "field 5 is not finite"),
        (f"{ROW}\n0,1,10,20,30,40,1\n", 2, "frame is not a positive integer: '0'"),
        (f"{ROW}\n1.5,1,10,20,30,40,1\n", 2, "frame is not a positive integer: '1.5'"),
        (f"{ROW}\n2,2.5,10,20,30,40,1\n", 2, "id is not an integer: '2.5'"),
        ("frame,id,x,y,w,h,conf\n" + ROW + "\n", 1, "field 1 is not a number: 'frame'"),
        ("1,1,10,20\n", 1, "found 4 columns, need at least 7"),
    ],
)
def test_read_mot_file_names_file_line_and_problem(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = write_text(tmp_path / "bad.txt", text)
    with pytest.raises(InputError) as caught:
        read_mot_file(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert problem in str(caught.value)


def test_read_mot_file_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.txt: file not found"):
        read_mot_file(tmp_path / "missing.txt")


def test_read_mot_file_is_fast_on_a_real_gt(shared_data: Path) -> None:
    table = read_mot_file(shared_data / "gt-only" / "MOT17-04" / "gt" / "gt.txt")
    assert table.shape == (108005, 9)


# --- results ---------------------------------------------------------------------------------


def test_write_results_round_trip_sorted_with_mot_columns(tmp_path: Path) -> None:
    path = tmp_path / "out" / "SEQ.txt"
    frames, ids = np.array([2, 1, 1]), np.array([7, 9, 3])
    boxes = np.array([[1.234, 2.5, 30.0, 60.0], [5.0, 6.0, 20.0, 40.0], [0.0, 0.0, 10.5, 25.25]])
    scores = np.array([0.91, 0.5, 0.75])
    assert write_results(path, frames, ids, boxes, scores) == 3
    assert path.read_text().splitlines()[0] == "1,3,0.00,0.00,10.50,25.25,0.7500,-1,-1,-1"
    table = read_results(path)
    order = [2, 1, 0]  # by frame then id
    assert table.shape == (3, 10)
    np.testing.assert_array_equal(table[:, :2], np.column_stack([frames, ids])[order])
    np.testing.assert_allclose(table[:, 2:6], boxes[order], atol=0.005)
    np.testing.assert_allclose(table[:, 6], scores[order])
    np.testing.assert_array_equal(table[:, 7:], -1)
    # A (M, >=7) table is accepted as well and gives the same file.
    again = tmp_path / "again.txt"
    write_results(again, table)
    assert again.read_text() == path.read_text()


def test_boxes_that_would_be_written_zero_wide_or_high_are_not_written(tmp_path: Path) -> None:
    #                   frame id x y  w      h
    table = np.array([[1, 1, 5, 5, 20.0, 0.004, 0.9], [1, 2, 5, 5, 0.006, 30.0, 0.8]])
    path = tmp_path / "thin.txt"
    assert write_results(path, table) == 1
    assert path.read_text() == "1,2,5.00,5.00,0.01,30.00,0.8000,-1,-1,-1\n"
    assert read_results(path)[:, 1].tolist() == [2]


def test_output_filter_drops_small_and_wide_boxes(tmp_path: Path) -> None:
    #                   frame id x y  w     h
    table = np.array(
        [
            [1, 1, 0, 0, 10, 10, 1],  # area 100: dropped (area must exceed 100)
            [1, 2, 0, 0, 11, 10, 1],  # area 110, w/h 1.1: kept
            [1, 3, 0, 0, 40, 20, 1],  # w/h 2.0 > 1.6: dropped
            [1, 4, 0, 0, 32, 20, 1],  # w/h 1.6: kept
            [1, 5, 0, 0, 50, 0, 1],
        ],
        dtype=float,
    )  # zero height: dropped
    kept = filter_results(table, min_area=100, max_aspect=1.6)
    assert kept[:, 1].tolist() == [2, 4]
    assert filter_results(table)[:, 1].tolist() == [1, 2, 3, 4]  # zero height goes even unfiltered
    path = tmp_path / "filtered.txt"
    assert write_results(path, table, min_area=100, max_aspect=1.6) == 2
    assert read_results(path)[:, 1].tolist() == [2, 4]


def test_failed_write_keeps_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_text(tmp_path / "SEQ.txt", "old content\n")

    def no_space(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr("cstrack.atomic.os.replace", no_space)
        with pytest.raises(InputError, match=r"SEQ\.txt: cannot write: No space left on device"):
            write_results(path, np.array([[1, 1, 0, 0, 10, 20, 1]]))
    assert path.read_text() == "old content\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["SEQ.txt"]

    with pytest.raises(RuntimeError), atomic_write(path) as stream:
        stream.write("half a file")
        raise RuntimeError("crash while writing")
    assert path.read_text() == "old content\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["SEQ.txt"]

    with pytest.raises(ValueError, match="finite"):
        write_results(path, np.array([[1, np.nan, 0, 0, 10, 20, 1]]))
    assert path.read_text() == "old content\n"


def test_unwritable_results_path_is_an_input_error(tmp_path: Path) -> None:
    blocker = write_text(tmp_path / "blocker", "a file, not a folder")
    with pytest.raises(InputError, match="cannot write"):
        write_results(blocker / "SEQ.txt", np.zeros((0, 7)))


# --- seqinfo.ini ---------------------------------------------------------------------------


def test_read_seqinfo_of_pets(shared_data: Path) -> None:
    info = read_seqinfo(shared_data / "PETS09-S2L1" / "seqinfo.ini")
    assert info == SequenceInfo("PETS09-S2L1", 7.0, 795, 768, 576, "img1", ".jpg")


def test_write_then_read_seqinfo(tmp_path: Path) -> None:
    info = SequenceInfo("MOT17-02-FRCNN", 30.0, 600, 1920, 1080, "img1", ".jpg")
    write_seqinfo(tmp_path / "seqinfo.ini", info)
    assert "frameRate=30\n" in (tmp_path / "seqinfo.ini").read_text()
    assert read_seqinfo(tmp_path / "seqinfo.ini") == info


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "[Sequence]\nname=A\nframeRate=30\nimWidth=640\nimHeight=480\nimDir=img1\nimExt=.jpg\n",
            "missing key 'seqLength'",
        ),
        (
            "[Sequence]\nname=A\nframeRate=30\nseqLength=ten\nimWidth=640\nimHeight=480\nimDir=img1\nimExt=.jpg\n",
            "seqLength is not an integer: 'ten'",
        ),
        (
            "[Sequence]\nname=A\nframeRate=fast\nseqLength=10\nimWidth=640\nimHeight=480\nimDir=img1\nimExt=.jpg\n",
            "frameRate is not a number: 'fast'",
        ),
        (
            "[Sequence]\nname=A\nframeRate=30\nseqLength=0\nimWidth=640\nimHeight=480\nimDir=img1\nimExt=.jpg\n",
            "seqLength must be positive",
        ),
        ("[Other]\nname=A\n", "missing section [Sequence]"),
        ("no section header\n", "not a valid ini file"),
    ],
)
def test_read_seqinfo_errors_name_file_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = write_text(tmp_path / "seqinfo.ini", text)
    with pytest.raises(InputError) as caught:
        read_seqinfo(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert problem in str(caught.value)


def test_read_seqinfo_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"seqinfo\.ini: file not found"):
        read_seqinfo(tmp_path / "seqinfo.ini")


# --- sequences -------------------------------------------------------------------------------


def test_find_sequences_in_mot_layouts(tmp_path: Path) -> None:
    flat = tmp_path / "MOT15"
    for name in ("TUD-Campus", "ETH-Bahnhof"):
        make_sequence(flat / name)
    (flat / "not-a-sequence").mkdir()
    assert [s.name for s in find_sequences(flat)] == ["ETH-Bahnhof", "TUD-Campus"]

    split = tmp_path / "MOT17"
    for name in ("MOT17-02-DPM", "MOT17-02-FRCNN", "MOT17-04-FRCNN"):
        make_sequence(split / "train" / name)
    make_sequence(split / "test" / "MOT17-01-FRCNN")
    assert [s.name for s in find_sequences(split, detector="FRCNN")] == [
        "MOT17-01-FRCNN",
        "MOT17-02-FRCNN",
        "MOT17-04-FRCNN",
    ]
    assert len(find_sequences(split)) == 4

    single = find_sequences(flat / "TUD-Campus")
    assert [s.name for s in single] == ["TUD-Campus"]
    assert single[0].gt_path == flat / "TUD-Campus" / "gt" / "gt.txt"
    assert single[0].det_path == flat / "TUD-Campus" / "det" / "det.txt"


def test_find_sequences_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder not found"):
        find_sequences(tmp_path / "missing")
    with pytest.raises(InputError, match="no MOTChallenge sequence"):
        find_sequences(tmp_path)
    make_sequence(tmp_path / "MOT17-02-DPM")
    with pytest.raises(InputError, match="for detector 'SDP'"):
        find_sequences(tmp_path, detector="SDP")


def test_pets_frames_are_read_lazily(shared_data: Path) -> None:
    sequence = MotSequence.open(shared_data / "PETS09-S2L1")
    paths = sequence.frame_paths()
    assert len(paths) == 795 and paths[0].name == "000001.jpg" and paths[-1].name == "000795.jpg"
    frames = sequence.frames(start=1, stop=2)
    number, image = next(frames)
    assert number == 1 and image.shape == (576, 768, 3) and image.dtype == np.uint8
    assert next(frames)[0] == 2
    assert sequence.read_gt().shape == (4650, 10)
    with pytest.raises(IndexError):
        sequence.read_frame(796)


def test_unreadable_frame_names_the_image(tmp_path: Path) -> None:
    sequence = MotSequence.open(make_sequence(tmp_path / "SEQ"))
    (tmp_path / "SEQ" / "img1").mkdir()
    write_text(tmp_path / "SEQ" / "img1" / "000001.jpg", "not a jpeg")
    with pytest.raises(InputError, match=r"000001\.jpg: image missing or unreadable"):
        sequence.read_frame(1)
    with pytest.raises(InputError, match=r"000002\.jpg: image missing or unreadable"):
        sequence.read_frame(2)
    with pytest.raises(InputError, match=r"det\.txt: file not found"):
        sequence.read_det()


# --- hostile input -----------------------------------------------------------------------------


def run_limited(code: str, memory_bytes: int = 2 << 30, timeout: float = 120) -> str:
    """Run Python `code` in a child whose address space is capped, so a runaway allocation fails
    there with MemoryError instead of taking the machine's memory; returns its stdout."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=cap,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@pytest.mark.parametrize(
    ("data", "line", "problem"),
    [
        (f"{ROW}\n2,1,10,20,0,40,1\n".encode(), 2, "box width is not positive: '0'"),
        (f"{ROW}\n2,1,10,20,30,-4.5,1\n".encode(), 2, "box height is not positive: '-4.5'"),
        (f"{ROW}\n2,1,10,20,1e308,40,1\n".encode(), 2, "box width is beyond 1000000 pixels: '1e308'"),
        (f"{ROW}\n2,1,10,20,30,2e6,1\n".encode(), 2, "box height is beyond 1000000 pixels: '2e6'"),
        (f"{ROW}\n2,1,-1e308,20,30,40,1\n".encode(), 2, "box x is beyond +-1000000 pixels: '-1e308'"),
        (f"{ROW}\n1e19,1,10,20,30,40,1\n".encode(), 2, "frame is beyond 2147483647: '1e19'"),
        (f"{ROW}\n2,1e19,10,20,30,40,1\n".encode(), 2, "id is outside -2147483648..2147483647: '1e19'"),
        (f"{ROW}\n2,-2147483649,10,20,30,40,1\n".encode(), 2, "id is outside"),
        (f"{ROW}\n2,1_000,10,20,30,40,1\n".encode(), 2, "field 2 is not a number: '1_000'"),
        (b"\x00\x01\x02\n\x03", 1, "control or non-ASCII character '\\x00'"),
        (b"\x1c\x1d\x1e\n\x1f", 1, "control or non-ASCII character '\\x1c'"),
        (f"{ROW}\n\x1c\n{ROW}\n".encode(), 2, "control or non-ASCII character '\\x1c'"),
        (b"1 1 10 20 30 40 1\x1c9\n", 1, "control or non-ASCII character '\\x1c'"),
        (f"{ROW}\n\u00a0\n".encode(), 2, "control or non-ASCII character '\\xa0'"),
        (f"{ROW}\n2,1,10,20,30,40,".encode() + b"\xff\n", 2, "not UTF-8 text: byte 0xff"),
        (f"{ROW}\r\n\r\n".encode() + b"\xc3(", 3, "not UTF-8 text: byte 0xc3"),
    ],
)
def test_read_mot_file_refuses_bad_boxes_huge_values_and_control_bytes(
    tmp_path: Path, data: bytes, line: int, problem: str
) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        read_mot_file(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_read_mot_file_blank_files_are_empty_and_edge_values_are_valid(tmp_path: Path) -> None:
    for name, data in [("empty", b""), ("blank", b" \t\n\r\n\n"), ("bom", b"\xef\xbb\xbf\n")]:
        assert read_mot_file(write_bytes(tmp_path / name, data)).shape == (0, 10)
    # Detections carry id -1; boxes may start left of or above the image; the limits themselves pass.
    edge = write_bytes(
        tmp_path / "edge.txt", b"1,-1,-15.5,-3,30,40,0.9\n2147483647,-2147483648,-1e6,1e6,1e6,1e-3,1\n"
    )
    np.testing.assert_array_equal(
        read_mot_file(edge), [[1, -1, -15.5, -3, 30, 40, 0.9], [2**31 - 1, -(2**31), -1e6, 1e6, 1e6, 1e-3, 1]]
    )


SEQINFO = (
    "[Sequence]\nname=A\nframeRate=30\nseqLength=10\nimWidth=640\nimHeight=480\nimDir=img1\nimExt=.jpg\n"
)


def test_read_seqinfo_accepts_a_utf8_bom(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "seqinfo.ini", b"\xef\xbb\xbf" + SEQINFO.encode())
    assert read_seqinfo(path) == SequenceInfo("A", 30.0, 10, 640, 480, "img1", ".jpg")


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (SEQINFO + "name=B\n", 9, "key 'name' appears twice in [Sequence]"),
        (SEQINFO + "[Sequence]\n", 9, "section [Sequence] appears twice"),
        (SEQINFO + "garbage\nmore garbage\n", 9, "cannot parse 'garbage\\n'"),
    ],
)
def test_read_seqinfo_ini_syntax_errors_are_one_line_with_the_line(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = write_text(tmp_path / "seqinfo.ini", text)
    with pytest.raises(InputError) as caught:
        read_seqinfo(path)
    assert str(caught.value) == f"{path}:{line}: not a valid ini file: {problem}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name=A\n" + SEQINFO, "not a valid ini file: line 1 comes before any [section] header"),
        (SEQINFO.replace("seqLength=10", f"seqLength={10**400}"), "seqLength is too large"),
        (SEQINFO.replace("imExt=.jpg", "imExt=.jpg\x00"), "imExt holds a control character: '.jpg\\x00'"),
    ],
)
def test_read_seqinfo_refuses_headerless_huge_and_control_values_in_one_line(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write_text(tmp_path / "seqinfo.ini", text)
    with pytest.raises(InputError) as caught:
        read_seqinfo(path)
    assert str(caught.value).startswith(f"{path}: ") and problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_frame_paths_stop_at_the_last_image_not_at_seq_length(tmp_path: Path) -> None:
    folder = make_sequence(tmp_path / "SEQ", seq_length=3_000_000_000)
    images = folder / "img1"
    images.mkdir()
    for name in ("000001.jpg", "000003.jpg", "0000009.jpg", "000007.png", "notes.txt"):
        write_text(images / name, "x")  # only the first two are frames: 0000009 is not how frame 9 is named
    (images / "000008.jpg").mkdir()
    code = (
        "import time; from cstrack.data import MotSequence; start = time.perf_counter(); "
        f"paths = MotSequence.open({str(folder)!r}).frame_paths(); "
        "print([p.name for p in paths], time.perf_counter() - start)"
    )
    names, seconds = run_limited(code).rsplit(" ", 1)
    assert names == "['000001.jpg', '000002.jpg', '000003.jpg']" and float(seconds) < 1

    write_seqinfo(folder / "seqinfo.ini", SequenceInfo("SEQ", 30, 2, 640, 480, "img1", ".jpg"))
    assert [path.name for path in MotSequence.open(folder).frame_paths()] == ["000001.jpg", "000002.jpg"]
    write_seqinfo(folder / "seqinfo.ini", SequenceInfo("SEQ", 30, 5, 640, 480, "frames", ".jpg"))
    assert MotSequence.open(folder).frame_paths() == []

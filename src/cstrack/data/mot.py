"""MOTChallenge I/O: seqinfo.ini, sequence folders, frames, and the gt/det/results text tables.

All three text files (gt, det, results) share one parser, `read_mot_file`: one row per box,
`frame,id,x,y,w,h,conf,...` with 1-based frames, comma or whitespace separated.
"""

from __future__ import annotations

import configparser
import io
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from cstrack.atomic import atomic_write
from cstrack.errors import InputError

# 0-based column indices of every MOT text table.
FRAME, ID, X, Y, W, H, CONF = range(7)
# MOT16/17/20 ground truth puts the "consider" mark where others put conf, then class and visibility.
MARK, CLASS, VISIBILITY = 6, 7, 8
MOT_PEDESTRIAN = 1  # the class column's value for a pedestrian in MOT16/17/20 files
# MOTChallenge's class ids and names (TrackEval's MotChallenge2DBox.class_name_to_class_id).
MOT_CLASS_NAMES: dict[int, str] = {
    1: "pedestrian",
    2: "person_on_vehicle",
    3: "car",
    4: "bicycle",
    5: "motorbike",
    6: "non_mot_vehicle",
    7: "static_person",
    8: "distractor",
    9: "occluder",
    10: "occluder_on_ground",
    11: "occluder_full",
    12: "reflection",
    13: "crowd",
}
MOT_CLASS_IDS = {name: class_id for class_id, name in MOT_CLASS_NAMES.items()}
MIN_COLUMNS = 7  # frame,id,x,y,w,h,conf
# A MOT row is ten numbers of a few digits: longer lines and more columns are not MOT tables.
MAX_LINE_CHARS = 1024
MAX_COLUMNS = 64
MIN_WRITTEN_SIDE = 0.005  # the least box width or height that `format_results` writes above 0.00
MOT16_GT_COLUMNS = 9  # frame,id,x,y,w,h,mark,class,visibility (MOT15 has 10: ...,conf,X,Y,Z)
EMPTY_TABLE_COLUMNS = 10
# Frames and ids are int32 values: larger ones are typing errors, and beyond 2**63 they would wrap
# when cast to int64 (1e19 becomes INT64_MIN, and two such ids look like one id twice).
MAX_FRAME = 2**31 - 1
MIN_ID, MAX_ID = -(2**31), 2**31 - 1
# Box coordinates and sizes in pixels: beyond a million the IoU arithmetic (x + w) loses the box
# or overflows (1e308 + 1e308 is inf), and no camera image is that large.
MAX_PIXELS = 1e6
# A table holds printable ASCII, tabs and newlines only: anything else (NUL, other control bytes,
# Unicode spaces) is corruption, never "no rows".
_BAD_CHARACTER = re.compile(r"[^\t\n\x20-\x7e]")
# What an empty table may hold: an empty file, or one of spaces, tabs and newlines.
_BLANK = " \t\n"
# The largest seqLength, imWidth or imHeight: numpy compares frames with seqLength as an int64.
_MAX_INI_INTEGER = 2**63 - 1

_SEQINFO_KEYS = {
    "name": "name",
    "frame_rate": "frameRate",
    "seq_length": "seqLength",
    "width": "imWidth",
    "height": "imHeight",
    "im_dir": "imDir",
    "im_ext": "imExt",
}
logger = logging.getLogger(__name__)
# A comma that ends a line (with optional spaces): some MOT files end every row with one.
_TRAILING_COMMA = re.compile(r",[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class SequenceInfo:
    """The [Sequence] section of a MOTChallenge seqinfo.ini."""

    name: str
    frame_rate: float
    seq_length: int
    width: int
    height: int
    im_dir: str
    im_ext: str


def read_seqinfo(path: str | PathLike) -> SequenceInfo:
    """Read a seqinfo.ini; a missing file, section or key, or a bad number raises InputError.

    A UTF-8 byte-order mark is accepted, as in the MOT tables.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_text(path), source=str(path))
    except configparser.Error as error:
        raise _ini_error(path, error) from None
    if not parser.has_section("Sequence"):
        raise InputError(path, "missing section [Sequence]")
    section = parser["Sequence"]
    values: dict[str, str] = {}
    for field, key in _SEQINFO_KEYS.items():
        if key not in section or not section[key].strip():
            raise InputError(path, f"missing key {key!r} in [Sequence]")
        values[field] = section[key].strip()
        if not values[field].isprintable():
            raise InputError(path, f"{key} holds a control character: {values[field]!r}")
    try:
        frame_rate = float(values["frame_rate"])
    except ValueError:
        raise InputError(path, f"frameRate is not a number: {values['frame_rate']!r}") from None
    if not (math.isfinite(frame_rate) and frame_rate > 0):
        raise InputError(path, f"frameRate must be positive: {values['frame_rate']!r}")
    sizes = {}
    for field in ("seq_length", "width", "height"):
        try:
            sizes[field] = int(values[field])
        except ValueError:
            raise InputError(path, f"{_SEQINFO_KEYS[field]} is not an integer: {values[field]!r}") from None
        if sizes[field] <= 0:
            raise InputError(path, f"{_SEQINFO_KEYS[field]} must be positive: {values[field]!r}")
        if sizes[field] > _MAX_INI_INTEGER:
            raise InputError(path, f"{_SEQINFO_KEYS[field]} is too large: {values[field]!r}")
    return SequenceInfo(
        name=values["name"],
        frame_rate=frame_rate,
        im_dir=values["im_dir"],
        im_ext=values["im_ext"],
        **sizes,
    )


def read_text(path: Path) -> str:
    """A text file with universal newlines and without a UTF-8 BOM; text that is not UTF-8 names its line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except OSError as error:
        raise InputError(path, f"cannot read: {error}") from error
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = _universal_newlines(data[: error.start].decode("utf-8-sig", errors="replace"))
        problem = f"not UTF-8 text: byte 0x{data[error.start]:02x}"
        raise InputError(path, problem, line=before.count("\n") + 1) from None
    return _universal_newlines(text)


def _universal_newlines(text: str) -> str:
    """CRLF and lone CR line ends as LF, as reading in text mode gives them."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _ini_error(path: Path, error: configparser.Error) -> InputError:
    """configparser's multi-line messages as one InputError line, with the line number it gives."""
    if isinstance(error, configparser.MissingSectionHeaderError):
        # The whole file lacks a header, so it is a file-level problem; the line is only a hint.
        return InputError(
            path, f"not a valid ini file: line {error.lineno} comes before any [section] header"
        )
    if isinstance(error, configparser.ParsingError):
        line, text = error.errors[0]
        return InputError(path, f"not a valid ini file: cannot parse {text}", line=line)
    if isinstance(error, configparser.DuplicateSectionError):
        return InputError(
            path, f"not a valid ini file: section [{error.section}] appears twice", line=error.lineno
        )
    if isinstance(error, configparser.DuplicateOptionError):
        return InputError(
            path,
            f"not a valid ini file: key {error.option!r} appears twice in [{error.section}]",
            line=error.lineno,
        )
    return InputError(path, f"not a valid ini file: {' '.join(str(error).split())}")


def write_seqinfo(path: str | PathLike, info: SequenceInfo) -> None:
    """Write a seqinfo.ini (atomically), e.g. to turn a folder of frames into a MOT sequence."""
    values = {key: getattr(info, field) for field, key in _SEQINFO_KEYS.items()}
    if float(values["frameRate"]).is_integer():
        values["frameRate"] = int(values["frameRate"])
    with atomic_write(path) as stream:
        stream.write("[Sequence]\n" + "".join(f"{key}={value}\n" for key, value in values.items()))


def is_mot16_gt(gt: np.ndarray) -> bool:
    """True for MOT16/17/20 ground truth (mark, class, visibility), False for MOT15's layout.

    The column count decides: MOT15 files carry world coordinates where MOT16 has class and
    visibility, so their values cannot tell the formats apart.
    """
    return gt.ndim == 2 and gt.shape[1] == MOT16_GT_COLUMNS


def mot_class_ids(class_names: Sequence[str]) -> np.ndarray:
    """The class column value of each of a model's classes in MOT files: MOTChallenge's ids when
    every name is a MOTChallenge class (pedestrian 1, car 3, ...), else index + 1 for all."""
    if all(name in MOT_CLASS_IDS for name in class_names):
        return np.array([MOT_CLASS_IDS[name] for name in class_names], dtype=np.int64)
    return np.arange(1, len(class_names) + 1, dtype=np.int64)


def pedestrian_rows(gt: np.ndarray, min_visibility: float = 0.0) -> np.ndarray:
    """(N,) bool: the rows of a ground-truth table that are pedestrians to train or detect on.

    MOT16/17/20: marked (mark 1) pedestrians (class 1) at least `min_visibility` visible; MOT15,
    which has no class: every row whose mark/conf column is not 0 (its ignore rule).
    """
    if is_mot16_gt(gt):
        keep: np.ndarray = (
            (gt[:, MARK] == 1) & (gt[:, CLASS] == MOT_PEDESTRIAN) & (gt[:, VISIBILITY] >= min_visibility)
        )
        return keep
    return np.asarray(gt[:, MARK] != 0)


def read_mot_file(path: str | PathLike, min_columns: int = MIN_COLUMNS) -> np.ndarray:
    """Read a MOT text table (gt, det or results) as a float64 array of shape (rows, columns).

    Every row must have the same number of columns (at least `min_columns`), finite numbers, an
    integer frame in 1..MAX_FRAME, an integer id in MIN_ID..MAX_ID, and a box with a positive
    width and height and coordinates within MAX_PIXELS. A file of nothing but spaces, tabs and
    newlines gives an empty (0, 10) array; control bytes and non-ASCII text are malformed.
    A bad row raises InputError with the file, its 1-based line number and the problem.
    """
    path = Path(path)
    text = read_text(path)
    if not text.strip(_BLANK):
        return np.empty((0, EMPTY_TABLE_COLUMNS), dtype=np.float64)
    bad = _BAD_CHARACTER.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise InputError(path, f"control or non-ASCII character {bad.group()!r}", line=line)
    _check_line_lengths(path, text)
    first_row = text.lstrip().split("\n", 1)[0]
    delimiter = "," if "," in first_row else None
    if len(first_row.split(delimiter)) > MAX_COLUMNS:
        line = text.count("\n", 0, text.index(first_row)) + 1
        raise InputError(path, f"more than {MAX_COLUMNS} columns: not a MOT table", line=line)
    if delimiter:
        text = _TRAILING_COMMA.sub("", text)
    try:
        table = np.loadtxt(io.StringIO(text), delimiter=delimiter, ndmin=2, dtype=np.float64, comments=None)
    except ValueError:
        table = None
    if table is None or not _table_is_valid(table, min_columns):
        _raise_first_bad_row(path, text, delimiter, min_columns)
    return table


def _check_line_lengths(path: Path, text: str) -> None:
    """Refuse a line over MAX_LINE_CHARS, found with numpy over the bytes (no object per line), so a
    200 MB line never reaches the parser or an error message."""
    codes = np.frombuffer(text.encode("ascii"), np.uint8)
    ends = np.flatnonzero(codes == ord("\n"))
    lengths = np.diff(ends, prepend=-1, append=len(codes)) - 1
    if len(lengths) and lengths.max() > MAX_LINE_CHARS:
        line = int(lengths.argmax()) + 1
        raise InputError(path, f"line longer than {MAX_LINE_CHARS} characters: not a MOT table", line=line)


def _table_is_valid(table: np.ndarray, min_columns: int) -> bool:
    """The vectorised form of `_row_problem`: True when no row has a problem."""
    if table.shape[1] < min_columns or not np.isfinite(table).all():
        return False
    frames, ids = table[:, FRAME], table[:, ID]
    sizes, corners = table[:, W : H + 1], table[:, X : Y + 1]
    return bool(
        ((frames >= 1) & (frames <= MAX_FRAME) & (frames == np.floor(frames))).all()
        and ((ids >= MIN_ID) & (ids <= MAX_ID) & (ids == np.floor(ids))).all()
        and ((sizes > 0) & (sizes <= MAX_PIXELS)).all()
        and (np.abs(corners) <= MAX_PIXELS).all()
    )


def _raise_first_bad_row(path: Path, text: str, delimiter: str | None, min_columns: int) -> None:
    """Scan line by line (slow, only after the fast parse failed) to name the first bad row."""
    expected = None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(delimiter)]
        if expected is None:
            expected = len(fields)
            if expected < min_columns:
                raise InputError(path, f"found {expected} columns, need at least {min_columns}", line=number)
        problem = _row_problem(fields, expected)
        if problem:
            raise InputError(path, problem, line=number)
    raise InputError(path, "cannot be parsed as a MOT table")


def _row_problem(fields: list[str], expected_columns: int) -> str | None:
    """What is wrong with one row of a MOT table, or None."""
    if len(fields) != expected_columns:
        return f"expected {expected_columns} columns, found {len(fields)}"
    values = []
    for position, field in enumerate(fields, start=1):
        try:
            # float() takes "1_000"; numpy's parser, which decides, does not.
            if "_" in field:
                raise ValueError(field)
            value = float(field)
        except ValueError:
            return f"field {position} is not a number: {field!r}"
        if not math.isfinite(value):
            return f"field {position} is not finite: {field!r}"
        values.append(value)
    if values[FRAME] < 1 or not values[FRAME].is_integer():
        return f"frame is not a positive integer: {fields[FRAME]!r}"
    if values[FRAME] > MAX_FRAME:
        return f"frame is beyond {MAX_FRAME}: {fields[FRAME]!r}"
    if not values[ID].is_integer():
        return f"id is not an integer: {fields[ID]!r}"
    if not MIN_ID <= values[ID] <= MAX_ID:
        return f"id is outside {MIN_ID}..{MAX_ID}: {fields[ID]!r}"
    for name, column in (("width", W), ("height", H)):
        if values[column] <= 0:
            return f"box {name} is not positive: {fields[column]!r}"
        if values[column] > MAX_PIXELS:
            return f"box {name} is beyond {MAX_PIXELS:.0f} pixels: {fields[column]!r}"
    for name, column in (("x", X), ("y", Y)):
        if abs(values[column]) > MAX_PIXELS:
            return f"box {name} is beyond +-{MAX_PIXELS:.0f} pixels: {fields[column]!r}"
    return None


def results_table(
    frames: np.ndarray, ids: np.ndarray, boxes_xywh: np.ndarray, scores: np.ndarray
) -> np.ndarray:
    """Stack per-box columns into the (M, 7) table frame,id,x,y,w,h,score."""
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    frames, ids, scores = (
        np.asarray(column, dtype=np.float64).reshape(-1) for column in (frames, ids, scores)
    )
    if not len(frames) == len(ids) == len(scores) == len(boxes):
        raise ValueError("frames, ids, boxes_xywh and scores must have the same length")
    return np.column_stack([frames, ids, boxes, scores])


def filter_results(
    results: np.ndarray, min_area: float | None = None, max_aspect: float | None = None
) -> np.ndarray:
    """The output filter of the JDE/CSTrack trackers: keep boxes with w*h > min_area and w/h <= max_aspect.

    It drops tiny boxes and boxes much wider than tall, which are not standing pedestrians
    (max_aspect 1.6 in JDE, 0.6 in the CSTrack release, 4 in OMC's). None disables a test.
    Boxes under MIN_WRITTEN_SIDE wide or high always go: written with two decimals they would
    read back 0 wide or high, which `read_results` (and `cstrack eval`) refuse.
    """
    widths, heights = results[:, W], results[:, H]
    keep = (widths >= MIN_WRITTEN_SIDE) & (heights >= MIN_WRITTEN_SIDE)
    if min_area is not None:
        keep &= widths * heights > min_area
    if max_aspect is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            keep &= (heights > 0) & (widths / heights <= max_aspect)
    return results[keep]


def write_results(
    path: str | PathLike,
    frames: np.ndarray,
    ids: np.ndarray | None = None,
    boxes_xywh: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    *,
    min_area: float | None = None,
    max_aspect: float | None = None,
) -> int:
    """Write tracking results as `frame,id,x,y,w,h,score,-1,-1,-1` lines, atomically.

    Pass either the columns (`frames`, `ids`, `boxes_xywh`, `scores`) or, as `frames` alone, a
    (M, >=7) table frame,id,x,y,w,h,score. Rows are sorted by frame then id, and the output filter
    (`filter_results`) is applied. Returns the number of rows written.
    """
    if ids is None and boxes_xywh is None and scores is None:
        table = np.asarray(frames, dtype=np.float64)
        if table.ndim != 2 or table.shape[1] < MIN_COLUMNS:
            raise ValueError(f"a results table needs shape (M, >={MIN_COLUMNS}), got {table.shape}")
        table = table[:, :MIN_COLUMNS]
    elif ids is None or boxes_xywh is None or scores is None:
        raise ValueError("pass ids, boxes_xywh and scores together with frames")
    else:
        table = results_table(frames, ids, boxes_xywh, scores)
    _check_finite(table)  # before the filter, which would drop NaN rows without a word
    table = filter_results(table, min_area=min_area, max_aspect=max_aspect)
    table = table[np.lexsort((table[:, ID], table[:, FRAME]))]
    with atomic_write(path) as stream:
        stream.write(format_results(table))
    return len(table)


def _check_finite(table: np.ndarray) -> None:
    if not np.isfinite(table).all():
        raise ValueError("results must be finite numbers")


def format_results(table: np.ndarray) -> str:
    """The `frame,id,x,y,w,h,score,-1,-1,-1` lines of an (M, 7) results table, in its row order;
    an (M, 8) table's 8th column is written as the class (MOT16+ layout: `...,score,class,-1,-1`)."""
    _check_finite(table)
    if table.shape[1] > MIN_COLUMNS:
        return "".join(
            f"{int(frame)},{int(track_id)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{score:.4f},{int(cls)},-1,-1\n"
            for frame, track_id, x, y, w, h, score, cls in table[:, : MIN_COLUMNS + 1].tolist()
        )
    return "".join(
        f"{int(frame)},{int(track_id)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{score:.4f},-1,-1,-1\n"
        for frame, track_id, x, y, w, h, score in table.tolist()
    )


def read_results(path: str | PathLike) -> np.ndarray:
    """Read a tracking results file (frame,id,x,y,w,h,score,...)."""
    return read_mot_file(path, min_columns=MIN_COLUMNS)


@dataclass(frozen=True)
class MotSequence:
    """One MOTChallenge sequence folder (seqinfo.ini, img1/, gt/gt.txt, det/det.txt)."""

    path: Path
    info: SequenceInfo

    @classmethod
    def open(cls, path: str | PathLike) -> MotSequence:
        """Open a sequence folder by reading its seqinfo.ini."""
        path = Path(path)
        return cls(path=path, info=read_seqinfo(path / "seqinfo.ini"))

    @property
    def name(self) -> str:
        """The folder name, which MOTChallenge results files are named after."""
        return self.path.name

    @property
    def gt_path(self) -> Path:
        return self.path / "gt" / "gt.txt"

    @property
    def det_path(self) -> Path:
        return self.path / "det" / "det.txt"

    def read_gt(self) -> np.ndarray:
        """The ground-truth table (MOT15: 10 columns; MOT16/17/20: 9, with mark, class, visibility)."""
        return read_mot_file(self.gt_path, min_columns=MIN_COLUMNS)

    def read_det(self) -> np.ndarray:
        """The public detections table (id column -1)."""
        return read_mot_file(self.det_path, min_columns=MIN_COLUMNS)

    def frame_paths(self) -> list[Path]:
        """Image paths of frames 1..N (`000001.jpg` ...), N = min(seqLength, highest frame with an image).

        seqLength alone could claim billions of frames; the image folder bounds the list by what
        exists. Missing images before N stay listed, so frame numbers keep their place. Frames
        only under another extension than imExt raise InputError (0 frames is never a result);
        images beyond seqLength are left out with a warning that gives both numbers.
        """
        found, others = self._last_image_frame()
        seqinfo, length = self.path / "seqinfo.ini", self.info.seq_length
        if not found and others:
            extension, count = others.most_common(1)[0]
            raise InputError(
                seqinfo,
                f"imExt={self.info.im_ext} matches no image of {self.info.im_dir}/, which holds "
                f"{count} {extension} frame(s): set imExt={extension}",
            )
        if found > length:
            logger.warning(
                "cstrack: %s: seqLength=%d but %s/ holds frames up to %d: frames 1-%d only",
                seqinfo,
                length,
                self.info.im_dir,
                found,
                length,
            )
        return [self.frame_path(frame) for frame in range(1, min(found, length) + 1)]

    def _last_image_frame(self) -> tuple[int, Counter[str]]:
        """The highest frame number whose image file (named as `frame_path` names it) exists (0 if
        none), and how many frame files of each other extension there are."""
        extension, last, others = self.info.im_ext, 0, Counter[str]()
        try:
            entries = list(os.scandir(self.path / self.info.im_dir))
        except OSError:
            return 0, others
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            if entry.name.endswith(extension):
                stem, suffix = entry.name[: -len(extension)], extension
            canonical = stem.isascii() and stem.isdigit() and len(stem) < 20 and f"{int(stem):06d}" == stem
            if not canonical or not entry.is_file():
                continue
            if suffix == extension:
                last = max(last, int(stem))
            else:
                others[suffix] += 1
        return last, others

    def frame_path(self, frame: int) -> Path:
        """Image path of a 1-based frame number."""
        return self.path / self.info.im_dir / f"{frame:06d}{self.info.im_ext}"

    def read_frame(self, frame: int) -> np.ndarray:
        """Read the BGR image of a 1-based frame number; an unreadable image raises InputError."""
        if not 1 <= frame <= self.info.seq_length:
            raise IndexError(f"frame {frame} outside 1..{self.info.seq_length} of {self.name}")
        import cv2  # here: `cstrack.data` (the synthetic scenes' settings) is read without OpenCV

        image_path = self.frame_path(frame)
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(image_path, "image missing or unreadable")
        return image

    def frames(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame number, BGR image) for frames start..stop inclusive, reading one at a time."""
        last = self.info.seq_length if stop is None else min(stop, self.info.seq_length)
        for frame in range(max(start, 1), last + 1):
            yield frame, self.read_frame(frame)


def find_sequences(root: str | PathLike, detector: str | None = None) -> list[MotSequence]:
    """Find sequence folders (those holding seqinfo.ini), sorted by name.

    `root` is a sequence folder itself, or a dataset root in a MOT15/16/17/20 layout:
    `root/SEQ`, or `root/train/SEQ` and `root/test/SEQ`. `detector` (e.g. "FRCNN") keeps only
    the MOT17 copies named `*-FRCNN`. Finding none raises InputError.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "folder not found")
    if (root / "seqinfo.ini").is_file():
        candidates = [root]
    else:
        children = sorted(child for child in root.iterdir() if child.is_dir())
        candidates = [child for child in children if (child / "seqinfo.ini").is_file()]
        for split in ("train", "test"):
            split_dir = root / split
            if split_dir.is_dir():
                candidates += sorted(
                    child for child in split_dir.iterdir() if (child / "seqinfo.ini").is_file()
                )
    if detector is not None:
        candidates = [folder for folder in candidates if folder.name.endswith(f"-{detector}")]
    if not candidates:
        suffix = f" for detector {detector!r}" if detector is not None else ""
        raise InputError(root, f"no MOTChallenge sequence (a folder with seqinfo.ini) found{suffix}")
    sequences = [MotSequence.open(folder) for folder in candidates]
    return sorted(sequences, key=lambda sequence: (sequence.name, str(sequence.path)))

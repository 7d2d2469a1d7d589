"""MOTChallenge sequences to the JDE training layout, and the readers of that layout.

JDE, FairMOT and CSTrack train from list files of images whose labels sit in a parallel folder;
`from_mot` turns MOTChallenge sequences (real or from `cstrack.data.synth`) into that layout, and
the readers below give a training loop its images, labels and identity offsets.

Layout written by `from_mot`
    OUT_DIR/images/SEQ/000001.jpg            hard link to the sequence's frame (a copy when the
                                             link fails, e.g. across filesystems)
    OUT_DIR/labels_with_ids/SEQ/000001.txt   one line per box: `class id cx cy w h`
    OUT_DIR/NAME.train                       image paths relative to OUT_DIR, one per line
    OUT_DIR/NAME.yaml                        with `classes` only: a data config of NAME.train
                                             that names its classes (`names: [pedestrian, car]`)
- Frames keep their MOT numbers, so a train range and a val range of one sequence can share
  OUT_DIR. Every frame in the range gets a label file, empty when it has no box.
- Boxes: class 0 (pedestrian), clipped to the image, then centre and size divided by the image
  size, so every value is in [0, 1]. Boxes empty after clipping are dropped. With `classes`
  (MOT class ids, e.g. (1, 3)), a row of MOT class classes[i] gets label class i, and the data
  config written beside the list file names them with MOTChallenge's names (`MOT_CLASS_NAMES`).
- Identities: numbered 0, 1, ... contiguously in the order (sequence, MOT id) over the rows kept,
  as JDE's label scripts do; each sequence's ids start after the previous sequence's, so ids are
  unique across the sequences of one conversion and nID = max id + 1. The numbering depends on
  the rows kept, so each conversion (e.g. frames 1-600 and 601-795) has its own identity space.
- Rows kept: MOT16/17/20 ground truth (9 columns: ..., mark, class, visibility) keeps mark 1,
  class 1 (pedestrian; or a class in `classes`) and visibility >= min_visibility. Any other
  table is read as MOT15 (`frame,id,x,y,w,h,conf,...`, the last three -1 or world coordinates):
  rows with conf 0 are dropped, there is no visibility to filter on, and every row is a
  pedestrian (so `classes` without 1 keeps none).
- Hard links share the file with the source: edit an output image in place and the source changes.

Data config (YAML), read by `read_data_config`:
    # datasets to mix; identities are offset per dataset so they are unique across the mix
    root: /data/mot            # optional common root, paths below are relative to it
    names: [pedestrian, car]   # optional: the label classes 0, 1, ... (default: one, pedestrian)
    train:
      pets: pets/PETS09-S2L1.train
      synth: synth/synth.train
    val:
      pets_val: pets/PETS09-S2L1-val.train
- `train` is required, `val` optional; each maps a dataset name to a list file.
- `names`, optional, names the label classes in order: distinct non-empty strings. With it,
  every label's class must be below their number; training sizes the model's classes by it.
- List paths are relative to `root`; `root` (or, without it, the list paths) relative to the
  config file's folder. Image paths inside a list file are relative to the list file's folder.
  The paths returned are absolute, so training does not depend on the working folder.
- Per split, in the order written: a dataset's nID is the number of distinct ids >= 0 in its
  labels, its id_offset the sum of the nIDs before it, and the split's num_ids their total.
  A training loop maps each id >= 0 densely to id_offset + its rank among the dataset's ids
  (-1 means no identity): JDE sizes its classifier by max id + 1, so one label with id
  99999999999 would ask for a 200 TB classifier; here its size is the count of identities.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TypeVar

import numpy as np
import yaml

from cstrack.atomic import atomic_write
from cstrack.data.mot import (
    CLASS,
    FRAME,
    ID,
    MARK,
    MOT_CLASS_NAMES,
    PEDESTRIAN,
    VISIBILITY,
    H,
    MotSequence,
    W,
    X,
    Y,
    find_sequences,
    is_mot16_gt,
    pedestrian_rows,
    read_text,
)
from cstrack.errors import InputError

__all__ = [
    "DEFAULT_CLASSES",
    "ConversionSummary",
    "DataConfig",
    "DataSplit",
    "DatasetList",
    "class_indices",
    "dataset_identities",
    "from_mot",
    "label_path_for",
    "label_table",
    "read_data_config",
    "read_labels",
    "read_list_file",
    "training_rows",
]

Item = TypeVar("Item")
#: Wraps the list of frames being converted, e.g. `tqdm`.
Progress = Callable[[list[Item]], Iterable[Item]]

IMAGES_FOLDER = "images"
LABELS_FOLDER = "labels_with_ids"
LIST_SUFFIX = ".train"
# Columns of a label line.
LABEL_CLASS, LABEL_ID, LABEL_CX, LABEL_CY, LABEL_W, LABEL_H = range(6)
LABEL_COLUMNS = 6
PEDESTRIAN_CLASS = 0
#: The MOT classes `from_mot` keeps unless told: pedestrians, as label class 0.
DEFAULT_CLASSES = (PEDESTRIAN,)
DATA_CONFIG_SUFFIX = ".yaml"
# Rounding slack when checking that label values are normalised.
_NORMALISED_SLACK = 1e-6
_CONFIG_KEYS = ("root", "train", "val", "names")


# --- MOT to JDE -------------------------------------------------------------------------------


def training_rows(gt: np.ndarray, min_visibility: float = 0.0) -> np.ndarray:
    """The rows of a ground-truth table that are pedestrians to train on (see the module rules)."""
    return gt[pedestrian_rows(gt, min_visibility)]


def class_indices(
    gt: np.ndarray, classes: Sequence[int] = DEFAULT_CLASSES, min_visibility: float = 0.0
) -> np.ndarray:
    """(N,) int64: each row's label class, the position of its MOT class in `classes`; -1 if not kept.

    Pedestrians (MOT class 1) are the rows `pedestrian_rows` keeps (in a MOT15 table, which has no
    class column, every row it keeps); another class keeps the MOT16/17/20 rows of that class with
    mark 1 and visibility >= min_visibility.
    """
    indices = np.full(len(gt), -1, dtype=np.int64)
    mot16 = is_mot16_gt(gt)
    for index, mot_class in enumerate(classes):
        if mot_class == PEDESTRIAN:
            keep = pedestrian_rows(gt, min_visibility)
        elif mot16:
            keep = (gt[:, MARK] == 1) & (gt[:, CLASS] == mot_class) & (gt[:, VISIBILITY] >= min_visibility)
        else:
            continue
        indices[keep] = index
    return indices


def label_table(
    rows: np.ndarray,
    width: int,
    height: int,
    id_offset: int = 0,
    classes: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Ground-truth rows as JDE labels: (M, 7) frame,class,id,cx,cy,w,h sorted by frame and id.

    Boxes are clipped to the image and normalised; ids become id_offset + 0.. in MOT-id order.
    `classes` holds each row's label class (default: 0, pedestrian). Also returns the number of
    identities.
    """
    x0, x1 = np.clip(rows[:, X], 0, width), np.clip(rows[:, X] + rows[:, W], 0, width)
    y0, y1 = np.clip(rows[:, Y], 0, height), np.clip(rows[:, Y] + rows[:, H], 0, height)
    keep = (x1 > x0) & (y1 > y0)
    identities, identity_index = np.unique(rows[keep, ID], return_inverse=True)
    table = np.column_stack(
        [
            rows[keep, FRAME],
            np.full(int(keep.sum()), PEDESTRIAN_CLASS) if classes is None else classes[keep],
            identity_index + id_offset,
            (x0[keep] + x1[keep]) / 2 / width,
            (y0[keep] + y1[keep]) / 2 / height,
            (x1[keep] - x0[keep]) / width,
            (y1[keep] - y0[keep]) / height,
        ]
    )
    return table[np.lexsort((table[:, 1 + LABEL_ID], table[:, 0]))], len(identities)


@dataclass(frozen=True)
class ConversionSummary:
    """What `from_mot` wrote."""

    list_path: Path
    sequences: tuple[str, ...]
    #: Sequences found without gt/gt.txt (e.g. test sequences), not converted.
    skipped: tuple[str, ...]
    images: int
    boxes: int
    identities: int
    #: The label classes' names, in order (MOTChallenge's names of the classes kept).
    class_names: tuple[str, ...] = (MOT_CLASS_NAMES[PEDESTRIAN],)
    #: OUT_DIR/NAME.yaml, the data config naming the classes (written only when `classes` is given).
    data_config: Path | None = None


@dataclass(frozen=True)
class _SequenceLabels:
    sequence: MotSequence
    frames: range
    labels: np.ndarray  # label_table() output


def from_mot(
    source: str | PathLike,
    out_dir: str | PathLike,
    *,
    frames: tuple[int, int] | None = None,
    min_visibility: float = 0.0,
    name: str | None = None,
    detector: str | None = None,
    classes: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> ConversionSummary:
    """Convert the sequences under `source` (a sequence or a dataset root) into the JDE layout.

    `frames` (first, last) is a 1-based inclusive range, cut to each sequence's length.
    `name` names the list file OUT_DIR/NAME.train (default: the source folder's name).
    `detector` keeps only the MOT17 copies `*-DETECTOR`, since the three copies share frames.
    `classes`, MOT class ids (e.g. (1, 3): pedestrian, car), keeps those classes as label classes
    0, 1, ... and writes OUT_DIR/NAME.yaml, a data config of the list file with their names;
    without it, pedestrians only (class 0) and no data config, as always.
    The list file is written last, so it only exists once its images and labels are complete.
    """
    selected = DEFAULT_CLASSES if classes is None else _check_classes(classes)
    if not 0 <= min_visibility <= 1:
        raise InputError(None, f"min_visibility must be in [0, 1], got {min_visibility}")
    if frames is not None and not 1 <= frames[0] <= frames[1]:
        raise InputError(None, f"frame range must be 1 <= first <= last, got {frames[0]}-{frames[1]}")
    source, out_dir = Path(source), Path(out_dir)
    name = name or source.resolve().name
    if not name or "/" in name or os.sep in name:
        raise InputError(None, f"list name must be a plain file name, got {name!r}")

    converted, skipped, id_offset = [], [], 0
    for sequence in find_sequences(source, detector=detector):
        if not sequence.gt_path.is_file():
            skipped.append(sequence.name)
            continue
        first, last = frames or (1, sequence.info.seq_length)
        frame_range = range(first, min(last, sequence.info.seq_length) + 1)
        gt = sequence.read_gt()
        row_classes = class_indices(gt, selected, min_visibility)
        in_range = (gt[:, FRAME] >= frame_range.start) & (gt[:, FRAME] < frame_range.stop)
        keep = (row_classes >= 0) & in_range
        labels, identities = label_table(
            gt[keep], sequence.info.width, sequence.info.height, id_offset, row_classes[keep]
        )
        converted.append(_SequenceLabels(sequence, frame_range, labels))
        id_offset += identities
    if not converted:
        raise InputError(source, "no sequence with gt/gt.txt found")
    work = [(item, frame) for item in converted for frame in item.frames]
    if not work:
        raise InputError(source, f"no frames in the range {frames[0]}-{frames[1]}")

    image_paths = []
    for item, frame in progress(work) if progress else work:
        image_paths.append(_write_frame(item, frame, out_dir))
    list_path = out_dir / f"{name}{LIST_SUFFIX}"
    with atomic_write(list_path) as stream:
        stream.writelines(f"{path}\n" for path in image_paths)
    class_names = tuple(MOT_CLASS_NAMES[mot_class] for mot_class in selected)
    data_config = None
    if classes is not None:
        data_config = _write_data_config(out_dir / f"{name}{DATA_CONFIG_SUFFIX}", name, list_path, selected)
    return ConversionSummary(
        list_path=list_path,
        sequences=tuple(item.sequence.name for item in converted),
        skipped=tuple(skipped),
        images=len(image_paths),
        boxes=sum(len(item.labels) for item in converted),
        identities=id_offset,
        class_names=class_names,
        data_config=data_config,
    )


def _check_classes(classes: Sequence[int]) -> tuple[int, ...]:
    """MOT class ids to keep: at least one, each a MOTChallenge class, none twice."""
    selected = tuple(classes)
    known = ", ".join(f"{number} {label}" for number, label in MOT_CLASS_NAMES.items())
    if not selected:
        raise InputError(None, f"classes: give at least one MOT class id ({known})")
    for mot_class in selected:
        if isinstance(mot_class, bool) or not isinstance(mot_class, (int, np.integer)):
            raise InputError(None, f"classes: MOT class ids are integers, got {mot_class!r}")
        if int(mot_class) not in MOT_CLASS_NAMES:
            raise InputError(None, f"classes: {mot_class} is no MOTChallenge class ({known})")
    if len(set(selected)) != len(selected):
        raise InputError(None, f"classes: each MOT class once, got {','.join(map(str, selected))}")
    return tuple(int(mot_class) for mot_class in selected)


def _write_data_config(path: Path, name: str, list_path: Path, classes: tuple[int, ...]) -> Path:
    """A data config training on one list file, naming its label classes (`names: [...]`)."""
    names = [MOT_CLASS_NAMES[mot_class] for mot_class in classes]
    mapping = ", ".join(f"{index} = MOT class {number}" for index, number in enumerate(classes))
    header = (
        f"# Written by cstrack data from-mot --classes {','.join(map(str, classes))} (label class "
        f"{mapping}).\n# Add a `val:` entry, or copy `names` into a config that mixes datasets.\n"
    )
    body = yaml.safe_dump({"names": names}, default_flow_style=None, sort_keys=False)
    body += yaml.safe_dump({"train": {name: list_path.name}}, default_flow_style=False, sort_keys=False)
    with atomic_write(path) as stream:
        stream.write(header + body)
    return path


def _write_frame(item: _SequenceLabels, frame: int, out_dir: Path) -> str:
    """Place one frame's image and label file; returns the image path relative to out_dir."""
    source_image = item.sequence.frame_path(frame)
    if not source_image.is_file():
        raise InputError(source_image, "image missing")
    relative_image = Path(IMAGES_FOLDER, item.sequence.name, source_image.name)
    _link_or_copy(source_image, out_dir / relative_image)
    frame_column = item.labels[:, 0]
    rows = item.labels[
        np.searchsorted(frame_column, frame) : np.searchsorted(frame_column, frame, side="right")
    ]
    with atomic_write(label_path_for(out_dir / relative_image)) as stream:
        for _, label_class, identity, cx, cy, width, height in rows.tolist():
            stream.write(f"{int(label_class)} {int(identity)} {cx:.6f} {cy:.6f} {width:.6f} {height:.6f}\n")
    return relative_image.as_posix()


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link `source` at `target`, or copy it where linking fails; replaces `target` in one step."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise InputError(target, f"cannot write: {error.strerror or error}") from error


# --- readers ----------------------------------------------------------------------------------


def read_list_file(path: str | PathLike) -> list[Path]:
    """The image paths of a list file, one per non-blank line, relative ones taken from its folder."""
    path = Path(path)
    return [path.parent / line.strip() for line in read_text(path).splitlines() if line.strip()]


def label_path_for(image_path: str | PathLike) -> Path:
    """The label file of an image: the last `images` folder becomes `labels_with_ids`, the suffix .txt."""
    image_path = Path(image_path)
    folders = list(image_path.parts[:-1])
    if IMAGES_FOLDER not in folders:
        raise InputError(image_path, f"no {IMAGES_FOLDER!r} folder in the path, so no label path")
    folders[len(folders) - 1 - folders[::-1].index(IMAGES_FOLDER)] = LABELS_FOLDER
    return Path(*folders, image_path.name).with_suffix(".txt")


def _label_problems(table: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """(rows failing, problem) for each rule a label table must follow."""
    classes, ids = table[:, LABEL_CLASS], table[:, LABEL_ID]
    centres, sizes = table[:, [LABEL_CX, LABEL_CY]], table[:, [LABEL_W, LABEL_H]]
    return [
        (~np.isfinite(table).all(axis=1), "values must be finite"),
        ((classes < 0) | (classes != np.floor(classes)), "class must be an integer >= 0"),
        ((ids < -1) | (ids != np.floor(ids)), "id must be an integer >= -1"),
        (
            ((centres < -_NORMALISED_SLACK) | (centres > 1 + _NORMALISED_SLACK)).any(axis=1),
            "box centre must be normalised to [0, 1]",
        ),
        (
            ((sizes <= 0) | (sizes > 1 + _NORMALISED_SLACK)).any(axis=1),
            "box width and height must be in (0, 1]",
        ),
    ]


def read_labels(path: str | PathLike) -> np.ndarray:
    """A label file as a float64 (M, 6) array: class, id, cx, cy, w, h (M = 0 for an empty file).

    A missing file or a malformed line raises InputError naming the file and the line.
    """
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        return np.empty((0, LABEL_COLUMNS))
    try:
        table = np.loadtxt(io.StringIO(text), ndmin=2, dtype=np.float64, comments=None)
    except ValueError:
        table = None
    if (
        table is None
        or table.shape[1] != LABEL_COLUMNS
        or any(bad.any() for bad, _ in _label_problems(table))
    ):
        _raise_first_bad_label(path, text)
    return table


def _raise_first_bad_label(path: Path, text: str) -> None:
    """Scan line by line (only after the fast parse failed) to name the first bad line."""
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != LABEL_COLUMNS:
            raise InputError(
                path,
                f"expected {LABEL_COLUMNS} fields (class id cx cy w h), found {len(fields)}",
                line=number,
            )
        try:
            values = np.array([float(value) for value in fields]).reshape(1, LABEL_COLUMNS)
        except ValueError:
            raise InputError(path, f"not a number in {line.strip()!r}", line=number) from None
        for bad, problem in _label_problems(values):
            if bad[0]:
                raise InputError(path, problem, line=number)
    raise InputError(path, "cannot be parsed as a label file")


def dataset_identities(images: Iterable[Path]) -> np.ndarray:
    """The sorted distinct ids (>= 0) in the labels of a dataset's images.

    A training loop maps them densely onto 0..n-1 (`DatasetList.dense_ids`), so the identity
    classifier is sized by the identities there are, never by the largest id written in a file.
    """
    return _scan_labels(images)[0]


def _scan_labels(images: Iterable[Path]) -> tuple[np.ndarray, int, Path | None]:
    """`dataset_identities`, and the largest label class with the first label file holding it
    (-1 and None when there are no boxes)."""
    ids, top_class, top_file = [], -1, None
    for image in images:
        path = label_path_for(image)
        labels = read_labels(path)
        ids.append(labels[:, LABEL_ID])
        if len(labels) and labels[:, LABEL_CLASS].max() > top_class:
            top_class, top_file = int(labels[:, LABEL_CLASS].max()), path
    every = np.concatenate(ids) if ids else np.empty(0)
    return np.unique(every[every >= 0]).astype(np.int64), top_class, top_file


@dataclass(frozen=True)
class DatasetList:
    """One dataset of a split: its list file, images, identity count and offset in the mix."""

    name: str
    list_path: Path
    images: tuple[Path, ...]
    #: The distinct ids of the labels, sorted; the i-th becomes identity id_offset + i.
    identities: np.ndarray
    #: Added to the dense index of each id so that identities are unique across the split.
    id_offset: int

    @property
    def num_ids(self) -> int:
        return len(self.identities)

    def dense_ids(self, ids: np.ndarray) -> np.ndarray:
        """Label ids (-1: unknown) -> split identities id_offset + 0..num_ids-1 (-1 stays -1)."""
        known = ids >= 0
        out = np.full(ids.shape, -1, dtype=np.float64)
        out[known] = np.searchsorted(self.identities, ids[known]) + self.id_offset
        return out


@dataclass(frozen=True)
class DataSplit:
    """The datasets mixed in one split (train or val), in the order the config lists them."""

    datasets: dict[str, DatasetList]

    @property
    def num_ids(self) -> int:
        """Total identities of the split: the size of the identity classifier."""
        return sum(dataset.num_ids for dataset in self.datasets.values())

    @property
    def images(self) -> list[Path]:
        return [image for dataset in self.datasets.values() for image in dataset.images]


@dataclass(frozen=True)
class DataConfig:
    """A data config file read and resolved (see the module docstring for the format)."""

    path: Path
    train: DataSplit
    val: DataSplit | None
    #: The label classes' names in order, when the config names them (`names:`); else None.
    names: tuple[str, ...] | None = None


def read_data_config(path: str | PathLike) -> DataConfig:
    """Read a YAML data config, its list files and labels; any problem raises InputError."""
    path = Path(path)
    try:
        document = yaml.safe_load(read_text(path))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(path, f"not valid YAML: {problem}", line=mark.line + 1 if mark else None) from None
    if not isinstance(document, dict) or "train" not in document:
        raise InputError(
            path, "must be a mapping with a 'train' key (and optionally 'root', 'val' and 'names')"
        )
    unknown = sorted(str(key) for key in document if key not in _CONFIG_KEYS)
    if unknown:
        raise InputError(path, f"unknown key(s) {', '.join(unknown)}; expected {', '.join(_CONFIG_KEYS)}")
    base = path.resolve().parent
    root = document.get("root")
    if root is not None:
        if not isinstance(root, str) or not root.strip():
            raise InputError(path, "'root' must be a folder path")
        base = (base / root).resolve()
    names = _read_names(path, document["names"]) if "names" in document else None
    val = document.get("val")
    return DataConfig(
        path=path,
        train=_read_split(path, "train", document["train"], base, names),
        val=None if val is None else _read_split(path, "val", val, base, names),
        names=names,
    )


def _read_names(config_path: Path, names: object) -> tuple[str, ...]:
    """The `names` list: distinct, non-empty, printable strings, at least one."""
    if not isinstance(names, list) or not names:
        raise InputError(config_path, "'names' must be a list of class names, e.g. [pedestrian, car]")
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip() or not name.isprintable():
            raise InputError(
                config_path, f"'names' entry {index} must be a non-empty printable string, got {name!r}"
            )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputError(config_path, f"'names' lists {', '.join(map(repr, duplicates))} more than once")
    return tuple(names)


def _read_split(
    config_path: Path, split: str, entries: object, base: Path, names: tuple[str, ...] | None = None
) -> DataSplit:
    if not isinstance(entries, dict) or not entries:
        raise InputError(config_path, f"'{split}' must map dataset names to list files")
    datasets, id_offset = {}, 0
    for name, list_file in entries.items():
        if not isinstance(list_file, str) or not list_file.strip():
            raise InputError(config_path, f"'{split}.{name}' must be a list file path")
        list_path = base / list_file
        images = read_list_file(list_path)
        if not images:
            raise InputError(list_path, "lists no images")
        identities, top_class, top_file = _scan_labels(images)
        if names is not None and top_class >= len(names):
            raise InputError(
                top_file,
                f"class {top_class} but {config_path} names {len(names)} class(es) "
                f"({', '.join(names)}: 0..{len(names) - 1})",
            )
        dataset = DatasetList(str(name), list_path, tuple(images), identities, id_offset)
        datasets[str(name)] = dataset
        id_offset += dataset.num_ids
    return DataSplit(datasets)

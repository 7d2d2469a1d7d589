"""The JDE training layout and its readers: list files, label files and data configs.

JDE, FairMOT and CSTrack train from list files of images whose labels sit in a parallel folder;
`cstrack.data.mot_to_jde.from_mot` turns MOTChallenge sequences into that layout, and the readers
below give a training loop its images, labels and identity offsets.

Layout written by `from_mot`
    OUT_DIR/images/SEQ/000001.jpg            hard link to the sequence's frame (a copy when the
                                             link fails, e.g. across filesystems)
    OUT_DIR/labels_with_ids/SEQ/000001.txt   one line per box: `class id cx cy w h`
    OUT_DIR/NAME.train                       image paths relative to OUT_DIR, one per line
    OUT_DIR/NAME.yaml                        with `classes` only: a data config of NAME.train
                                             that names its classes (`names: [pedestrian, car]`)

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
from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import yaml

from cstrack.data.mot import read_text
from cstrack.errors import InputError

__all__ = [
    "DataConfig",
    "DataSplit",
    "DatasetList",
    "dataset_identities",
    "label_path_for",
    "read_data_config",
    "read_labels",
    "read_list_file",
]

IMAGES_FOLDER = "images"
LABELS_FOLDER = "labels_with_ids"
LIST_SUFFIX = ".train"
# Columns of a label line.
LABEL_CLASS, LABEL_ID, LABEL_CX, LABEL_CY, LABEL_W, LABEL_H = range(6)
LABEL_COLUMNS = 6
JDE_PEDESTRIAN = 0  # the label class of a pedestrian in JDE label files (MOT class 1: `MOT_PEDESTRIAN`)
DATA_CONFIG_SUFFIX = ".yaml"
# Rounding slack when checking that label values are normalised.
_NORMALISED_SLACK = 1e-6
_CONFIG_KEYS = ("root", "train", "val", "names")


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

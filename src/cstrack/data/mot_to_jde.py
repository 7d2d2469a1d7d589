"""MOTChallenge sequences to the JDE training layout (`cstrack.data.jde`): `from_mot`.

`from_mot` turns MOTChallenge sequences (real or from `cstrack.data.synth`) into the layout that
`cstrack.data.jde` describes and reads:
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
"""

from __future__ import annotations

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
from cstrack.data.jde import (
    DATA_CONFIG_SUFFIX,
    IMAGES_FOLDER,
    JDE_PEDESTRIAN,
    LABEL_ID,
    LIST_SUFFIX,
    label_path_for,
)
from cstrack.data.mot import (
    CLASS,
    FRAME,
    ID,
    MARK,
    MOT_CLASS_NAMES,
    MOT_PEDESTRIAN,
    VISIBILITY,
    H,
    MotSequence,
    W,
    X,
    Y,
    find_sequences,
    is_mot16_gt,
    pedestrian_rows,
)
from cstrack.errors import InputError

__all__ = [
    "DEFAULT_CLASSES",
    "ConversionSummary",
    "label_classes",
    "from_mot",
    "label_table",
    "training_rows",
]

Item = TypeVar("Item")
#: Wraps the list of frames being converted, e.g. `tqdm`.
Progress = Callable[[list[Item]], Iterable[Item]]

#: The MOT classes `from_mot` keeps unless told: pedestrians, as label class 0.
DEFAULT_CLASSES = (MOT_PEDESTRIAN,)


def training_rows(gt: np.ndarray, min_visibility: float = 0.0) -> np.ndarray:
    """The rows of a ground-truth table that are pedestrians to train on (see the module rules)."""
    return gt[pedestrian_rows(gt, min_visibility)]


def label_classes(
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
        if mot_class == MOT_PEDESTRIAN:
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
            np.full(int(keep.sum()), JDE_PEDESTRIAN) if classes is None else classes[keep],
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
    class_names: tuple[str, ...] = (MOT_CLASS_NAMES[MOT_PEDESTRIAN],)
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
    selected = DEFAULT_CLASSES if classes is None else _check_mot_classes(classes)
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
        row_classes = label_classes(gt, selected, min_visibility)
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


def _check_mot_classes(classes: Sequence[int]) -> tuple[int, ...]:
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

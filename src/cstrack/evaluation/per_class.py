"""Per-class scores of multi-class tracking results, each class scored as its own sequence.

A multi-class results file carries each box's class in column 8, as MOT16+ ground truth does.
Each class is scored with TrackEval's metrics on the ground-truth rows of that class (mark not
0) and the results of that class, under MOT15's rules: no distractor classes are removed first,
since MOTChallenge defines those only for pedestrian tracking. One-class results (column 8
absent or -1) are scored by `evaluate_sequence` under the benchmark's rules instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cstrack.data.mot import CLASS, MARK, MIN_COLUMNS, MOT_CLASS_IDS
from cstrack.errors import InputError
from cstrack.evaluation.metrics import (
    Scores,
    SequenceTables,
    evaluate_sequence,
    evaluate_tables,
    read_tables,
)


def has_classes(results: NDArray[np.float64]) -> bool:
    """True when a results table carries classes in column 8 (not the -1 of one-class files)."""
    return bool(results.shape[1] > CLASS and len(results) and (results[:, CLASS] >= 1).any())


def class_tables(tables: SequenceTables, class_id: int) -> SequenceTables:
    """One class of a sequence: its marked gt rows and its results (7 columns)."""
    gt, results, num_frames = tables
    if gt.shape[1] <= CLASS:
        raise ValueError("per-class scores need ground truth with a class column (MOT16+ layout)")
    class_gt = gt[(np.trunc(gt[:, CLASS]) == class_id) & (np.trunc(gt[:, MARK]) != 0)]
    class_results = results[np.trunc(results[:, CLASS]) == class_id] if has_classes(results) else results
    return SequenceTables(class_gt, class_results[:, :MIN_COLUMNS], num_frames)


def evaluate_per_class(
    gt: NDArray[np.float64],
    results: NDArray[np.float64],
    num_frames: int,
    class_ids: Mapping[str, int],
) -> dict[str, Scores]:
    """{class name: scores} for each class of `class_ids` (name -> the class column's value).

    `gt` needs the class column (MOT16+ layout); `results` rows of other classes are ignored.
    """
    return {
        name: evaluate_sequence(*class_tables(SequenceTables(gt, results, num_frames), class_id), "MOT15")
        for name, class_id in class_ids.items()
    }


def evaluate_classes(
    gt_root: str | PathLike[str],
    results_dir: str | PathLike[str],
    class_names: Sequence[str],
    sequences: Sequence[str] | None = None,
    frames: Any = None,
) -> dict[str, dict[str, Any]]:
    """`evaluate` per class for a folder of multi-class results: {class name: evaluate's report}.

    `class_names` are MOTChallenge class names (pedestrian, car, ...), each scored on the rows of
    its class id in gt and results; sequences and frames are chosen as `evaluate` chooses them.
    """
    unknown = [name for name in class_names if name not in MOT_CLASS_IDS]
    if unknown:
        raise InputError(
            None, f"unknown class {unknown[0]!r}: use MOTChallenge names ({', '.join(MOT_CLASS_IDS)})"
        )
    found = read_tables(gt_root, results_dir, sequences, frames)
    for tables, gt_path, _ in found.values():
        if tables.gt.shape[1] <= CLASS:
            raise InputError(gt_path, "per-class scores need ground truth with a class column (MOT16+)")
    return {
        name: evaluate_tables(
            {
                sequence: class_tables(tables, MOT_CLASS_IDS[name])
                for sequence, (tables, _, _) in found.items()
            },
            "MOT15",
        )
        for name in class_names
    }

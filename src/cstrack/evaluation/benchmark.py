"""MOTChallenge benchmark rules: the preprocessing TrackEval applies before scoring a sequence.

This mirrors `trackeval.datasets.MotChallenge2DBox` (1.3.0): `_load_raw_file` (how columns are
read), `get_raw_seq_data` (IoU of every gt/prediction pair per frame) and
`get_preprocessed_seq_data` (distractor removal, gt filtering, id relabelling), as plain
functions over our arrays, so that our scores equal TrackEval's to the last bit.

Rules, per frame:
- MOT16/17/20: predictions are matched to all gt boxes (Hungarian on IoU, pairs below 0.5
  never match); predictions matched to a distractor class (2 person on vehicle, 7 static person,
  8 distractor, 12 reflection; MOT20 adds 6 non-MOT vehicle) are removed. Then only gt boxes of
  class 1 (pedestrian) whose mark (1-based column 7) is non-zero are kept.
- MOT15: no matching and no class filter; gt boxes whose column 7 (conf) is 0 are still dropped,
  as TrackEval drops "zero marked" rows for every benchmark.
Ids are then relabelled to 0..n-1 per sequence, as TrackEval's metrics require.

Only frames that hold a gt or result row are scored: TrackEval's HOTA, CLEAR and Identity skip a
frame with neither without any change of state, so leaving them out changes no score, and it
bounds time and memory by the rows, not by seqLength (which a file may set to billions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from trackeval.datasets._base_dataset import _BaseDataset

from cstrack.data.mot import (
    CLASS,
    CONF,
    FRAME,
    ID,
    MARK,
    MAX_FRAME,
    MAX_ID,
    MIN_COLUMNS,
    MIN_ID,
    MOT_CLASS_NAMES,
    MOT_PEDESTRIAN,
    H,
    X,
    is_mot16_gt,
)
from cstrack.errors import InputError

# TrackEval's MotChallenge2DBox.class_name_to_class_id covers classes 1..13.
VALID_GT_CLASSES = tuple(MOT_CLASS_NAMES)
DISTRACTOR_CLASSES = (2, 7, 8, 12)
NON_MOT_VEHICLE = 6
MATCH_IOU = 0.5
_EPS = np.finfo("float").eps
GT_MIN_COLUMNS = 8  # TrackEval needs the class column in ground truth, even for MOT15.
# TrackEval's Identity metric (IDF1) fills three square float64 matrices over a sequence's
# ground-truth and result ids together, 24 x ids^2 bytes (2.4 GB at 10,000), and HOTA 22 matrices
# of gt ids x result ids: more ids than this (an id per row, a column of row numbers) are refused.
MAX_SCORED_IDS = 10_000
# The per-frame lists of TrackEval's preprocessed sequence data.
PER_FRAME_KEYS = (
    "gt_ids",
    "tracker_ids",
    "gt_dets",
    "tracker_dets",
    "tracker_confidences",
    "similarity_scores",
)


@dataclass(frozen=True)
class BenchmarkRules:
    """How one MOTChallenge benchmark filters ground truth and predictions before scoring."""

    name: str
    preprocess: bool
    distractor_classes: tuple[int, ...]


BENCHMARKS: dict[str, BenchmarkRules] = {
    "MOT15": BenchmarkRules("MOT15", preprocess=False, distractor_classes=()),
    "MOT16": BenchmarkRules("MOT16", preprocess=True, distractor_classes=DISTRACTOR_CLASSES),
    "MOT17": BenchmarkRules("MOT17", preprocess=True, distractor_classes=DISTRACTOR_CLASSES),
    "MOT20": BenchmarkRules(
        "MOT20", preprocess=True, distractor_classes=(*DISTRACTOR_CLASSES, NON_MOT_VEHICLE)
    ),
}


def benchmark_rules(benchmark: str) -> BenchmarkRules:
    """The rules of a benchmark name (MOT15, MOT16, MOT17, MOT20)."""
    try:
        return BENCHMARKS[benchmark]
    except KeyError:
        raise InputError(
            None, f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}"
        ) from None


def guess_benchmark(gts: Mapping[str, NDArray[np.float64]]) -> str:
    """The rules the ground truth of the named sequences asks for, one for all (`track --eval`,
    `tune` and `eval` alike): MOT17's for gt with class ids, MOT15's (gt as is) for MOT15-style
    gt; InputError when the sequences differ."""
    guessed = {name: "MOT17" if is_mot16_gt(gt) else "MOT15" for name, gt in gts.items()}
    if len(set(guessed.values())) > 1:
        raise InputError(None, f"the sequences need different benchmark rules ({guessed}); give --benchmark")
    return next(iter(guessed.values()))


def box_ious(gt_boxes: NDArray[np.float64], tracker_boxes: NDArray[np.float64]) -> NDArray[np.float64]:
    """IoU matrix (gt x predictions) of x0,y0,w,h boxes, computed by TrackEval's own function."""
    ious: NDArray[np.float64] = _BaseDataset._calculate_box_ious(gt_boxes, tracker_boxes, box_format="xywh")
    return ious


def split_by_frame(table: NDArray[np.float64], frames: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """Rows of each of `frames` (sorted frame numbers, one array each, file order kept).

    Every row's frame must be among `frames`; the work is bounded by the rows and `frames`.
    """
    index = np.searchsorted(frames, table[:, FRAME])
    order = np.argsort(index, kind="stable")
    ends = np.cumsum(np.bincount(index, minlength=len(frames)))
    return np.split(table[order], ends[:-1]) if len(frames) else []


def preprocess_sequence(
    gt: NDArray[np.float64],
    results: NDArray[np.float64],
    num_frames: int,
    benchmark: str = "MOT17",
    *,
    gt_path: str | PathLike[str] | None = None,
    results_path: str | PathLike[str] | None = None,
) -> dict[str, Any]:
    """Build the per-sequence dict TrackEval's metrics take, with the benchmark's rules applied.

    `gt` and `results` are MOT tables (`read_mot_file`); `num_frames` is seqLength. The paths
    only name the files in InputError messages: rows beyond seqLength, an id twice in a frame,
    a non-pedestrian result class, or (where preprocessing applies) a gt class TrackEval rejects.
    TrackEval checks gt classes only in frames that also hold predictions; we check them all.
    The per-frame lists cover the frames that hold a row (in order; see the module docstring),
    and `num_timesteps` counts them.
    """
    rules = benchmark_rules(benchmark)
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    _check_table(gt, num_frames, GT_MIN_COLUMNS, gt_path, "ground truth")
    _check_table(results, num_frames, MIN_COLUMNS, results_path, "results")
    _check_id_count(gt, results, gt_path, results_path)
    # Like TrackEval, a result class column (8th) above 1 means the file is not pedestrian tracking.
    # Class and mark columns are truncated as TrackEval's astype(int) does, but as floats, which
    # cannot wrap (1e19 as int64 is negative).
    if results.shape[1] > CLASS and len(results) and (np.trunc(results[:, CLASS]) > MOT_PEDESTRIAN).any():
        raise InputError(results_path, "only pedestrians (class 1 in column 8) can be evaluated")
    if rules.preprocess:
        invalid = np.setdiff1d(np.unique(np.trunc(gt[:, CLASS])), VALID_GT_CLASSES)
        if len(invalid):
            raise InputError(
                gt_path,
                f"ground-truth classes {[int(value) for value in invalid]} are not MOTChallenge classes 1-13 "
                f"(MOT15-style ground truth? evaluate it as MOT15)",
            )

    frames = np.union1d(gt[:, FRAME], results[:, FRAME])
    data: dict[str, Any] = {key: [] for key in PER_FRAME_KEYS}
    for gt_rows, tracker_rows in zip(
        split_by_frame(gt, frames), split_by_frame(results, frames), strict=True
    ):
        gt_boxes, tracker_boxes = gt_rows[:, X : H + 1], tracker_rows[:, X : H + 1]
        similarity = box_ious(gt_boxes, tracker_boxes)
        gt_classes = np.trunc(gt_rows[:, CLASS])

        removed = np.array([], int)
        if rules.preprocess and len(gt_rows) and len(tracker_rows):
            removed = _predictions_on_distractors(similarity, gt_classes, rules.distractor_classes)
        keep_gt = np.trunc(gt_rows[:, MARK]) != 0
        if rules.preprocess:
            keep_gt &= gt_classes == MOT_PEDESTRIAN

        data["tracker_ids"].append(np.delete(tracker_rows[:, ID].astype(int), removed))
        data["tracker_dets"].append(np.delete(tracker_boxes, removed, axis=0))
        data["tracker_confidences"].append(np.delete(tracker_rows[:, CONF], removed))
        data["gt_ids"].append(gt_rows[keep_gt, ID].astype(int))
        data["gt_dets"].append(gt_boxes[keep_gt])
        data["similarity_scores"].append(np.delete(similarity, removed, axis=1)[keep_gt])

    data["num_gt_ids"] = _relabel_contiguous(data["gt_ids"])
    data["num_tracker_ids"] = _relabel_contiguous(data["tracker_ids"])
    data["num_gt_dets"] = sum(len(ids) for ids in data["gt_ids"])
    data["num_tracker_dets"] = sum(len(ids) for ids in data["tracker_ids"])
    data["num_timesteps"] = len(frames)
    return data


def _check_table(
    table: NDArray[np.float64], num_frames: int, min_columns: int, path: str | PathLike[str] | None, what: str
) -> None:
    """Reject what TrackEval's loader rejects: too few columns, frames outside 1..seqLength, repeated ids.

    Frames and ids are checked as floats before any cast to int, which would wrap huge values.
    """
    if table.ndim != 2 or (len(table) and table.shape[1] < min_columns):
        raise InputError(path, f"expected at least {min_columns} columns for {what}, got shape {table.shape}")
    if not len(table):
        return
    frames, ids = table[:, FRAME], table[:, ID]
    outside = ~((frames >= 1) & (frames <= min(num_frames, MAX_FRAME)))
    if outside.any():
        raise InputError(
            path, f"frame {_number(frames[outside][0])} is outside the sequence (seqLength {num_frames})"
        )
    bad = (frames != np.floor(frames)) | (ids != np.floor(ids)) | ~((ids >= MIN_ID) & (ids <= MAX_ID))
    if bad.any():
        frame, track_id = table[bad][0, [FRAME, ID]]
        raise InputError(
            path,
            f"frame {_number(frame)} and id {_number(track_id)} must be integers, ids in {MIN_ID}..{MAX_ID}",
        )
    pairs, counts = np.unique(np.column_stack([frames, ids]).astype(int), axis=0, return_counts=True)
    if (counts > 1).any():
        frame, track_id = pairs[counts > 1][0]
        raise InputError(path, f"id {track_id} appears more than once in frame {frame}")


def _check_id_count(
    gt: NDArray[np.float64],
    results: NDArray[np.float64],
    gt_path: str | PathLike[str] | None,
    results_path: str | PathLike[str] | None,
) -> None:
    """Refuse, before TrackEval allocates for them, more than MAX_SCORED_IDS distinct ids in the
    ground truth and results together, naming the file that holds more of them."""
    gt_ids, result_ids = (len(np.unique(table[:, ID])) for table in (gt, results))
    if gt_ids + result_ids <= MAX_SCORED_IDS:
        return
    if result_ids >= gt_ids:
        path, problem = (
            results_path,
            f"{result_ids} distinct track ids in the results ({gt_ids} in the ground truth)",
        )
    else:
        path, problem = gt_path, f"{gt_ids} distinct ids in the ground truth ({result_ids} in the results)"
    raise InputError(
        path,
        f"{problem}: a sequence is scored with at most {MAX_SCORED_IDS} ids of both together "
        "(TrackEval's IDF1 takes 24 x ids^2 bytes)",
    )


def _number(value: float) -> str:
    """A frame or id for a message: exact digits when integral (3000000001, not 3e+09)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _predictions_on_distractors(
    similarity: NDArray[np.float64], gt_classes: NDArray[np.float64], distractor_classes: tuple[int, ...]
) -> NDArray[np.intp]:
    """Indices of predictions matched (IoU >= 0.5, Hungarian on IoU) to a distractor gt box."""
    matching_scores = similarity.copy()
    matching_scores[matching_scores < MATCH_IOU - _EPS] = 0
    match_rows, match_cols = linear_sum_assignment(-matching_scores)
    matched = matching_scores[match_rows, match_cols] > 0 + _EPS
    match_rows, match_cols = match_rows[matched], match_cols[matched]
    on_distractors: NDArray[np.intp] = match_cols[np.isin(gt_classes[match_rows], distractor_classes)]
    return on_distractors


def _relabel_contiguous(ids_per_frame: list[NDArray[np.int_]]) -> int:
    """Relabel ids in place to 0..n-1 in sorted order (as TrackEval does); return n."""
    unique_ids = np.unique(np.concatenate([np.empty(0, int), *ids_per_frame]))
    for index, ids in enumerate(ids_per_frame):
        ids_per_frame[index] = np.searchsorted(unique_ids, ids).astype(int)
    return len(unique_ids)

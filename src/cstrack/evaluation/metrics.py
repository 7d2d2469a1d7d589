"""Scoring with TrackEval's own HOTA, CLEAR and Identity classes, per sequence and combined.

The metrics are TrackEval's (not re-implemented), fed with the data dict `preprocess_sequence`
builds, so the numbers are those of the official MOTChallenge evaluation.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from trackeval.metrics import CLEAR, HOTA, Identity

from cstrack.data.mot import FRAME, MotSequence, find_sequences, read_mot_file, read_results
from cstrack.data.sources import FrameRange, frame_range
from cstrack.errors import InputError
from cstrack.evaluation.benchmark import GT_MIN_COLUMNS, benchmark_rules, guess_benchmark, preprocess_sequence

Scores = dict[str, float | int]
# Raw TrackEval output of one sequence (or of the combination): metric name -> its fields.
MetricResults = dict[str, dict[str, Any]]

# Our key -> (TrackEval metric, TrackEval field). HOTA fields are arrays over the 19 alphas;
# we report their mean, as TrackEval's summaries do.
SCORE_FIELDS: dict[str, tuple[str, str]] = {
    "HOTA": ("HOTA", "HOTA"),
    "DetA": ("HOTA", "DetA"),
    "AssA": ("HOTA", "AssA"),
    "LocA": ("HOTA", "LocA"),
    "MOTA": ("CLEAR", "MOTA"),
    "MOTP": ("CLEAR", "MOTP"),
    "MODA": ("CLEAR", "MODA"),
    "IDF1": ("Identity", "IDF1"),
    "IDP": ("Identity", "IDP"),
    "IDR": ("Identity", "IDR"),
    "Recall": ("CLEAR", "CLR_Re"),
    "Precision": ("CLEAR", "CLR_Pr"),
    "IDSW": ("CLEAR", "IDSW"),
    "FP": ("CLEAR", "CLR_FP"),
    "FN": ("CLEAR", "CLR_FN"),
    "TP": ("CLEAR", "CLR_TP"),
    "IDTP": ("Identity", "IDTP"),
    "IDFP": ("Identity", "IDFP"),
    "IDFN": ("Identity", "IDFN"),
    "MT": ("CLEAR", "MT"),
    "PT": ("CLEAR", "PT"),
    "ML": ("CLEAR", "ML"),
    "Frag": ("CLEAR", "Frag"),
}
COUNT_KEYS = frozenset({"IDSW", "FP", "FN", "TP", "IDTP", "IDFP", "IDFN", "MT", "PT", "ML", "Frag"})
TABLE_COLUMNS = (
    "HOTA",
    "DetA",
    "AssA",
    "LocA",
    "MOTA",
    "MOTP",
    "IDF1",
    "IDP",
    "IDR",
    "IDSW",
    "FP",
    "FN",
    "MT",
    "PT",
    "ML",
    "Frag",
)
COMBINED = "COMBINED"


class SequenceTables(NamedTuple):
    """One sequence to score: ground truth and results as MOT tables, and its seqLength."""

    gt: NDArray[np.float64]
    results: NDArray[np.float64]
    num_frames: int


def frame_window(
    tables: SequenceTables,
    frames: FrameRange | str | None,
    *,
    gt_path: str | PathLike[str] | None = None,
) -> SequenceTables:
    """The ground truth and results of the frames in `frames` (1-based, inclusive), cut at seqLength.

    This is how `cstrack track --frames A-B --eval` scores a window of a sequence, so scoring the
    file it wrote with `evaluate(..., frames=...)` gives the same numbers: ground truth outside the
    window is not counted as missed, results outside it are not counted as false. `num_frames`
    becomes the window's last frame. None returns `tables` unchanged; a window that starts beyond
    seqLength is an InputError (naming `gt_path`).
    """
    window = frame_range(frames)
    if window is None:
        return tables
    gt, results, num_frames = tables
    if window.first > num_frames:
        raise InputError(gt_path, f"frames {window} are outside this sequence of {num_frames} frames")
    last = num_frames if window.last is None else min(window.last, num_frames)

    def inside(table: NDArray[np.float64]) -> NDArray[np.float64]:
        if table.ndim != 2 or not len(table):
            return table  # malformed or empty: left to preprocess_sequence's checks
        rows: NDArray[np.float64] = table[(table[:, FRAME] >= window.first) & (table[:, FRAME] <= last)]
        return rows

    return SequenceTables(inside(gt), inside(results), last)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow what TrackEval prints (config dumps, timing) so our output stays ours."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _metrics() -> tuple[HOTA, CLEAR, Identity]:
    with _quiet():
        return HOTA(), CLEAR({"PRINT_CONFIG": False}), Identity({"PRINT_CONFIG": False})


def _score(data: dict[str, Any]) -> MetricResults:
    with _quiet():
        return {metric.get_name(): metric.eval_sequence(data) for metric in _metrics()}


def _combine(per_sequence: dict[str, MetricResults]) -> MetricResults:
    """TrackEval's combine_sequences: sums counts, weights HOTA's AssA and LocA by true positives."""
    with _quiet():
        return {
            metric.get_name(): metric.combine_sequences(
                {name: results[metric.get_name()] for name, results in per_sequence.items()}
            )
            for metric in _metrics()
        }


def _summary(results: MetricResults) -> Scores:
    """Our flat score dict: ratios as floats in [0, 1], counts as ints."""
    scores: Scores = {}
    for key, (metric, field) in SCORE_FIELDS.items():
        value = float(np.mean(results[metric][field]))
        scores[key] = round(value) if key in COUNT_KEYS else value
    return scores


def evaluate_sequence(
    gt: NDArray[np.float64],
    results: NDArray[np.float64],
    num_frames: int,
    benchmark: str = "MOT17",
    *,
    gt_path: str | PathLike[str] | None = None,
    results_path: str | PathLike[str] | None = None,
) -> Scores:
    """Score one sequence's results against its ground truth (MOT tables) under a benchmark's rules.

    Returns the keys of SCORE_FIELDS: HOTA, DetA, AssA, LocA (means over TrackEval's alphas),
    MOTA, MOTP, IDF1, ... as fractions, and IDSW, FP, FN, TP, MT, PT, ML, Frag ... as ints.
    The paths only name the files in error messages.
    """
    data = preprocess_sequence(gt, results, num_frames, benchmark, gt_path=gt_path, results_path=results_path)
    return _summary(_score(data))


def evaluate(
    gt_root: str | PathLike[str],
    results_dir: str | PathLike[str],
    benchmark: str | None = None,
    sequences: Sequence[str] | None = None,
    frames: FrameRange | str | None = None,
) -> dict[str, Any]:
    """Score a folder of results (`SEQ.txt`) against MOTChallenge ground truth, as TrackEval does.

    `gt_root` is a sequence folder or a dataset root (see `find_sequences`); each sequence needs
    `gt/gt.txt` and `seqinfo.ini` (no row may lie beyond seqLength). Without `sequences`, every
    sequence that has `gt/gt.txt` is evaluated. As in TrackEval, a missing `SEQ.txt` is an error
    (InputError), not an empty result: a forgotten file must not pass silently as a bad score;
    name the sequences to evaluate fewer. `frames` ('A-B' or a FrameRange) scores only that window
    of every sequence (see `frame_window`): what `cstrack track --frames A-B` wrote, scored as
    `--eval` scored it. `benchmark` names the rules; None takes those the ground truth asks for
    (`guess_benchmark`). Returns {"sequences": {SEQ: scores}, "combined": scores}.
    """
    if benchmark is not None:
        benchmark_rules(benchmark)  # a bad name fails before any file is read
    found = read_tables(gt_root, results_dir, sequences, frames)
    benchmark = benchmark or guess_benchmark({name: tables.gt for name, (tables, _, _) in found.items()})
    per_sequence: dict[str, MetricResults] = {}
    for name, (tables, gt_path, results_path) in found.items():
        data = preprocess_sequence(*tables, benchmark, gt_path=gt_path, results_path=results_path)
        per_sequence[name] = _score(data)
    return _report(per_sequence)


def read_tables(
    gt_root: str | PathLike[str],
    results_dir: str | PathLike[str],
    sequences: Sequence[str] | None = None,
    frames: FrameRange | str | None = None,
) -> dict[str, tuple[SequenceTables, Path, Path]]:
    """{SEQ: (tables, gt path, results path)} of the sequences `evaluate` scores (its rules for
    which sequences and files), each restricted to `frames`."""
    window = frame_range(frames)
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise InputError(results_dir, "results folder not found")
    found: dict[str, tuple[SequenceTables, Path, Path]] = {}
    for sequence in _select_sequences(gt_root, sequences):
        results_path = results_dir / f"{sequence.name}.txt"
        if not results_path.is_file():
            raise InputError(results_path, f"results file not found for sequence {sequence.name}")
        tables = SequenceTables(
            *frame_window(
                SequenceTables(
                    read_mot_file(sequence.gt_path, min_columns=GT_MIN_COLUMNS),
                    read_results(results_path),
                    sequence.info.seq_length,
                ),
                window,
                gt_path=sequence.gt_path,
            )
        )
        found[sequence.name] = (tables, sequence.gt_path, results_path)
    return found


def evaluate_tables(
    tables: Mapping[str, SequenceTables],
    benchmark: str = "MOT17",
    frames: FrameRange | str | None = None,
) -> dict[str, Any]:
    """`evaluate` for tables already in memory: {SEQ: SequenceTables(gt, results, num_frames)}.

    The same rules, frame window (`frames`), per-sequence scores and TrackEval combination, without
    files; for callers that track and score in one go (validation during training, tuning).
    """
    benchmark_rules(benchmark)
    window = frame_range(frames)
    if not tables:
        raise ValueError("no sequences to evaluate")
    per_sequence = {
        name: _score(preprocess_sequence(*frame_window(SequenceTables(*table), window), benchmark))
        for name, table in tables.items()
    }
    return _report(per_sequence)


def _report(per_sequence: dict[str, MetricResults]) -> dict[str, Any]:
    """{"sequences": {SEQ: scores}, "combined": scores} of TrackEval's per-sequence results."""
    return {
        "sequences": {name: _summary(results) for name, results in per_sequence.items()},
        "combined": _summary(_combine(per_sequence)),
    }


def _select_sequences(gt_root: str | PathLike[str], names: Sequence[str] | None) -> list[MotSequence]:
    """The named sequences of `gt_root`, or all those with ground truth; names must be unique."""
    found = find_sequences(gt_root)
    by_name: dict[str, MotSequence] = {}
    for sequence in found:
        if sequence.name in by_name:
            first = by_name[sequence.name].path
            raise InputError(gt_root, f"sequence {sequence.name} found twice: {first} and {sequence.path}")
        by_name[sequence.name] = sequence
    if names:
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise InputError(gt_root, f"sequences not found: {', '.join(unknown)}")
        return [by_name[name] for name in dict.fromkeys(names)]
    with_gt = [sequence for sequence in found if sequence.gt_path.is_file()]
    if not with_gt:
        raise InputError(gt_root, "no sequence has ground truth (SEQ/gt/gt.txt)")
    return with_gt


def format_table(scores: dict[str, Any]) -> str:
    """A text table of `evaluate`'s output: one row per sequence and a combined row, ratios in %."""
    rows = [*scores["sequences"].items(), (COMBINED, scores["combined"])]
    name_width = max(len(name) for name in ["Sequence", *(name for name, _ in rows)])
    widths = [max(len(column), 6) for column in TABLE_COLUMNS]

    def line(name: str, cells: Sequence[str]) -> str:
        aligned = (f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True))
        return "  ".join([f"{name:<{name_width}}", *aligned])

    lines = [line("Sequence", TABLE_COLUMNS)]
    for name, row in rows:
        lines.append(
            line(name, [f"{row[c]:d}" if c in COUNT_KEYS else f"{100 * row[c]:.1f}" for c in TABLE_COLUMNS])
        )
    return "\n".join(lines)

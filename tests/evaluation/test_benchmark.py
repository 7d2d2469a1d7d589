"""MOTChallenge benchmark rules, on hand-built cases and against TrackEval's own dataset class."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import trackeval

from cstrack.data import SequenceInfo, read_mot_file, write_results, write_seqinfo
from cstrack.errors import InputError
from cstrack.evaluation import SCORE_FIELDS, evaluate, evaluate_sequence, preprocess_sequence


def gt_row(frame: int, track_id: int, x: float, mark: int = 1, cls: int = 1) -> list[float]:
    """A MOT17 gt row: a 20x50 box at (x, 0)."""
    return [frame, track_id, x, 0, 20, 50, mark, cls, 1.0]


def result_row(frame: int, track_id: int, x: float) -> list[float]:
    return [frame, track_id, x, 0, 20, 50, 0.9, -1, -1, -1]


# One frame, boxes far apart: a pedestrian, a static person (distractor), a pedestrian marked 0,
# a car (class 3, not a distractor) and a non-MOT vehicle (class 6, a distractor in MOT20 only).
GT = np.array(
    [
        gt_row(1, 1, 0),
        gt_row(1, 2, 100, cls=7),
        gt_row(1, 3, 200, mark=0),
        gt_row(1, 4, 300, cls=3),
        gt_row(1, 5, 400, cls=6),
    ],
    dtype=float,
)
# One prediction on each, shifted by 2 px (IoU 0.82).
RESULTS = np.array([result_row(1, 10 + i, x + 2) for i, x in enumerate([0, 100, 200, 300, 400])])


def test_mot17_removes_predictions_on_distractors_and_keeps_class_1_marked_gt() -> None:
    scores = evaluate_sequence(GT, RESULTS, num_frames=1, benchmark="MOT17")
    # gt: only the marked pedestrian. Predictions: the static person's one removed; those on the
    # zero-marked pedestrian, the car and the class-6 vehicle stay as false positives.
    assert (scores["TP"], scores["FN"], scores["FP"]) == (1, 0, 3)


def test_mot20_also_removes_predictions_on_non_mot_vehicles() -> None:
    scores = evaluate_sequence(GT, RESULTS, num_frames=1, benchmark="MOT20")
    assert (scores["TP"], scores["FN"], scores["FP"]) == (1, 0, 2)


def test_mot15_takes_gt_as_is_except_zero_marked_rows() -> None:
    scores = evaluate_sequence(GT, RESULTS, num_frames=1, benchmark="MOT15")
    assert (scores["TP"], scores["FN"], scores["FP"]) == (4, 0, 1)


def test_distractor_removal_needs_iou_of_one_half() -> None:
    # 20x50 boxes shifted by 7 px horizontally: IoU 13*50 / (2*1000 - 650) = 0.48 < 0.5.
    far = RESULTS.copy()
    far[1, 2] = 107
    assert evaluate_sequence(GT, far, num_frames=1, benchmark="MOT17")["FP"] == 4


def test_ids_are_relabelled_contiguously() -> None:
    gt = np.array([gt_row(1, 7, 0), gt_row(2, 42, 0), gt_row(2, 7, 100)], dtype=float)
    results = np.array([result_row(1, 1000, 0), result_row(3, 5, 0)])
    data = preprocess_sequence(gt, results, num_frames=3, benchmark="MOT17")
    assert [ids.tolist() for ids in data["gt_ids"]] == [[0], [1, 0], []]
    assert [ids.tolist() for ids in data["tracker_ids"]] == [[1], [], [0]]
    assert (data["num_gt_ids"], data["num_tracker_ids"], data["num_gt_dets"], data["num_tracker_dets"]) == (
        2,
        2,
        3,
        2,
    )
    assert [s.shape for s in data["similarity_scores"]] == [(1, 1), (2, 0), (0, 1)]


@pytest.mark.parametrize(
    ("gt", "results", "bad", "problem"),
    [
        (GT, np.array([result_row(2, 1, 0)]), "results.txt", "frame 2 is outside the sequence (seqLength 1)"),
        (
            GT,
            np.array([result_row(1, 1, 0), result_row(1, 1, 50)]),
            "results.txt",
            "id 1 appears more than once in frame 1",
        ),
        (GT, np.array([[1, 1, 0, 0, 20, 50, 0.9, 2]]), "results.txt", "only pedestrians"),
        (GT[:, :7], RESULTS, "gt.txt", "expected at least 8 columns for ground truth"),
        (np.array([[1, 1, 0, 0, 20, 50, 1, -1, -1, -1]]), RESULTS, "gt.txt", "not MOTChallenge classes 1-13"),
    ],
)
def test_bad_sequences_raise_input_error_naming_the_file(
    gt: np.ndarray, results: np.ndarray, bad: str, problem: str
) -> None:
    with pytest.raises(InputError) as caught:
        evaluate_sequence(gt, results, 1, "MOT17", gt_path="gt.txt", results_path="results.txt")
    assert str(caught.value).startswith(f"{bad}: ") and problem in str(caught.value)


def perturbed_results(gt: np.ndarray, seed: int = 0) -> np.ndarray:
    """A tracker-like output from gt (all classes): dropped boxes, jitter, id switches, false positives."""
    rng = np.random.default_rng(seed)
    results = gt[rng.random(len(gt)) > 0.15].copy()
    results[:, 2:6] += rng.normal(0, 4, (len(results), 4))
    switched = (results[:, 0] > results[:, 0].max() / 2) & (results[:, 1] % 3 == 0)
    results[switched, 1] += 1000
    false_positives = results[rng.choice(len(results), 300, replace=False)].copy()
    false_positives[:, 1] += 5000
    false_positives[:, 2] += rng.uniform(-150, 150, len(false_positives))
    results = np.concatenate([results, false_positives])
    results[:, 6] = rng.random(len(results))
    return results


def trackeval_scores(gt_root: Path, trackers_root: Path, sequence: str, benchmark: str) -> dict[str, float]:
    """Scores of TrackEval's own MotChallenge2DBox + Evaluator, in our keys."""
    dataset = trackeval.datasets.MotChallenge2DBox(
        {
            "GT_FOLDER": str(gt_root),
            "TRACKERS_FOLDER": str(trackers_root),
            "SKIP_SPLIT_FOL": True,
            "SEQ_INFO": {sequence: None},
            "BENCHMARK": benchmark,
            "TRACKERS_TO_EVAL": ["ours"],
            "PRINT_CONFIG": False,
        }
    )
    evaluator = trackeval.Evaluator(
        {
            "USE_PARALLEL": False,
            "PRINT_RESULTS": False,
            "PRINT_CONFIG": False,
            "TIME_PROGRESS": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
            "LOG_ON_ERROR": None,
        }
    )
    metrics = [
        trackeval.metrics.HOTA(),
        trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
        trackeval.metrics.Identity({"PRINT_CONFIG": False}),
    ]
    output, _ = evaluator.evaluate([dataset], metrics)
    results = output["MotChallenge2DBox"]["ours"][sequence]["pedestrian"]
    return {key: float(np.mean(results[metric][field])) for key, (metric, field) in SCORE_FIELDS.items()}


@pytest.mark.parametrize("benchmark", ["MOT17", "MOT20", "MOT15"])
def test_equals_trackeval_dataset_end_to_end_on_mot17_09(
    shared_data: Path, tmp_path: Path, benchmark: str
) -> None:
    sequence = "MOT17-09"
    shutil.copytree(shared_data / "gt-only" / sequence, tmp_path / "gt" / sequence)
    gt = read_mot_file(tmp_path / "gt" / sequence / "gt" / "gt.txt")
    results = perturbed_results(gt)
    results_dir = tmp_path / "trackers" / "ours" / "data"  # TrackEval's layout
    write_results(results_dir / f"{sequence}.txt", results)

    ours = evaluate(tmp_path / "gt", results_dir, benchmark=benchmark)["sequences"][sequence]
    theirs = trackeval_scores(tmp_path / "gt", tmp_path / "trackers", sequence, benchmark)
    assert ours == pytest.approx(theirs, abs=1e-9)
    if benchmark != "MOT15":  # the distractor rule did apply on this data
        data = preprocess_sequence(gt, read_mot_file(results_dir / f"{sequence}.txt"), 525, benchmark)
        assert data["num_tracker_dets"] < len(results)


def test_evaluate_input_errors(tmp_path: Path) -> None:
    gt_root = tmp_path / "gt"
    (gt_root / "SEQ" / "gt").mkdir(parents=True)
    write_seqinfo(gt_root / "SEQ" / "seqinfo.ini", SequenceInfo("SEQ", 30, 1, 640, 480, "img1", ".jpg"))
    np.savetxt(gt_root / "SEQ" / "gt" / "gt.txt", GT, delimiter=",", fmt="%g")
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    with pytest.raises(InputError, match=r"SEQ\.txt: results file not found for sequence SEQ"):
        evaluate(gt_root, results_dir)
    with pytest.raises(InputError, match="sequences not found: OTHER"):
        evaluate(gt_root, results_dir, sequences=["OTHER"])
    with pytest.raises(InputError, match="results folder not found"):
        evaluate(gt_root, tmp_path / "missing")
    (gt_root / "SEQ" / "gt" / "gt.txt").unlink()
    with pytest.raises(InputError, match="no sequence has ground truth"):
        evaluate(gt_root, results_dir)


def test_frames_without_rows_are_skipped_and_change_no_score(shared_data: Path) -> None:
    gt = read_mot_file(shared_data / "gt-only" / "MOT17-09" / "gt" / "gt.txt")
    results = perturbed_results(gt)[:, :7]  # frame,id,box,score: no class column
    dense = evaluate_sequence(gt, results, 525, "MOT17")
    # The same rows with 99 empty frames after each frame, and a seqLength far beyond them.
    sparse_gt, sparse_results = gt.copy(), results.copy()
    for table in (sparse_gt, sparse_results):
        table[:, 0] = 100 * table[:, 0] - 99
    data = preprocess_sequence(sparse_gt, sparse_results, 60_000, "MOT17")
    assert data["num_timesteps"] == len(data["gt_ids"]) == len(data["tracker_ids"]) == 525
    assert evaluate_sequence(sparse_gt, sparse_results, 60_000, "MOT17") == dense
    assert (dense["HOTA"], dense["IDSW"], dense["FP"]) == pytest.approx((0.6828, 20, 1194), abs=1e-4)


def test_empty_gt_and_results_score_zero() -> None:
    empty = np.empty((0, 10))
    assert preprocess_sequence(empty, empty, 5, "MOT17")["num_timesteps"] == 0
    scores = evaluate_sequence(empty, empty, 5, "MOT17")
    assert (scores["TP"], scores["FP"], scores["FN"], scores["IDSW"], scores["HOTA"]) == (0, 0, 0, 0, 0.0)


@pytest.mark.parametrize(
    ("results", "problem"),
    [
        (
            np.array([result_row(1e19, 1, 0)]),
            "frame 10000000000000000000 is outside the sequence (seqLength 1)",
        ),
        (
            np.array([result_row(1, 1e19, 0), result_row(1, 2e19, 50)]),
            "frame 1 and id 10000000000000000000 must be integers, ids in -2147483648..2147483647",
        ),
        (
            np.array([result_row(1, 1.5, 0)]),
            "frame 1 and id 1.5 must be integers, ids in -2147483648..2147483647",
        ),
        (
            np.array([[1, 1, 0, 0, 20, 50, 0.9, 1e19]]),
            "only pedestrians (class 1 in column 8) can be evaluated",
        ),
    ],
)
def test_huge_frames_ids_and_classes_do_not_wrap(results: np.ndarray, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        evaluate_sequence(GT, results, 1, "MOT17", gt_path="gt.txt", results_path="results.txt")
    assert str(caught.value) == f"results.txt: {problem}"


@pytest.mark.parametrize("where", ["results", "ground truth"])
def test_more_ids_than_can_be_scored_are_refused_in_bounded_memory(address_space_limit, where: str) -> None:
    """One id per row, MAX_SCORED_IDS of them and one more: TrackEval's IDF1 would fill 2.4 GB."""
    from cstrack.evaluation.benchmark import MAX_SCORED_IDS

    many = MAX_SCORED_IDS + 1
    crowd = np.array([gt_row(frame, frame, 0) for frame in range(1, many + 1)])
    one = np.array([gt_row(1, 1, 0)])
    gt, results = (one, crowd[:, :7]) if where == "results" else (crowd, one[:, :7])
    with address_space_limit(256 << 20), pytest.raises(InputError) as error:
        evaluate_sequence(gt, results, many, gt_path="gt.txt", results_path="res.txt")
    message = str(error.value)
    assert message.startswith("res.txt: " if where == "results" else "gt.txt: ")
    assert f"{many} distinct" in message and f"at most {MAX_SCORED_IDS} ids" in message


def test_evaluate_takes_the_rules_the_ground_truth_asks_for(tmp_path: Path) -> None:
    """MOT17 gt (class ids) is scored under MOT17's rules, MOT15 gt as is; mixed, one must be named."""
    gt_root, results_dir = tmp_path / "gt", tmp_path / "results"
    mot15_gt = np.array([[1, 1, 0, 0, 20, 50, 1, -1, -1, -1], [1, 2, 100, 0, 20, 50, 1, -1, -1, -1]])
    for name, gt in (("A", GT), ("B", mot15_gt)):
        (gt_root / name / "gt").mkdir(parents=True)
        write_seqinfo(gt_root / name / "seqinfo.ini", SequenceInfo(name, 30, 1, 640, 480, "img1", ".jpg"))
        np.savetxt(gt_root / name / "gt" / "gt.txt", gt, delimiter=",", fmt="%g")
        found = gt[:, 2] if name == "A" else gt[:1, 2]  # B: one of its two people
        write_results(
            results_dir / f"{name}.txt", np.array([result_row(1, k, x) for k, x in enumerate(found, 1)])
        )
    guessed = evaluate(gt_root, results_dir, sequences=["A"])["combined"]
    assert guessed == evaluate(gt_root, results_dir, "MOT17", ["A"])["combined"]
    assert guessed != evaluate(gt_root, results_dir, "MOT15", ["A"])["combined"]
    assert evaluate(gt_root, results_dir, sequences=["B"])["combined"]["MOTA"] == pytest.approx(0.5)
    with pytest.raises(InputError, match=r"different benchmark rules \(\{'A': 'MOT17', 'B': 'MOT15'\}\)"):
        evaluate(gt_root, results_dir)

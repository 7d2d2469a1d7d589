"""Tracks to the rows a MOT results file holds: the one path that writing and scoring share."""

from __future__ import annotations

import numpy as np

from cstrack.tracking import Track, TrackState, written_rows


def track(track_id: int, box: list[float], score: float = 0.9, cls: int = 0) -> Track:
    return Track(track_id, np.array(box), score, TrackState.TRACKED, True, 1, 1, cls)


def as_file_reads_it(rows: np.ndarray) -> np.ndarray:
    """What `format_results` writes (2 decimals for the box, 4 for the score), read back."""
    text = [f"{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f}" for x, y, w, h, s in rows[:, 2:7].tolist()]
    return np.array([line.split(",") for line in text], dtype=float).reshape(-1, 5)


def test_rows_are_rounded_as_the_file_holds_them_and_ordered_by_id() -> None:
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 500, (200, 2))
    tracks = [
        track(int(i), [*c, *(c + rng.uniform(1, 80, 2))], float(rng.uniform()))
        for i, c in zip(rng.permutation(200) + 1, corners)
    ]
    tracks.append(track(999, [1.005, 2.675, 11.125, 30.0], 0.12345))  # ties of decimal rounding
    rows = written_rows(7, tracks)
    assert rows[:, 0].tolist() == [7] * 201 and rows[:, 1].tolist() == sorted(t.track_id for t in tracks)
    np.testing.assert_array_equal(rows[:, 2:7], as_file_reads_it(rows))
    unrounded = {t.track_id: t for t in tracks}
    exact = np.array([[*unrounded[int(i)].box_xywh, unrounded[int(i)].score] for i in rows[:, 1]])
    np.testing.assert_array_equal(rows[:, 2:7], as_file_reads_it(np.column_stack([rows[:, :2], exact])))


def test_boxes_the_file_would_hold_without_size_and_filtered_ones_go() -> None:
    tracks = [
        track(1, [0, 0, 0.004, 50]),  # 0.00 wide in the file
        track(2, [0, 0, 0.005, 50]),  # 0.01 wide
        track(3, [0, 0, 90, 50]),  # wider than tall
        track(4, [0, 0, 5, 10]),  # small
        track(5, [0, 0, 20, 50], cls=1),
    ]
    assert written_rows(1, tracks)[:, 1].tolist() == [2, 3, 4, 5]
    assert written_rows(1, tracks, min_area=60, max_aspect=1.6)[:, 1].tolist() == [5]
    with_classes = written_rows(1, tracks, class_ids=np.array([1, 3]))
    assert with_classes.shape == (4, 8) and with_classes[:, 7].tolist() == [1, 1, 1, 3]
    assert written_rows(1, []).shape == (0, 7)

"""Tracks as MOTChallenge result rows: frame, id, x, y, w, h, score[, class].

`written_rows` is the one path from a frame's tracks to the rows a results file holds: `cstrack
track` writes them, and everything that scores tracks (`track --eval`, tuning, training's
validation, `replay_detections`) scores them, so that a score is the score of the file.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from cstrack.tracking.track_state import Track

#: Decimals of the box (x, y, w, h) and of the score in a results file.
BOX_DECIMALS, SCORE_DECIMALS = 2, 4


def results_rows(
    frame: int, tracks: Sequence[Track], class_ids: NDArray[np.int64] | None = None
) -> NDArray[np.float64]:
    """One frame's tracks as MOTChallenge result rows (N, 7): frame,id,x,y,w,h,score; with
    `class_ids` (the file's class value of each class index) an 8th column, the class."""
    table = np.empty((len(tracks), 7 if class_ids is None else 8))
    if tracks and class_ids is not None:
        table[:, 7] = class_ids[[t.cls for t in tracks]]
    if tracks:
        boxes = np.array([t.box_xyxy for t in tracks])
        table[:, 0] = frame
        table[:, 1] = [t.track_id for t in tracks]
        table[:, 2:4] = boxes[:, :2]
        table[:, 4:6] = boxes[:, 2:] - boxes[:, :2]
        table[:, 6] = [t.score for t in tracks]
    return table


def written_rows(
    frame: int,
    tracks: Sequence[Track],
    class_ids: NDArray[np.int64] | None = None,
    min_area: float | None = None,
    max_aspect: float | None = None,
) -> NDArray[np.float64]:
    """One frame's tracks as a results file holds them (see `results_rows` for the columns).

    The output filter of the JDE-family trackers keeps boxes with w * h > `min_area` and
    w / h <= `max_aspect` (None: no test); rows are ordered by id; the box is rounded to
    BOX_DECIMALS and the score to SCORE_DECIMALS as the file's text rounds them (Python's
    correctly rounded `round`, as `format` rounds), so the rows equal the file read back; a box
    that would read back 0 wide or high goes, as the file cannot hold it.
    """
    table = results_rows(frame, tracks, class_ids)
    widths, heights = table[:, 4], table[:, 5]
    keep = np.ones(len(table), bool)
    if min_area is not None:
        keep &= widths * heights > min_area
    if max_aspect is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            keep &= (heights > 0) & (widths / heights <= max_aspect)
    table = table[keep]
    table = table[np.argsort(table[:, 1], kind="stable")]
    rounded = [
        [*(round(value, BOX_DECIMALS) for value in row[:4]), round(row[4], SCORE_DECIMALS)]
        for row in table[:, 2:7].tolist()
    ]
    table[:, 2:7] = np.array(rounded).reshape(len(table), 5)
    return table[(table[:, 4] > 0) & (table[:, 5] > 0)]

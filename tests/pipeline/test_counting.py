"""Counting from tracks: line crossings by direction, zone occupancy, the CSV and the drawing."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cstrack.errors import InputError
from cstrack.pipeline.counting import Counter, LineCounter, ZoneCounter, parse_points
from cstrack.pipeline.end_to_end import Tracker
from cstrack.pipeline.runner import track
from cstrack.pipeline.tracker_config import TrackerConfig

from .conftest import WALK_FRAMES, WalkerDetector

NO_CMC = TrackerConfig().replace(cmc="none")


def at(track_id: int, x: float, y: float) -> SimpleNamespace:
    """A track standing at (x, y): its box's bottom centre."""
    return SimpleNamespace(track_id=track_id, box_xyxy=np.array([x - 5, y - 20, x + 5, y]))


def test_a_line_counts_each_crossing_by_direction_and_only_through_the_segment():
    line = LineCounter((0, 50), (100, 50))  # looking right: "in" is downwards (y grows)
    path = {1: [40, 48, 50, 55, 45, 60], 2: [60, 40, 60, 40]}  # y of two walkers at x = 30
    for frame in range(6):
        line.update(frame, [at(k, 30, ys[frame]) for k, ys in path.items() if frame < len(ys)])
    # walker 1: in (50 is on the line: it keeps its side), out, in; walker 2: out, in, out
    assert (line.entered, line.exited) == (2 + 1, 1 + 2)
    beside = LineCounter((0, 50), (100, 50))
    beside.update(1, [at(3, 150, 40)])
    beside.update(2, [at(3, 150, 60)])  # crosses the line's extension, not the segment
    assert (beside.entered, beside.exited) == (0, 0)


def test_a_line_forgets_tracks_unseen_for_long():
    line = LineCounter((0, 50), (100, 50))
    line.update(1, [at(1, 30, 40)])
    line.forget(2)
    line.update(50, [at(1, 30, 60)])
    assert line.entered == 0


def test_a_zone_counts_who_stands_inside():
    zone = ZoneCounter([(0, 0), (100, 0), (100, 100), (0, 100)])
    zone.update(1, [at(1, 50, 50), at(2, 150, 50), at(3, 10, 90)])
    zone.update(2, [at(1, 50, 50)])
    assert (zone.occupancy, zone.peak) == (1, 2)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: parse_points("1,2,3", "--count-line", 2, most=2), "x,y pairs of exactly 2 points"),
        (lambda: parse_points("1,a,3,4", "--count-line", 2), "comma-separated numbers"),
        (lambda: parse_points("1,2,3,4", "--count-zone", 3), "at least 3 points"),
        (lambda: LineCounter((1, 1), (1, 1)), "2 distinct points"),
        (lambda: ZoneCounter([(0, 0), (1, float("nan")), (2, 2)]), "finite"),
        (lambda: Counter(), "at least one line or zone"),
    ],
)
def test_bad_lines_and_zones_are_one_line_errors(make, message: str):
    with pytest.raises(InputError, match=message):
        make()


def test_counts_of_a_tracked_walk_go_to_a_csv_and_onto_the_video(walking_frames: Path, tmp_path: Path):
    counter = Counter(lines=[((0, 80), (160, 80))], zones=[[(60, 0), (100, 0), (100, 60), (60, 60)]])
    tracker = Tracker(WalkerDetector(), NO_CMC)
    runs = track(walking_frames, tracker, output=tmp_path / "out", save_video=True, progress=False,
                 fps=10, observers=(counter,))  # fmt: skip
    run = runs["walk"]
    assert run.files["counts"] == tmp_path / "out" / "walk.counts.csv"
    with run.files["counts"].open() as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["frame", "seconds", "line1_in", "line1_out", "zone1"]
    tracked = [int(row["frame"]) for row in rows]
    assert tracked == sorted(tracked) and tracked[-1] == WALK_FRAMES
    crossed = {int(row["frame"]): row["line1_in"] for row in rows}
    # Feet at y = 40 + 8 (frame - 1): below the line at y = 80 from frame 7 on.
    assert crossed[6] == "0" and crossed[7] == "1" and rows[-1]["line1_out"] == "0"
    inside = {int(row["frame"]): int(row["zone1"]) for row in rows}
    assert inside.get(3) == 1 and inside[WALK_FRAMES] == 0  # feet at y = 56, then at 128
    assert float(rows[-1]["seconds"]) == pytest.approx((WALK_FRAMES - 1) / 10)
    assert not list((tmp_path / "out").glob(".*tmp*"))


def test_counts_in_memory_without_an_output_folder(walking_frames: Path):
    counter = Counter(lines=[((0, 80), (160, 80))])
    track(walking_frames, Tracker(WalkerDetector(), NO_CMC), progress=False, observers=(counter,))
    assert counter.rows[-1][:1] == [WALK_FRAMES] and counter.lines[0].entered == 1


def test_the_drawing_marks_the_line_and_the_zone():
    counter = Counter(lines=[((0, 80), (160, 80))], zones=[[(10, 10), (50, 10), (50, 50)]])
    counter.open(SimpleNamespace(name="x", frame_rate=10.0, stride=1), None)
    canvas = np.zeros((160, 160, 3), np.uint8)
    counter.draw(canvas)
    assert canvas[80, 5].any() and canvas[10, 30].any() and not canvas[120, 120].any()

"""Counting from tracks: people crossing a line, in each direction, and people inside a zone, frame
by frame; built on `Track`s alone, so any tracker's output can be counted.

A track stands where its box's bottom centre is (the feet, where the trails are drawn).
`LineCounter` counts a crossing when that point moves from one side of the segment to the other
through it; `ZoneCounter` counts the tracks whose point is inside a polygon. `Counter` is the
`cstrack.pipeline.observers.FrameObserver` of `cstrack track --count-line / --count-zone`: it
writes `NAME.counts.csv` (one row per tracked frame: frame, seconds, each line's cumulative in and
out, each zone's occupancy), streamed as frames are tracked and renamed on completion
(`NAME.counts.partial.csv` after an interruption), and draws the lines and zones with their counts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from cstrack.data.sources import FrameSource
from cstrack.errors import InputError
from cstrack.pipeline.outputs import StreamedFile
from cstrack.pipeline.render import Style
from cstrack.tracking.track_state import Track

Point = tuple[float, float]
#: How long a track may go unseen and still count a crossing when it is seen again.
MEMORY_SECONDS = 10.0
LINE_COLOUR = (0, 220, 255)  # BGR amber
ZONE_COLOUR = (255, 200, 0)  # BGR sky blue

logger = logging.getLogger(__name__)


def anchor(track: Track) -> Point:
    """Where a track stands: the bottom centre of its box."""
    x0, _, x1, y1 = (float(v) for v in track.box_xyxy)
    return (x0 + x1) / 2, y1


def parse_points(text: str, what: str, least: int, most: int | None = None) -> list[Point]:
    """'X1,Y1,X2,Y2,...' (pixels) as `least` to `most` points, `what` naming the option."""
    try:
        values = [float(item) for item in text.split(",")]
    except ValueError:
        raise InputError(None, f"{what} {text!r} must be comma-separated numbers X1,Y1,X2,Y2,...") from None
    count = "exactly" if most == least else "at least"
    if len(values) % 2 or not least <= len(values) // 2 <= (most or len(values)):
        raise InputError(None, f"{what} {text!r} needs x,y pairs of {count} {least} points")
    return list(zip(values[::2], values[1::2]))


def _check_points(points: Sequence[Point], what: str, least: int) -> list[Point]:
    points = [(float(x), float(y)) for x, y in points]
    if len(points) < least or not all(math.isfinite(v) for point in points for v in point):
        raise InputError(None, f"{what} needs at least {least} points of finite coordinates, got {points}")
    if len(set(points)) < least:
        raise InputError(None, f"{what} needs {least} distinct points, got {points}")
    return points


def _side(start: Point, end: Point, point: Point) -> float:
    """> 0 right of start->end in image coordinates (y down), < 0 left, 0 on the line."""
    return (end[0] - start[0]) * (point[1] - start[1]) - (end[1] - start[1]) * (point[0] - start[0])


class LineCounter:
    """Crossings of the segment `start`-`end`: `entered` counts moves from its left to its right
    (looking from `start` to `end` in the image, y down), `exited` the other way; a track counts
    each time it crosses. A point on the line keeps the side it came from."""

    def __init__(self, start: Point, end: Point, name: str = "line"):
        self.start, self.end = _check_points([start, end], f"the line {name}", 2)
        self.name = name
        self.entered = self.exited = 0
        self._seen: dict[int, tuple[int, Point, float]] = {}  # id -> (frame, point, side)

    def update(self, number: int, tracks: list[Track]) -> None:
        for track in tracks:
            point = anchor(track)
            side = _side(self.start, self.end, point)
            if side == 0:
                continue
            before = self._seen.get(track.track_id)
            if before is not None and (before[2] > 0) != (side > 0) and self._through(before[1], point):
                if side > 0:
                    self.entered += 1
                else:
                    self.exited += 1
            self._seen[track.track_id] = (number, point, side)

    def _through(self, first: Point, second: Point) -> bool:
        """Whether the move first->second (its ends on opposite sides of the line) passes between
        the segment's ends rather than beside them."""
        at_start, at_end = _side(first, second, self.start), _side(first, second, self.end)
        return at_start * at_end <= 0

    def forget(self, before: int) -> None:
        """Drop the tracks last seen before frame `before` (memory stays bounded over days)."""
        self._seen = {k: seen for k, seen in self._seen.items() if seen[0] >= before}


class ZoneCounter:
    """The tracks standing inside the polygon `points` (at least 3, pixels): `occupancy` after each
    update, and the most at once, `peak`."""

    def __init__(self, points: Sequence[Point], name: str = "zone"):
        self.points = _check_points(points, f"the zone {name}", 3)
        self.name = name
        self.occupancy = self.peak = 0
        self._contour = np.array(self.points, np.float32).reshape(-1, 1, 2)

    def update(self, number: int, tracks: list[Track]) -> None:
        self.occupancy = sum(cv2.pointPolygonTest(self._contour, anchor(t), False) >= 0 for t in tracks)
        self.peak = max(self.peak, self.occupancy)


class Counter:
    """Lines and zones counted over each sequence (see the module): `lines` are (start, end)
    pairs, `zones` polygons, in pixels of the source's frames; named line1, line2 ..., zone1 ..."""

    def __init__(self, lines: Sequence[tuple[Point, Point]] = (), zones: Sequence[Sequence[Point]] = ()):
        if not lines and not zones:
            raise InputError(None, "counting needs at least one line or zone")
        self.line_ends = [
            tuple(_check_points(line, f"the line line{k}", 2)) for k, line in enumerate(lines, 1)
        ]
        self.zone_points = [_check_points(zone, f"the zone zone{k}", 3) for k, zone in enumerate(zones, 1)]
        self.lines: list[LineCounter] = []
        self.zones: list[ZoneCounter] = []
        #: Without an output folder, the rows of the sequence counted last (with one, they go to the file).
        self.rows: list[list[float]] = []
        self._stream: StreamedFile | None = None
        self._name = ""
        self._camera_rate = 1.0  # frames per second of the source's numbering
        self._memory = 1  # frames a line remembers an unseen track

    @property
    def columns(self) -> list[str]:
        names = [f"{line.name}_{way}" for line in self.lines for way in ("in", "out")]
        return ["frame", "seconds", *names, *(zone.name for zone in self.zones)]

    def open(self, source: FrameSource, out_dir: Path | None) -> None:
        self.lines = [LineCounter(a, b, f"line{k}") for k, (a, b) in enumerate(self.line_ends, 1)]
        self.zones = [ZoneCounter(points, f"zone{k}") for k, points in enumerate(self.zone_points, 1)]
        self.rows = []
        self._name = source.name
        self._camera_rate = source.frame_rate * source.stride  # the rate frame numbers count at
        self._memory = max(1, round(MEMORY_SECONDS * self._camera_rate))
        self._stream = None if out_dir is None else StreamedFile(out_dir / f"{source.name}.counts.csv")

    def add(self, number: int, image: np.ndarray, tracks: list[Track]) -> None:
        for line in self.lines:
            line.update(number, tracks)
            line.forget(number - self._memory)
        for zone in self.zones:
            zone.update(number, tracks)
        row = [
            number,
            round((number - 1) / self._camera_rate, 3),
            *(count for line in self.lines for count in (line.entered, line.exited)),
            *(zone.occupancy for zone in self.zones),
        ]
        if self._stream is None:
            self.rows.append(row)
            return
        text = ",".join(map(str, row)) + "\n"
        # The header goes with the first row: a run that tracked nothing leaves no file.
        self._stream.write(text if self._stream.frames else ",".join(self.columns) + "\n" + text)

    def draw(self, canvas: np.ndarray) -> None:
        style = Style.for_frame(canvas)
        for line in self.lines:
            start, end = (tuple(map(round, p)) for p in (line.start, line.end))
            cv2.line(canvas, start, end, LINE_COLOUR, 2 * style.thickness, cv2.LINE_AA)
            middle = np.add(start, end) / 2
            normal = np.array([-(end[1] - start[1]), end[0] - start[0]], float)
            tip = middle + normal / np.linalg.norm(normal) * 4 * style.margin  # towards "in"
            cv2.arrowedLine(canvas, tuple(map(round, middle)), tuple(map(round, tip)), LINE_COLOUR,
                            style.thickness, cv2.LINE_AA, tipLength=0.3)  # fmt: skip
            label = f"{line.name} in {line.entered} out {line.exited}"
            style.outlined_text(canvas, label, (int(middle[0]) + style.margin, int(middle[1]) - style.margin))
        for zone in self.zones:
            points = np.rint(zone.points).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(canvas, [points], True, ZONE_COLOUR, 2 * style.thickness, cv2.LINE_AA)
            x, y = points[0, 0]
            style.outlined_text(
                canvas, f"{zone.name}: {zone.occupancy}", (int(x) + style.margin, int(y) - style.margin)
            )

    def close(self, complete: bool) -> dict[str, Path]:
        totals = [f"{line.name} in {line.entered} out {line.exited}" for line in self.lines]
        totals += [f"{zone.name} at most {zone.peak}" for zone in self.zones]
        if self.lines or self.zones:
            logger.info("cstrack: %s: %s", self._name, "; ".join(totals))
        if self._stream is None:
            return {}
        kept = self._stream.close(complete)
        self._stream = None
        return {} if kept is None else {"counts": kept}

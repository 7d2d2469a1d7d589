"""Drawing tracks on frames: boxes and ids in a colour per id (per class, with the class name,
for a multi-class model), fading trails, and the processing speed (frames tracked per second,
not the video's frame rate). Line widths and text grow with the frame (`Style`), so a 4K frame
reads like a 360p one."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise

import cv2
import numpy as np

from cstrack.tracking.track_state import Track


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour for an id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 180)
    bgr = cv2.cvtColor(np.array([[[hue, 220, 255]]], dtype=np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


#: BGR box colours of classes 0, 1, ... (then repeating): distinct at a glance on street scenes.
CLASS_COLOURS = ((255, 160, 0), (0, 200, 255), (80, 220, 80), (255, 80, 255), (80, 80, 255), (255, 255, 80))


def class_colour(cls: int) -> tuple[int, int, int]:
    return CLASS_COLOURS[cls % len(CLASS_COLOURS)]


#: The shorter frame side at which lines are 1 pixel wide and text is at OpenCV's scale 0.5.
BASE_SIDE = 360
FONT = cv2.FONT_HERSHEY_SIMPLEX
OVERLAY_SCALE = 1.2  # the speed overlay's text against the labels'


@dataclass(frozen=True)
class Style:
    """Line width, font scale and margin for one frame size: proportional to its shorter side."""

    thickness: int
    font_scale: float
    margin: int

    @classmethod
    def for_frame(cls, frame: np.ndarray) -> Style:
        side = min(frame.shape[:2])
        return cls(max(1, round(side / BASE_SIDE)), max(0.35, 0.5 * side / BASE_SIDE), max(4, side // 36))

    def outlined_text(
        self, canvas: np.ndarray, text: str, origin: tuple[int, int], scale: float = 1.0
    ) -> None:
        """White text with a black outline at `origin` (its baseline's left end): legible on any scene."""
        size = self.font_scale * scale
        for colour, width in (((0, 0, 0), 3 * self.thickness), ((255, 255, 255), self.thickness)):
            cv2.putText(canvas, text, origin, FONT, size, colour, width, cv2.LINE_AA)


def speed_label(fps: float, tracks: int) -> str:
    """The overlay's words: the tracker's speed, named so that nobody reads it as the video's rate."""
    return f"processing {fps:.1f} frames/s   {tracks} tracks"


class TrackRenderer:
    """Keeps the last `trail_length` centres per id and draws frames with their tracks.

    With more than one of `class_names`, boxes take their class's colour and labels read
    "name id"; trails keep the id's colour, so identities stay apart within a class.
    """

    def __init__(self, trail_length: int = 30, class_names: tuple[str, ...] = ("pedestrian",)):
        self.trail_length = trail_length
        self.class_names = class_names
        self._trails: dict[int, deque[tuple[int, int]]] = {}

    def reset(self) -> None:
        self._trails.clear()

    def draw(self, frame: np.ndarray, tracks: list[Track], fps: float | None = None) -> np.ndarray:
        """A copy of `frame` with the tracks drawn on it."""
        canvas: np.ndarray = frame.copy()
        style = Style.for_frame(canvas)
        thickness = style.thickness
        seen = set()
        for track in tracks:
            seen.add(track.track_id)
            x0, y0, x1, y1 = np.rint(track.box_xyxy).astype(int).tolist()
            colour = id_colour(track.track_id)
            if self.trail_length > 0:
                trail = self._trails.setdefault(track.track_id, deque(maxlen=self.trail_length))
                trail.append(((x0 + x1) // 2, y1))
                self._draw_trail(canvas, trail, colour, thickness)
            label = str(track.track_id)
            if len(self.class_names) > 1:
                colour = class_colour(track.cls)
                label = f"{self.class_names[track.cls]} {track.track_id}"
            cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
            (w, h), base = cv2.getTextSize(label, FONT, style.font_scale, thickness)
            cv2.rectangle(canvas, (x0, y0 - h - base - 2), (x0 + w + 2, y0), colour, -1)
            cv2.putText(
                canvas, label, (x0 + 1, y0 - base), FONT, style.font_scale, (0, 0, 0), thickness, cv2.LINE_AA
            )
        for gone in set(self._trails) - seen:
            del self._trails[gone]
        if fps is not None:
            (_, h), _ = cv2.getTextSize("0", FONT, style.font_scale * OVERLAY_SCALE, thickness)
            label = speed_label(fps, len(tracks))
            style.outlined_text(canvas, label, (style.margin, style.margin + h), OVERLAY_SCALE)
        return canvas

    @staticmethod
    def _draw_trail(
        canvas: np.ndarray, trail: deque[tuple[int, int]], colour: tuple[int, int, int], thickness: int
    ) -> None:
        """Older segments are drawn darker, so the trail fades out behind the target."""
        points = list(trail)
        for age, (start, end) in enumerate(pairwise(points), start=1):
            alpha = age / len(points)
            faded = tuple(int(c * alpha) for c in colour)
            cv2.line(canvas, start, end, faded, thickness, cv2.LINE_AA)

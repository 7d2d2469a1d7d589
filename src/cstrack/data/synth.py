"""Procedurally rendered MOTChallenge sequences with exact ground truth: the project's test data.

Training, tracking and evaluation code needs sequences whose ground truth is right to the pixel,
in any amount and without downloads; this module draws them. It is also where OMC's "fake
background" cases live: person-like things in the background that are not annotated.

Scene
- A fixed camera looks at a ground plane. Rows above the horizon are a building facade, rows below
  are paving. A person whose feet are on image row y is
  `person_height * image_height * (y - horizon_row) / (image_height - horizon_row)` pixels tall,
  times a personal factor of 0.9-1.1: height is linear in the foot row, as on a ground plane,
  so people higher up the image are farther away and smaller.
- Figures: head, hair, torso, arms and legs (the legs and arms swing with the distance walked),
  drawn with antialiased cv2 polygons and ellipses. Each identity has its own clothing colours
  for top and bottom and, for some, a striped or checked top.
- Walkers move at `speed` person heights per second (about 0.8-1.7 m/s by default) along slowly
  drifting headings, drawn far to near so that nearer figures occlude farther ones. They enter at
  the left or right border (Poisson arrivals at the rate that keeps about `people` in view,
  raised while fewer are in view and lowered while more are)
  and leave at the left or right border; they turn back at the far and near edges of the
  walkable band. The crowd is simulated for a while before frame 1, so sequences start full.
- Static clutter (benches, bins, bollards, lamp posts, trees, planters) is part of the background.
- Fake background (`fake_background` > 0): posters on the facade, advertising boards and stone
  statues showing person figures. They are background, so they are never in the ground truth;
  their figure boxes are listed in `fake_background.txt` (`x,y,w,h,kind`, with a header) so
  false positives on them can be counted.
- Vehicles (`vehicles` > 0): small cars seen from the side, a second annotated class (MOT class
  3, car). A car whose wheels touch row y is 0.75 times as tall and 1.9 times as long as a person
  standing there (times a personal factor of 0.9-1.1), under the same perspective rule; cars drive
  at 1-2 person heights per second along nearly horizontal headings, enter and leave at the side
  borders (Poisson arrivals keeping about `vehicles` in view, as for walkers), and are drawn far to
  near among the walkers, so they hide people and people hide them.

Ground truth: `gt/gt.txt` in the MOT16/17 format `frame,id,x,y,w,h,1,class,visibility`
(class 1 pedestrian, 3 car: MOTChallenge's class ids), rows sorted by frame then id, ids 1..
numbered by first appearance (people and cars share one id space, as in MOT16/17).
- The box is the tight box of the figure's pixels (limbs included, hidden parts included),
  clipped to the image, in 0-based pixel-edge coordinates: a box over pixel columns 10..19 has
  x=10, w=10. Figures with no pixel inside the image are not written.
- visibility is the fraction of the figure's pixels that can be seen: not covered by nearer
  figures and inside the image, as in MOT16/17 where truncation at the border also lowers it.
  It is counted on the rendered masks of every frame, 0 for a fully hidden figure.

Camera effects
- blur: motion blur of each figure along its own motion (cv2.filter2D with a line kernel), with a
  streak of `blur` times the figure's displacement per frame; the masks that give boxes and
  visibility are the sharp ones.
- drop_frames: the chance that a capture is lost before a frame. The world then advances one
  extra time step before the frame is drawn: frames are skipped, never repeated, so motion jumps
  by two steps while frame numbers stay consecutive and the ground truth describes the image.
- noise: sensor noise, from three precomputed noise fields used in turn.

Moving cameras (`camera_motion` pan, zoom, shake or walk): the scene above is rendered as a wider
world (`_WORLD` times the frame size, with as many people per frame width) and each frame is the
camera's view of it, `view = scale * (world - origin)` (cv2.warpAffine): pan sweeps across the
world and back, zoom moves in to 1.4x and out, shake jitters around the centre, walk moves in
and out slowly with a 2 Hz bob and a sway; one cycle takes `camera_period` seconds. Boxes are
the world's tight boxes mapped into the view (to 2 decimals) and clipped to it; visibility
counts the figure's pixels inside the view. `camera.txt` holds each frame's world-to-view map
(`frame,a11,a12,a13,a21,a22,a23`), so the exact camera motion between two frames is
`A_t A_(t-1)^-1` (`camera_warps`); `fake_background.txt` is then in world pixels.

Determinism: the same config and seed give byte-identical gt.txt and identical images. The
scene, crowd, fake background, camera and traffic draw from separate random streams, so turning
the fake background on changes the images but not the ground truth, and with `vehicles` 0 the
sequences are exactly those of a version without cars.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Generic, TypeVar

import cv2
import numpy as np

from cstrack.data.mot import PEDESTRIAN, SequenceInfo, write_seqinfo
from cstrack.errors import InputError, check_options

__all__ = [
    "CAMERA_MOTIONS",
    "Progress",
    "SynthConfig",
    "camera_warps",
    "generate_dataset",
    "generate_sequence",
    "sequence_seeds",
]

#: Wraps the iterable of frame numbers being drawn, e.g. `tqdm`.
Progress = Callable[[Iterable[int]], Iterable[int]]

# cv2 drawing in fixed point: coordinates carry 4 fractional bits, for smooth sub-pixel motion.
_SHIFT = 4
_FIXED = 1 << _SHIFT
# Image rows move less than columns for the same ground distance: the plane is seen at a slant.
_DEPTH_FORESHORTENING = 0.5
# One full leg cycle (two steps) covers this many person heights.
_GAIT_CYCLE = 0.8
# Heading limits (radians off horizontal) and their drift per time step.
_MAX_SLOPE = 0.6
_SLOPE_DRIFT = 0.015
# A figure's half width (legs and arms swinging) as a fraction of its height: the out-of-view test.
_HALF_WIDTH = 0.35
_NOISE_FIELDS = 3
# MOTChallenge's class id of the rendered vehicles (TrackEval's class_name_to_class_id: car 3).
CAR = 3
# A car's size in person heights at its ground row, and its half length (the out-of-view test).
_CAR_HEIGHT, _CAR_LENGTH = 0.75, 1.9
_CAR_HALF_LENGTH = _CAR_LENGTH / 2 + 0.02
# Cars drive at this many person heights per second (about 1.7-3.4 m/s), keep nearly level
# headings, and are numbered apart from walkers until the ground truth renumbers every object.
_CAR_SPEED = (1.0, 2.0)
_CAR_MAX_SLOPE = 0.2
_CAR_IDENTITY_BASE = 1 << 30


#: The camera motions a sequence can have (`SynthConfig.camera_motion`).
CAMERA_MOTIONS = ("none", "pan", "zoom", "shake", "walk")
# A moving camera's world, as a multiple of the frame's width and height.
_WORLD = (1.6, 1.25)
_ZOOM_IN, _WALK_ZOOM = 0.4, 0.25

#: The largest frame side rendered (4K's 3840 fits): --width 100000 would allocate tens of GB.
MAX_SIDE = 4096


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of a synthetic sequence; the defaults make a 12 s street scene at 25 fps."""

    #: Number of frames written (seqLength).
    frames: int = 300
    #: Image size in pixels.
    width: int = 640
    height: int = 480
    #: Frame rate: with the walking speed it sets how far people move between frames.
    fps: float = 25.0
    #: Mean number of people in view, which sets the rate of the Poisson arrivals.
    people: float = 6.0
    #: Chance that an arriving walker heads straight at someone already in view at nearly the
    #: same depth, so that the two cross and one hides the other (0 = paths at random).
    occlusion: float = 0.3
    #: Motion-blur streak length as a multiple of each figure's displacement per frame (0 = sharp).
    blur: float = 0.0
    #: Chance that a capture is lost before a frame: the world moves two steps (a skipped frame).
    drop_frames: float = 0.0
    #: Number of unannotated person-like decoys (posters, boards, statues) in the background.
    fake_background: int = 0
    #: Number of static clutter objects (benches, bins, bollards, lamp posts, trees, planters).
    clutter: int = 6
    #: Mean number of cars in view, a second annotated class (MOT class 3); 0 = people only.
    vehicles: float = 0.0
    #: Horizon row as a fraction of the image height: the facade is above it, the ground below.
    horizon: float = 0.25
    #: Height of a person standing on the bottom row, as a fraction of the image height.
    person_height: float = 0.45
    #: The farthest walkers are this fraction of `person_height` tall (the far edge of the walkway).
    far_scale: float = 0.3
    #: Range of walking speeds in person heights per second (uniform).
    speed: tuple[float, float] = (0.45, 1.0)
    #: Standard deviation of the sensor noise in grey levels.
    noise: float = 3.0
    #: JPEG quality of the frames.
    jpeg_quality: int = 90
    #: How the camera moves: none, pan, zoom, shake or walk (see the module docstring).
    camera_motion: str = "none"
    #: Seconds of one cycle of the camera's motion (a pan across the world and back ...).
    camera_period: float = 4.0

    def __post_init__(self) -> None:
        rules = {
            "frames": (self.frames >= 1, ">= 1"),
            "width": (64 <= self.width <= MAX_SIDE, f"in [64, {MAX_SIDE}]"),
            "height": (64 <= self.height <= MAX_SIDE, f"in [64, {MAX_SIDE}]"),
            "fps": (self.fps > 0, "> 0"),
            "people": (self.people >= 0, ">= 0"),
            "occlusion": (0 <= self.occlusion <= 1, "in [0, 1]"),
            "blur": (self.blur >= 0, ">= 0"),
            "drop_frames": (0 <= self.drop_frames < 1, "in [0, 1)"),
            "fake_background": (self.fake_background >= 0, ">= 0"),
            "clutter": (self.clutter >= 0, ">= 0"),
            "vehicles": (self.vehicles >= 0, ">= 0"),
            "horizon": (0.05 <= self.horizon <= 0.6, "in [0.05, 0.6]"),
            "person_height": (0 < self.person_height <= 1.5, "in (0, 1.5]"),
            "far_scale": (0 < self.far_scale <= 1, "in (0, 1]"),
            "speed": (len(self.speed) == 2 and 0 < self.speed[0] <= self.speed[1], "a pair 0 < low <= high"),
            "noise": (self.noise >= 0, ">= 0"),
            "jpeg_quality": (1 <= self.jpeg_quality <= 100, "in [1, 100]"),
            "camera_motion": (self.camera_motion in CAMERA_MOTIONS, "one of " + ", ".join(CAMERA_MOTIONS)),
            "camera_period": (self.camera_period > 0, "> 0"),
        }
        check_options("synthetic scene", self, rules)


# --- scene geometry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ground:
    """Where people can stand and how tall they look there."""

    width: int
    height: int
    horizon_row: float
    bottom_height: float  # pixel height of a person with feet on the bottom row
    far_row: float  # the far edge of the walkway
    near_row: float  # the near edge, a little below the image so the nearest feet are cut

    @classmethod
    def from_config(cls, config: SynthConfig) -> _Ground:
        horizon_row = config.horizon * config.height
        return cls(
            width=config.width,
            height=config.height,
            horizon_row=horizon_row,
            bottom_height=config.person_height * config.height,
            far_row=horizon_row + config.far_scale * (config.height - horizon_row),
            near_row=1.02 * config.height,
        )

    def person_height(self, foot_row: float | np.ndarray) -> float | np.ndarray:
        """Pixel height of an average person whose feet are on `foot_row` (linear in the row)."""
        return self.bottom_height * (foot_row - self.horizon_row) / (self.height - self.horizon_row)


# --- figures ----------------------------------------------------------------------------------

Colour = tuple[float, float, float]


@dataclass(frozen=True)
class _Appearance:
    """What one identity looks like (BGR colours)."""

    top: Colour
    bottom: Colour
    skin: Colour
    hair: Colour
    shoes: Colour
    pattern: str  # "plain", "stripes" or "checks" on the top
    pattern_colour: Colour
    pattern_period: float  # as a fraction of the figure's height
    build: float  # width factor


def _hsv(hue: float, saturation: float, value: float) -> Colour:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return (255 * blue, 255 * green, 255 * red)


def _shade(colour: Colour, factor: float) -> Colour:
    return tuple(min(255.0, channel * factor) for channel in colour)


def _random_appearance(rng: np.random.Generator) -> _Appearance:
    """Clothing with random hues, and skin and hair from plausible ranges."""
    top_hue = rng.uniform()
    return _Appearance(
        top=_hsv(top_hue, rng.uniform(0.3, 0.9), rng.uniform(0.35, 0.95)),
        bottom=_hsv(rng.uniform(), rng.uniform(0.1, 0.7), rng.uniform(0.15, 0.7)),
        skin=_hsv(rng.uniform(0.03, 0.1), rng.uniform(0.25, 0.6), rng.uniform(0.35, 0.95)),
        hair=_hsv(rng.uniform(0.02, 0.12), rng.uniform(0.2, 0.7), rng.uniform(0.05, 0.6)),
        shoes=_hsv(rng.uniform(), rng.uniform(0.0, 0.4), rng.uniform(0.05, 0.35)),
        pattern=str(rng.choice(["plain", "plain", "stripes", "checks"])),
        pattern_colour=_hsv(top_hue + rng.uniform(0.25, 0.75), rng.uniform(0.2, 0.9), rng.uniform(0.5, 1.0)),
        pattern_period=rng.uniform(0.025, 0.06),
        build=rng.uniform(0.85, 1.15),
    )


def _monochrome_appearance(colour: Colour) -> _Appearance:
    """A statue: every part in one material, shaded a little."""
    return _Appearance(
        top=colour,
        bottom=_shade(colour, 0.85),
        skin=_shade(colour, 1.1),
        hair=_shade(colour, 0.9),
        shoes=_shade(colour, 0.8),
        pattern="plain",
        pattern_colour=colour,
        pattern_period=0.05,
        build=1.0,
    )


def _fixed(x: float, y: float) -> tuple[int, int]:
    return (round(x * _FIXED), round(y * _FIXED))


def _rectangle(
    image: np.ndarray, x0: float, y0: float, x1: float, y1: float, colour: Colour, thickness: int = -1
) -> None:
    """An antialiased rectangle at sub-pixel corners (filled unless `thickness` > 0)."""
    cv2.rectangle(image, _fixed(x0, y0), _fixed(x1, y1), colour, thickness, cv2.LINE_AA, _SHIFT)


def _blob(image: np.ndarray, cx: float, cy: float, rx: float, ry: float, colour: Colour) -> None:
    """A filled antialiased ellipse at a sub-pixel centre."""
    cv2.ellipse(image, _fixed(cx, cy), _fixed(rx, ry), 0, 0, 360, colour, -1, cv2.LINE_AA, _SHIFT)


class _Canvas:
    """A figure's patch: premultiplied colour (drawn on black) and alpha, drawn together."""

    def __init__(self, rows: int, cols: int):
        self.colour = np.zeros((rows, cols, 3), np.uint8)
        self.alpha = np.zeros((rows, cols), np.uint8)

    def polygon(self, points: list[tuple[float, float]], colour: Colour) -> np.ndarray:
        """Fill a polygon; returns its fixed-point vertices for reuse (e.g. a texture mask)."""
        vertices = np.array([_fixed(x, y) for x, y in points], np.int32)
        cv2.fillPoly(self.colour, [vertices], colour, cv2.LINE_AA, _SHIFT)
        cv2.fillPoly(self.alpha, [vertices], 255, cv2.LINE_AA, _SHIFT)
        return vertices

    def ellipse(
        self,
        centre: tuple[float, float],
        axes: tuple[float, float],
        colour: Colour,
        start: int = 0,
        end: int = 360,
    ) -> None:
        centre_fixed, axes_fixed = _fixed(*centre), _fixed(*axes)
        for image, value in ((self.colour, colour), (self.alpha, 255)):
            cv2.ellipse(image, centre_fixed, axes_fixed, 0, start, end, value, -1, cv2.LINE_AA, _SHIFT)

    def limb(
        self, start: tuple[float, float], end: tuple[float, float], thickness: float, colour: Colour
    ) -> None:
        width = max(1, round(thickness))
        for image, value in ((self.colour, colour), (self.alpha, 255)):
            cv2.line(image, _fixed(*start), _fixed(*end), value, width, cv2.LINE_AA, _SHIFT)

    def texture(self, vertices: np.ndarray, pattern: str, period: float, colour: Colour) -> None:
        """Paint stripes or checks inside a polygon drawn before."""
        inside = np.zeros(self.alpha.shape, np.uint8)
        cv2.fillPoly(inside, [vertices], 1, cv2.LINE_8, _SHIFT)
        rows, cols = np.ogrid[: inside.shape[0], : inside.shape[1]]
        period = max(2.0, period)
        bands = (rows // period).astype(np.int32)
        if pattern == "checks":
            bands = bands + (cols // period).astype(np.int32)
        self.colour[(inside > 0) & (bands % 2 == 1)] = np.round(colour).astype(np.uint8)


@dataclass(frozen=True)
class _Sprite:
    """A rendered figure placed in the image: patch origin, premultiplied colour, alpha, sharp mask."""

    left: int
    top: int
    colour: np.ndarray
    alpha: np.ndarray
    mask: np.ndarray  # bool, the figure's own pixels before any blur
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of the mask, image coordinates
    pixels: int


def _render_figure(
    look: _Appearance,
    height: float,
    foot_x: float,
    foot_y: float,
    phase: float,
    stride: float,
    facing: int,
    blur_kernel: np.ndarray | None = None,
) -> _Sprite:
    """Draw one person `height` pixels tall with the feet at image point (foot_x, foot_y).

    `phase` is the gait phase (radians), `stride` the foot swing as a fraction of the height,
    `facing` +1 or -1 the walking direction (where the shoes point).
    """
    pad = 2 + (blur_kernel.shape[0] // 2 if blur_kernel is not None else 0)
    half_cols = math.ceil(0.32 * height * look.build) + pad
    rows_above, rows_below = math.ceil(1.01 * height) + pad, math.ceil(0.03 * height) + pad
    canvas = _Canvas(rows_above + rows_below, 2 * half_cols)
    left, top = math.floor(foot_x) - half_cols, math.floor(foot_y) - rows_above
    origin_x, origin_y = foot_x - left, foot_y - top

    def at(across: float, up: float) -> tuple[float, float]:
        """Patch point from offsets in person heights (right of and above the feet)."""
        return (origin_x + across * height, origin_y - up * height)

    build = look.build
    swing = stride * math.sin(phase)
    arm_swing = 0.6 * swing
    thickness = 0.05 * height * build
    # Far side first: arm and leg, darker, then near leg, hips, torso, near arm, head.
    canvas.limb(
        at(-0.115 * build, 0.80), at(-0.13 * build + arm_swing, 0.47), thickness, _shade(look.top, 0.8)
    )
    canvas.ellipse(
        at(-0.13 * build + arm_swing, 0.46), (0.022 * height, 0.022 * height), _shade(look.skin, 0.85)
    )
    for side, foot_offset, shade in ((-1, -swing, 0.8), (1, swing, 1.0)):
        hip = side * 0.045 * build
        canvas.polygon(
            [
                at(hip - 0.035 * build, 0.52),
                at(hip + 0.035 * build, 0.52),
                at(foot_offset + 0.018, 0.035),
                at(foot_offset - 0.018, 0.035),
            ],
            _shade(look.bottom, shade),
        )
        canvas.ellipse(at(foot_offset + 0.015 * facing, 0.018), (0.035 * height, 0.02 * height), look.shoes)
    canvas.polygon(
        [at(-0.09 * build, 0.53), at(0.09 * build, 0.53), at(0.085 * build, 0.45), at(-0.085 * build, 0.45)],
        look.bottom,
    )
    torso = canvas.polygon(
        [
            at(-0.025, 0.845),
            at(0.025, 0.845),
            at(0.12 * build, 0.815),
            at(0.1 * build, 0.62),
            at(0.092 * build, 0.5),
            at(-0.092 * build, 0.5),
            at(-0.1 * build, 0.62),
            at(-0.12 * build, 0.815),
        ],
        look.top,
    )
    if look.pattern != "plain":
        canvas.texture(torso, look.pattern, look.pattern_period * height, look.pattern_colour)
    canvas.limb(at(0.115 * build, 0.80), at(0.13 * build - arm_swing, 0.47), thickness, look.top)
    canvas.ellipse(at(0.13 * build - arm_swing, 0.46), (0.022 * height, 0.022 * height), look.skin)
    canvas.polygon([at(-0.022, 0.83), at(0.022, 0.83), at(0.022, 0.87), at(-0.022, 0.87)], look.skin)
    canvas.ellipse(at(0.0, 0.925), (0.056 * height, 0.07 * height), look.skin)
    canvas.ellipse(at(0.0, 0.935), (0.06 * height, 0.066 * height), look.hair, 180, 360)
    return _sprite(canvas, left, top, blur_kernel)


def _sprite(canvas: _Canvas, left: int, top: int, blur_kernel: np.ndarray | None) -> _Sprite:
    """A drawn canvas placed with its top-left at (left, top): sharp mask, box, blurred colour."""
    mask = canvas.alpha >= 128
    row_hits, col_hits = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if row_hits.size:
        box = (left + col_hits[0], top + row_hits[0], left + col_hits[-1] + 1, top + row_hits[-1] + 1)
    else:  # too small to cover any pixel centre
        box = (left, top, left, top)
    colour, alpha = canvas.colour, canvas.alpha
    if blur_kernel is not None:
        colour = cv2.filter2D(colour, -1, blur_kernel, borderType=cv2.BORDER_CONSTANT)
        alpha = cv2.filter2D(alpha, -1, blur_kernel, borderType=cv2.BORDER_CONSTANT)
    return _Sprite(left, top, colour, alpha, mask, box, int(np.count_nonzero(mask)))


@dataclass(frozen=True)
class _CarLook:
    """What one car looks like (BGR colours) and its shape factors."""

    body: Colour
    glass: Colour
    tyre: Colour
    hub: Colour
    roof: float  # cabin height as a fraction of the car's height (saloon ~ 0.4, van ~ 0.5)
    cabin: float  # cabin length as a fraction of the body's


def _random_car_look(rng: np.random.Generator) -> _CarLook:
    """Paint from every hue (greys and whites too), dark glass, black tyres, light hubs."""
    saturation = rng.uniform(0.0, 0.15) if rng.uniform() < 0.4 else rng.uniform(0.4, 0.9)
    return _CarLook(
        body=_hsv(rng.uniform(), saturation, rng.uniform(0.25, 0.95)),
        glass=_hsv(rng.uniform(0.55, 0.65), rng.uniform(0.1, 0.4), rng.uniform(0.15, 0.4)),
        tyre=_hsv(0.0, 0.0, rng.uniform(0.05, 0.15)),
        hub=_hsv(0.0, 0.0, rng.uniform(0.6, 0.85)),
        roof=rng.uniform(0.38, 0.5),
        cabin=rng.uniform(0.5, 0.7),
    )


def _render_car(
    look: _CarLook,
    scale: float,
    ground_x: float,
    ground_y: float,
    facing: int,
    blur_kernel: np.ndarray | None = None,
) -> _Sprite:
    """Draw one car seen from the side, `scale` the height of a person standing where it stands.

    (ground_x, ground_y) is the point between the wheels' contacts with the ground; `facing` +1
    or -1 the driving direction (where the bonnet, windscreen and headlight are).
    """
    height, length = _CAR_HEIGHT * scale, _CAR_LENGTH * scale
    pad = 2 + (blur_kernel.shape[0] // 2 if blur_kernel is not None else 0)
    half_cols = math.ceil(0.5 * length) + pad
    rows_above, rows_below = math.ceil(height) + pad, pad
    canvas = _Canvas(rows_above + rows_below, 2 * half_cols)
    left, top = math.floor(ground_x) - half_cols, math.floor(ground_y) - rows_above
    origin_x, origin_y = ground_x - left, ground_y - top

    def at(forward: float, up: float) -> tuple[float, float]:
        """Patch point from offsets in car lengths (ahead of the centre) and car heights (up)."""
        return (origin_x + facing * forward * length, origin_y - up * height)

    belt = 1.0 - look.roof  # where the windows start
    body = look.body
    canvas.polygon(
        [
            at(-0.5, 0.2),
            at(-0.5, belt - 0.04),
            at(-0.47, belt),
            at(0.3, belt),
            at(0.48, belt - 0.1),
            at(0.5, 0.45),
            at(0.5, 0.2),
            at(0.47, 0.12),
            at(-0.47, 0.12),
        ],
        body,
    )
    back, front = -0.5 * look.cabin - 0.05, 0.5 * look.cabin + 0.05
    canvas.polygon(
        [at(back, belt), at(back + 0.04, 1.0), at(front - 0.12, 1.0), at(front, belt)], _shade(body, 0.9)
    )
    inset = 0.06 * look.roof
    canvas.polygon(
        [
            at(back + 0.03, belt + inset),
            at(back + 0.06, 1.0 - inset),
            at(front - 0.13, 1.0 - inset),
            at(front - 0.03, belt + inset),
        ],
        look.glass,
    )
    pillar = 0.5 * (back + front) - 0.03
    canvas.limb(at(pillar, belt), at(pillar, 1.0 - inset), 0.04 * height, _shade(body, 0.9))
    canvas.limb(at(-0.46, 0.42), at(0.46, 0.42), 0.03 * height, _shade(body, 0.7))
    canvas.ellipse(at(0.485, 0.36), (0.012 * length, 0.05 * height), (170.0, 235.0, 250.0))
    canvas.ellipse(at(-0.49, 0.38), (0.01 * length, 0.05 * height), (40.0, 40.0, 200.0))
    wheel = 0.2 * height
    for axle in (-0.3, 0.3):
        canvas.ellipse(at(axle, 0.21), (wheel * 1.25, wheel * 1.1), _shade(body, 0.35), 180, 360)
        canvas.ellipse(at(axle, wheel / height), (wheel, wheel), look.tyre)
        canvas.ellipse(at(axle, wheel / height), (0.5 * wheel, 0.5 * wheel), look.hub)
    return _sprite(canvas, left, top, blur_kernel)


def _motion_kernel(dx: float, dy: float, length: float) -> np.ndarray | None:
    """A normalised line kernel of `length` pixels along (dx, dy); None when too short to show."""
    norm = math.hypot(dx, dy)
    if length < 1.5 or norm == 0:
        return None
    size = math.ceil(length) | 1
    centre, half = (size - 1) / 2, (length - 1) / 2
    ux, uy = dx / norm, dy / norm
    line = np.zeros((size, size), np.uint8)
    start, end = (
        _fixed(centre - ux * half, centre - uy * half),
        _fixed(centre + ux * half, centre + uy * half),
    )
    cv2.line(line, start, end, 255, 1, cv2.LINE_AA, _SHIFT)
    kernel = line.astype(np.float32)
    return kernel / kernel.sum()


def _overlap(
    left: int, top: int, rows: int, cols: int, width: int, height: int
) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """(image region, patch region) where a patch at (left, top) overlaps the image, or None."""
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + cols, width), min(top + rows, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))


def _paste(image: np.ndarray, sprite: _Sprite) -> None:
    """Composite a premultiplied sprite over the image (the "over" operator)."""
    regions = _overlap(sprite.left, sprite.top, *sprite.alpha.shape, image.shape[1], image.shape[0])
    if regions is None:
        return
    image_region, patch_region = regions
    behind = image[image_region].astype(np.uint16)
    transparency = 255 - sprite.alpha[patch_region].astype(np.uint16)[..., None]
    blended = (behind * transparency + 127) // 255 + sprite.colour[patch_region]
    image[image_region] = np.minimum(blended, 255).astype(np.uint8)


# --- background -------------------------------------------------------------------------------


def _paint_ground_and_facade(image: np.ndarray, ground: _Ground, rng: np.random.Generator) -> None:
    """Paving with a perspective grid below the horizon, a facade with windows above it."""
    rows, cols = image.shape[:2]
    horizon = round(ground.horizon_row)
    far_colour = rng.uniform(120, 190) * np.array([1.0, 1.0, 1.0]) + rng.uniform(-15, 15, 3)
    near_colour = far_colour * rng.uniform(0.6, 0.85)
    depth = np.clip((np.arange(rows) - ground.horizon_row) / (rows - ground.horizon_row), 0, 1)[:, None, None]
    canvas = far_colour * (1 - depth) + near_colour * depth
    blotches = rng.normal(0, 1, (rows // 24 + 2, cols // 24 + 2)).astype(np.float32)
    canvas = canvas + 9 * cv2.resize(blotches, (cols, rows), interpolation=cv2.INTER_CUBIC)[..., None]
    image[:] = np.clip(canvas, 0, 255).astype(np.uint8)

    joint = tuple(float(c) for c in near_colour * 0.75)
    tile = rng.uniform(0.15, 0.3)
    offset = 0.5 * (ground.height - ground.horizon_row) * tile
    while ground.horizon_row + offset < rows:
        y = ground.horizon_row + offset
        cv2.line(image, _fixed(0, y), _fixed(cols, y), joint, 1, cv2.LINE_AA, _SHIFT)
        offset *= 1 + tile
    vanishing_x = cols * rng.uniform(0.35, 0.65)
    spacing = ground.bottom_height * rng.uniform(0.5, 0.9)
    for bottom_x in np.arange(vanishing_x % spacing - 3 * cols, 4 * cols, spacing):
        cv2.line(
            image,
            _fixed(vanishing_x, ground.horizon_row),
            _fixed(bottom_x, rows),
            joint,
            1,
            cv2.LINE_AA,
            _SHIFT,
        )

    wall = rng.uniform(70, 200, 3)
    shade = np.linspace(0.85, 1.0, max(horizon, 1))[:, None, None]
    image[:horizon] = np.clip(wall * shade, 0, 255).astype(np.uint8)
    window_colour = tuple(float(c) for c in wall * rng.uniform(0.3, 0.6))
    window_w, window_h = rng.uniform(0.04, 0.07) * cols, 0.3 * horizon
    pitch = window_w * rng.uniform(1.8, 2.6)
    for x in np.arange(rng.uniform(0, pitch), cols, pitch):
        for y in (0.12 * horizon, 0.55 * horizon):
            _rectangle(image, x, y, x + window_w, y + window_h, window_colour)
    kerb = tuple(float(c) for c in far_colour * 0.6)
    cv2.rectangle(image, (0, horizon - 2), (cols, horizon + 1), kerb, -1)


def _draw_clutter(
    image: np.ndarray, kind: str, x: float, y: float, scale: float, rng: np.random.Generator
) -> None:
    """One static object standing at (x, y); `scale` is a person's height there."""
    colour = tuple(float(c) for c in rng.uniform(30, 160, 3))
    dark = _shade(colour, 0.6)
    if kind == "bench":
        _rectangle(image, x - 0.45 * scale, y - 0.1 * scale, x - 0.4 * scale, y, dark)
        _rectangle(image, x + 0.4 * scale, y - 0.1 * scale, x + 0.45 * scale, y, dark)
        _rectangle(image, x - 0.5 * scale, y - 0.16 * scale, x + 0.5 * scale, y - 0.1 * scale, colour)
        _rectangle(image, x - 0.5 * scale, y - 0.3 * scale, x + 0.5 * scale, y - 0.24 * scale, colour)
    elif kind == "bin":
        _rectangle(image, x - 0.12 * scale, y - 0.45 * scale, x + 0.12 * scale, y, colour)
        _blob(image, x, y - 0.45 * scale, 0.12 * scale, 0.03 * scale, dark)
    elif kind == "bollard":
        _rectangle(image, x - 0.04 * scale, y - 0.5 * scale, x + 0.04 * scale, y, dark)
        _blob(image, x, y - 0.5 * scale, 0.04 * scale, 0.04 * scale, dark)
    elif kind == "lamp":
        _rectangle(image, x - 0.025 * scale, y - 1.9 * scale, x + 0.025 * scale, y, dark)
        _blob(image, x, y - 1.9 * scale, 0.09 * scale, 0.05 * scale, (200.0, 230.0, 240.0))
    elif kind == "tree":
        _rectangle(image, x - 0.05 * scale, y - 1.0 * scale, x + 0.05 * scale, y, (40.0, 60.0, 90.0))
        for _ in range(5):
            leaves = _hsv(rng.uniform(0.22, 0.38), rng.uniform(0.4, 0.8), rng.uniform(0.25, 0.6))
            _blob(
                image,
                x + rng.uniform(-0.3, 0.3) * scale,
                y - rng.uniform(1.0, 1.6) * scale,
                0.3 * scale,
                0.25 * scale,
                leaves,
            )
    else:  # planter
        _rectangle(image, x - 0.3 * scale, y - 0.3 * scale, x + 0.3 * scale, y, colour)
        leaves = _hsv(rng.uniform(0.22, 0.38), 0.6, rng.uniform(0.3, 0.6))
        _blob(image, x, y - 0.35 * scale, 0.3 * scale, 0.12 * scale, leaves)


_CLUTTER_KINDS = ("bench", "bin", "bollard", "lamp", "tree", "planter")
_DECOY_KINDS = ("poster", "board", "statue")


@dataclass(frozen=True)
class _Decoy:
    """A person-like background object: its kind and the box of the figure it shows."""

    kind: str
    box: tuple[int, int, int, int]


def _draw_decoy(image: np.ndarray, kind: str, ground: _Ground, rng: np.random.Generator) -> _Decoy:
    """Draw a poster (on the facade), a board or a statue (on the ground) showing a person.

    The figures are drawn like walkers, in mid-stride, but never move; boards and posters show
    them at any scale, statues stand on a plinth.
    """
    x = rng.uniform(0.05, 0.95) * image.shape[1]
    base = rng.uniform(ground.far_row, 0.97 * ground.height)  # where a statue or board stands
    scale = float(ground.person_height(base))
    if kind == "statue":
        stone = _shade((150.0, 150.0, 150.0), rng.uniform(0.6, 1.3))
        plinth = 0.15 * scale
        _rectangle(image, x - 0.2 * scale, base - plinth, x + 0.2 * scale, base, _shade(stone, 0.7))
        figure_height, feet, look = (
            scale * rng.uniform(0.9, 1.1),
            base - plinth,
            _monochrome_appearance(stone),
        )
    else:
        if kind == "poster":
            board_bottom, board_height = 0.9 * ground.horizon_row, 0.75 * ground.horizon_row
        else:
            board_height = scale * rng.uniform(0.9, 1.4)
            board_bottom = base - 0.15 * board_height
            post = tuple(float(c) for c in rng.uniform(20, 90, 3))
            for side in (-0.35, 0.35):
                left, right = x + (side - 0.02) * board_height, x + (side + 0.02) * board_height
                _rectangle(image, left, board_bottom - 0.05 * board_height, right, base, post)
        paper = tuple(float(c) for c in rng.uniform(170, 250, 3))
        frame_colour = tuple(float(c) for c in rng.uniform(0, 80, 3))
        corners = (x - 0.4 * board_height, board_bottom - board_height, x + 0.4 * board_height, board_bottom)
        _rectangle(image, *corners, paper)
        _rectangle(image, *corners, frame_colour, thickness=max(1, round(0.03 * board_height)))
        figure_height, feet = 0.82 * board_height, board_bottom - 0.06 * board_height
        look = _random_appearance(rng)
    phase, stride, facing = rng.uniform(0, 2 * math.pi), rng.uniform(0.03, 0.12), int(rng.choice([-1, 1]))
    sprite = _render_figure(look, figure_height, x, feet, phase, stride, facing)
    _paste(image, sprite)
    x0, y0, x1, y1 = sprite.box
    return _Decoy(kind, (max(x0, 0), max(y0, 0), min(x1, image.shape[1]), min(y1, image.shape[0])))


def _paint_background(
    config: SynthConfig, ground: _Ground, scene_rng: np.random.Generator, decoy_rng: np.random.Generator
) -> tuple[np.ndarray, list[_Decoy]]:
    """The static background: ground and facade, clutter (far to near), then the decoys."""
    image = np.zeros((config.height, config.width, 3), np.uint8)
    _paint_ground_and_facade(image, ground, scene_rng)
    placements = [
        (
            scene_rng.uniform(ground.far_row - 0.05 * ground.height, ground.height),
            scene_rng.uniform(0, config.width),
            str(scene_rng.choice(_CLUTTER_KINDS)),
            int(scene_rng.integers(2**31)),
        )
        for _ in range(config.clutter)
    ]
    for base, x, kind, item_seed in sorted(placements):
        _draw_clutter(image, kind, x, base, ground.person_height(base), np.random.default_rng(item_seed))
    decoys = []
    for _ in range(config.fake_background):
        kind = str(decoy_rng.choice(_DECOY_KINDS))
        decoys.append(_draw_decoy(image, kind, ground, decoy_rng))
    return image, decoys


# --- crowd and traffic ----------------------------------------------------------------------


@dataclass(kw_only=True)
class _Mover:
    """What walkers and cars share; positions are their ground point, in image pixels."""

    identity: int
    x: float
    y: float
    direction: int  # +1 moving right, -1 moving left
    slope: float  # heading off horizontal, radians; positive moves toward the camera
    speed: float  # person heights per second
    size: float  # personal height factor
    step: tuple[float, float] = (0.0, 0.0)  # last displacement in pixels, for motion blur


@dataclass(kw_only=True)
class _Walker(_Mover):
    """One person: the point between the feet, clothes and gait phase."""

    look: _Appearance
    phase: float = 0.0


@dataclass(kw_only=True)
class _Car(_Mover):
    """One car: the point between the wheels' ground contacts, and its paint."""

    look: _CarLook


Mover = TypeVar("Mover", bound=_Mover)


class _Movers(Generic[Mover]):
    """Movers entering, moving and leaving; one `advance()` is one time step of 1/fps s."""

    #: Half the width of a mover as a fraction of its person height (the out-of-view test).
    half_width = _HALF_WIDTH
    #: Its identities start here (walkers 1.., cars far above, until the gt renumbers them).
    first_identity = 1

    def __init__(self, config: SynthConfig, ground: _Ground, rng: np.random.Generator):
        self.config, self.ground, self.rng = config, ground, rng
        self.members: list[Mover] = []
        self.next_identity = self.first_identity
        self.arrival_rate = self.target / self._mean_dwell_steps()

    @property
    def target(self) -> float:
        """The mean number in view."""
        raise NotImplementedError

    @property
    def speeds(self) -> tuple[float, float]:
        """The range of speeds, person heights per second."""
        raise NotImplementedError

    def _mean_dwell_steps(self) -> float:
        """Mean time steps a mover spends crossing the image (Little's law gives the arrival rate)."""
        rows = np.linspace(self.ground.far_row, self.ground.near_row, 33)[:, None]
        speeds = np.linspace(*self.speeds, 9)[None, :]
        heights = self.ground.person_height(rows)
        pixels_per_step = speeds * heights / self.config.fps * math.cos(0.25)
        return float(np.mean((self.ground.width + 2 * self.half_width * heights) / pixels_per_step))

    def warm_up(self) -> None:
        """Simulate until the movers are in their steady state, so frame 1 is not empty."""
        for _ in range(math.ceil(1.5 * self._mean_dwell_steps())):
            self.advance()

    def advance(self) -> None:
        for member in self.members:
            self._move(member)
        self.members = [member for member in self.members if not self._has_left(member)]
        # Little's law gives the steady rate; scaling it by how far the count is from the target
        # (an inhomogeneous Poisson process) keeps short sequences near the target too.
        in_view = sum(self.in_view(member) for member in self.members)
        feedback = np.clip((self.target + 1) / (in_view + 1), 0.25, 4.0)
        for _ in range(self.rng.poisson(self.arrival_rate * feedback)):
            self.members.append(self._spawn())
            self.next_identity += 1

    def height_of(self, member: _Mover) -> float:
        """The pixel height of a person standing where the mover is, times its size factor."""
        return float(self.ground.person_height(member.y)) * member.size

    def in_view(self, member: _Mover) -> bool:
        reach = self.half_width * self.height_of(member)
        return -reach < member.x < self.ground.width + reach

    def _has_left(self, member: _Mover) -> bool:
        reach = self.half_width * self.height_of(member)
        if member.direction > 0:
            return member.x - reach > self.ground.width
        return member.x + reach < 0

    def _step(self, member: _Mover, distance: float, drift: float, max_slope: float) -> None:
        """Move `distance` pixels along the heading, turn back at the walkway's edges, drift."""
        dx = member.direction * math.cos(member.slope) * distance
        dy = math.sin(member.slope) * distance * _DEPTH_FORESHORTENING
        member.x += dx
        member.y += dy
        for edge, outward in ((self.ground.far_row, -1), (self.ground.near_row, 1)):
            if (member.y - edge) * outward > 0:
                member.y = 2 * edge - member.y
                member.slope = -member.slope
        member.slope = float(np.clip(member.slope + self.rng.normal(0, drift), -max_slope, max_slope))
        member.step = (dx, dy)

    def _move(self, member: Mover) -> None:
        raise NotImplementedError

    def _spawn(self) -> Mover:
        raise NotImplementedError


class _Crowd(_Movers[_Walker]):
    """Walkers at about `people` in view, some heading at someone to cross (`occlusion`)."""

    @property
    def target(self) -> float:
        return self.config.people

    @property
    def speeds(self) -> tuple[float, float]:
        return self.config.speed

    def _move(self, member: _Walker) -> None:
        height = self.height_of(member)
        distance = member.speed * height / self.config.fps
        self._step(member, distance, _SLOPE_DRIFT, _MAX_SLOPE)
        member.phase += 2 * math.pi * distance / (_GAIT_CYCLE * height)

    def _spawn(self) -> _Walker:
        """A new walker just outside the left or right border, heading in."""
        rng, ground = self.rng, self.ground
        in_view = [walker for walker in self.members if 0 < walker.x < ground.width]
        if in_view and rng.uniform() < self.config.occlusion:
            partner = in_view[int(rng.integers(len(in_view)))]
            direction = -partner.direction
            y = partner.y + rng.normal(0, 0.03 * (ground.near_row - ground.far_row))
            slope = rng.normal(0, 0.05)
        else:
            direction = 1 if rng.uniform() < 0.5 else -1
            y = rng.uniform(ground.far_row, ground.near_row)
            slope = rng.normal(0, 0.2)
        y = float(np.clip(y, ground.far_row, ground.near_row))
        size = rng.uniform(0.9, 1.1)
        reach = _HALF_WIDTH * float(ground.person_height(y)) * size + 1
        return _Walker(
            identity=self.next_identity,
            x=-reach if direction > 0 else ground.width + reach,
            y=y,
            direction=direction,
            slope=float(np.clip(slope, -_MAX_SLOPE, _MAX_SLOPE)),
            speed=rng.uniform(*self.config.speed),
            size=size,
            look=_random_appearance(rng),
            phase=rng.uniform(0, 2 * math.pi),
        )


class _Traffic(_Movers[_Car]):
    """Cars at about `vehicles` in view, on nearly level headings, ids apart from the walkers'."""

    half_width = _CAR_HALF_LENGTH
    first_identity = _CAR_IDENTITY_BASE

    @property
    def target(self) -> float:
        return self.config.vehicles

    @property
    def speeds(self) -> tuple[float, float]:
        return _CAR_SPEED

    def _move(self, member: _Car) -> None:
        distance = member.speed * self.height_of(member) / self.config.fps
        self._step(member, distance, _SLOPE_DRIFT / 3, _CAR_MAX_SLOPE)

    def _spawn(self) -> _Car:
        """A new car just outside the left or right border, heading in."""
        rng, ground = self.rng, self.ground
        direction = 1 if rng.uniform() < 0.5 else -1
        y = float(rng.uniform(ground.far_row, ground.near_row))
        size = rng.uniform(0.9, 1.1)
        reach = self.half_width * float(ground.person_height(y)) * size + 1
        return _Car(
            identity=self.next_identity,
            x=-reach if direction > 0 else ground.width + reach,
            y=y,
            direction=direction,
            slope=float(np.clip(rng.normal(0, 0.05), -_CAR_MAX_SLOPE, _CAR_MAX_SLOPE)),
            speed=rng.uniform(*self.speeds),
            size=size,
            look=_random_car_look(rng),
        )


# --- frames and ground truth ------------------------------------------------------------------


@dataclass(frozen=True)
class _Annotation:
    identity: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 clipped to the image
    visibility: float
    object_class: int = PEDESTRIAN  # MOTChallenge class id


def _annotate(
    sprites: list[tuple[int, int, _Sprite]], width: int, height: int, origin: tuple[int, int] = (0, 0)
) -> list[_Annotation]:
    """Boxes and visibilities of (identity, class, sprite) listed far to near, counted on their sharp masks.

    Going near to far, each figure's in-image pixels are tested against the union of the nearer
    figures' pixels (`covered`), then added to it. The image is the `width` x `height` window at
    `origin` of the rendered one (a moving camera's view), and boxes are in its pixels.
    """
    covered = np.zeros((height, width), bool)
    annotations = []
    left, top = origin
    for identity, object_class, sprite in reversed(sprites):
        regions = _overlap(sprite.left - left, sprite.top - top, *sprite.mask.shape, width, height)
        if regions is None:
            continue
        image_region, patch_region = regions
        inside = sprite.mask[patch_region]
        inside_count = int(np.count_nonzero(inside))
        if inside_count == 0:
            continue
        hidden = int(np.count_nonzero(inside & covered[image_region]))
        covered[image_region] |= inside
        x0, y0, x1, y1 = sprite.box
        box = (max(x0 - left, 0), max(y0 - top, 0), min(x1 - left, width), min(y1 - top, height))
        visibility = (inside_count - hidden) / sprite.pixels
        annotations.append(_Annotation(identity, box, visibility, object_class))
    return annotations


class _Camera:
    """A moving camera's view of the world for each frame: `view = scale * (world - origin)`."""

    def __init__(self, view: SynthConfig, world: SynthConfig, rng: np.random.Generator):
        self.view, self.world = view, world
        steps = np.arange(view.frames) / view.fps
        phase = 2 * np.pi * steps / view.camera_period
        swing = (1 - np.cos(phase)) / 2  # 0 -> 1 -> 0 over a period, at rest at the ends
        scale = np.ones(view.frames)
        # The window's centre as a fraction of the room it has to move in (0.5: the world's centre).
        across, down = np.full(view.frames, 0.5), np.full(view.frames, 0.5)
        if view.camera_motion == "pan":
            across = swing
        elif view.camera_motion == "zoom":
            scale = 1 + _ZOOM_IN * swing
        elif view.camera_motion == "shake":
            # Hand shake: white noise smoothed over ~3 frames, a quarter of the room each way.
            jitter = rng.normal(0, 1, (view.frames, 2))
            for index in range(1, view.frames):
                jitter[index] = 0.6 * jitter[index - 1] + 0.4 * jitter[index]
            across, down = np.clip(0.5 + 0.25 * jitter.T / max(jitter.std(), 1e-9), 0, 1)
        else:  # walk
            scale = 1 + _WALK_ZOOM * (1 - np.cos(phase / 2)) / 2
            across = 0.5 + 0.3 * np.sin(phase)
            down = 0.5 + 0.15 * np.sin(2 * np.pi * 2.0 * steps)
        self.scale = scale
        self.origin_x = across * (world.width - view.width / scale)
        self.origin_y = down * (world.height - view.height / scale)

    def matrix(self, index: int) -> np.ndarray:
        """The 2x3 world-to-view map of frame `index` (0-based)."""
        scale = self.scale[index]
        return np.array(
            [[scale, 0.0, -scale * self.origin_x[index]], [0.0, scale, -scale * self.origin_y[index]]]
        )

    def shoot(
        self, index: int, image: np.ndarray, sprites: list[tuple[int, int, _Sprite]]
    ) -> tuple[np.ndarray, list[_Annotation]]:
        """The view of frame `index` and its annotations in view pixels."""
        view, scale = self.view, self.scale[index]
        matrix = self.matrix(index)
        shot = cv2.warpAffine(image, matrix, (view.width, view.height), flags=cv2.INTER_LINEAR)
        left, top = math.floor(self.origin_x[index]), math.floor(self.origin_y[index])
        right = min(math.ceil(self.origin_x[index] + view.width / scale), self.world.width)
        bottom = min(math.ceil(self.origin_y[index] + view.height / scale), self.world.height)
        annotations = []
        for annotation in _annotate(sprites, right - left, bottom - top, (left, top)):
            x0, y0, x1, y1 = annotation.box
            corners = np.array([[x0 + left, y0 + top, 1.0], [x1 + left, y1 + top, 1.0]]) @ matrix.T
            (x0, y0), (x1, y1) = np.round(np.clip(corners, 0, [view.width, view.height]), 2)
            if x1 > x0 and y1 > y0:
                box = (float(x0), float(y0), float(x1), float(y1))
                annotations.append(dataclasses.replace(annotation, box=box))
        return shot, annotations


def _world(config: SynthConfig) -> SynthConfig:
    """The scene a moving camera looks at: `_WORLD` times the frame, as many people per frame
    width and figures as tall in pixels; the scene itself when the camera stands still."""
    if config.camera_motion == "none":
        return config
    wide, high = _WORLD
    return dataclasses.replace(
        config,
        width=round(config.width * wide),
        height=round(config.height * high),
        people=config.people * wide,
        vehicles=config.vehicles * wide,
        clutter=round(config.clutter * wide),
        person_height=config.person_height / high,
        camera_motion="none",
    )


def camera_warps(cameras: np.ndarray) -> np.ndarray:
    """The exact camera motion between consecutive frames, (F, 2, 3) with the identity first, from
    `camera.txt`'s world-to-view maps (F, 6): what camera-motion estimation should find."""
    maps = np.zeros((len(cameras), 3, 3))
    maps[:, :2] = cameras.reshape(-1, 2, 3)
    maps[:, 2, 2] = 1.0
    warps = np.repeat(np.eye(3)[None], len(cameras), axis=0)
    warps[1:] = maps[1:] @ np.linalg.inv(maps[:-1])
    return warps[:, :2]


def _render_frames(
    view: SynthConfig, seed: int
) -> tuple[list[_Decoy], _Camera | None, Iterator[tuple[np.ndarray, list[_Annotation]]]]:
    """The decoys, the moving camera (None when it stands still), and a generator of (BGR image,
    annotations) for frames 1..config.frames."""
    # A fifth stream for the cars and a sixth for the camera's shake: SeedSequence children do
    # not depend on how many are spawned, so the first four are those of a scene without cars.
    scene_rng, crowd_rng, decoy_rng, camera_rng, traffic_rng, shake_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(6)
    )
    config = _world(view)
    camera = None if config is view else _Camera(view, config, shake_rng)
    ground = _Ground.from_config(config)
    background, decoys = _paint_background(config, ground, scene_rng, decoy_rng)
    if config.noise > 0:
        backgrounds = [
            np.clip(background + camera_rng.normal(0, config.noise, background.shape), 0, 255).astype(
                np.uint8
            )
            for _ in range(_NOISE_FIELDS)
        ]
    else:
        backgrounds = [background]
    crowd = _Crowd(config, ground, crowd_rng)
    crowd.warm_up()
    traffic = _Traffic(config, ground, traffic_rng) if config.vehicles > 0 else None
    if traffic is not None:
        traffic.warm_up()

    def advance() -> None:
        crowd.advance()
        if traffic is not None:
            traffic.advance()

    def sprite_of(mover: _Walker | _Car) -> tuple[int, int, _Sprite]:
        kernel = _motion_kernel(*mover.step, config.blur * math.hypot(*mover.step))
        height = crowd.height_of(mover)  # a person's height where the mover is, times its size
        if isinstance(mover, _Car):
            car = _render_car(mover.look, height, mover.x, mover.y, mover.direction, kernel)
            return mover.identity, CAR, car
        stride = 0.12 * abs(math.cos(mover.slope)) + 0.03
        sprite = _render_figure(
            mover.look, height, mover.x, mover.y, mover.phase, stride, mover.direction, kernel
        )
        return mover.identity, PEDESTRIAN, sprite

    def frames() -> Iterator[tuple[np.ndarray, list[_Annotation]]]:
        for index in range(config.frames):
            if index > 0:
                advance()
                if camera_rng.uniform() < config.drop_frames:
                    advance()
            image = backgrounds[index % len(backgrounds)].copy()
            movers: list[_Walker | _Car] = [walker for walker in crowd.members if crowd.in_view(walker)]
            if traffic is not None:
                movers += [car for car in traffic.members if traffic.in_view(car)]
            sprites = []
            for mover in sorted(movers, key=lambda mover: (mover.y, mover.identity)):
                sprite = sprite_of(mover)
                _paste(image, sprite[2])
                sprites.append(sprite)
            if camera is None:
                yield image, _annotate(sprites, config.width, config.height)
            else:
                yield camera.shoot(index, image, sprites)

    return decoys, camera, frames()


def _write_sequence(
    folder: Path, config: SynthConfig, seed: int, name: str, progress: Progress | None
) -> None:
    """Write img1/, gt/gt.txt, seqinfo.ini (and fake_background.txt) into `folder`."""
    (folder / "img1").mkdir(parents=True)
    (folder / "gt").mkdir()
    decoys, camera, frames = _render_frames(config, seed)
    frame_numbers = range(1, config.frames + 1)
    rows: list[tuple[int, int, _Annotation]] = []
    first_seen: dict[int, int] = {}
    for frame, (image, frame_annotations) in zip(
        progress(frame_numbers) if progress else frame_numbers, frames
    ):
        path = folder / "img1" / f"{frame:06d}.jpg"
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality]):
            raise InputError(path, "cannot write image")
        for annotation in sorted(frame_annotations, key=lambda annotation: annotation.identity):
            first_seen.setdefault(annotation.identity, len(first_seen) + 1)
            rows.append((frame, first_seen[annotation.identity], annotation))
    with open(folder / "gt" / "gt.txt", "w", encoding="utf-8", newline="\n") as stream:
        for frame, identity, annotation in sorted(rows, key=lambda row: (row[0], row[1])):
            x0, y0, x1, y1 = annotation.box
            width, height = (x1 - x0, y1 - y0) if camera is None else (round(x1 - x0, 2), round(y1 - y0, 2))
            stream.write(
                f"{frame},{identity},{x0},{y0},{width},{height},1,{annotation.object_class},"
                f"{annotation.visibility:.4f}\n"
            )
    if camera is not None:
        with open(folder / "camera.txt", "w", encoding="utf-8", newline="\n") as stream:
            for index in range(config.frames):
                values = ",".join(f"{value + 0.0:.6f}" for value in camera.matrix(index).ravel())
                stream.write(f"{index + 1},{values}\n")
    if decoys:
        with open(folder / "fake_background.txt", "w", encoding="utf-8", newline="\n") as stream:
            stream.write("x,y,w,h,kind\n")
            for decoy in decoys:
                x0, y0, x1, y1 = decoy.box
                stream.write(f"{x0},{y0},{x1 - x0},{y1 - y0},{decoy.kind}\n")
    write_seqinfo(
        folder / "seqinfo.ini",
        SequenceInfo(name, config.fps, config.frames, config.width, config.height, "img1", ".jpg"),
    )


def _replace_folder(staging: Path, target: Path) -> None:
    """Move a finished folder into place, replacing an older one only after the new one is whole."""
    if not target.exists():
        staging.rename(target)
        return
    retired = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    target.rename(retired)
    try:
        staging.rename(target)
    except OSError:
        retired.rename(target)
        raise
    shutil.rmtree(retired)


def generate_sequence(
    out_dir: str | PathLike,
    config: SynthConfig = SynthConfig(),
    seed: int = 0,
    *,
    name: str = "SYNTH-01",
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Render one sequence into `out_dir/name` and return that folder.

    The sequence is written into a hidden folder beside it and renamed into place when complete,
    so an interrupted run leaves nothing half-written. An existing folder is an InputError unless
    `overwrite`. `progress` wraps the frame numbers (e.g. `tqdm`).
    """
    out_dir = Path(out_dir)
    target = out_dir / name
    if target.exists() and not overwrite:
        raise InputError(target, "already exists; overwrite (--overwrite) to replace it")
    staging = out_dir / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_sequence(staging, config, seed, name, progress)
        _replace_folder(staging, target)
    except OSError as error:
        raise InputError(target, f"cannot write: {error.strerror or error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def sequence_seeds(seed: int, count: int) -> list[int]:
    """Independent per-sequence seeds derived from one dataset seed."""
    return [int(value) for value in np.random.SeedSequence(seed).generate_state(count)]


def generate_dataset(
    out_dir: str | PathLike,
    config: SynthConfig = SynthConfig(),
    sequences: int = 1,
    seed: int = 0,
    *,
    prefix: str = "SYNTH",
    overwrite: bool = False,
    progress: Progress | None = None,
) -> list[Path]:
    """Render `sequences` sequences `out_dir/PREFIX-01`, `-02` ..., each with its own derived seed."""
    if sequences < 1:
        raise InputError(None, f"sequences must be >= 1, got {sequences}")
    digits = max(2, len(str(sequences)))
    names = [f"{prefix}-{index:0{digits}d}" for index in range(1, sequences + 1)]
    existing = [name for name in names if (Path(out_dir) / name).exists()]
    if existing and not overwrite:
        raise InputError(Path(out_dir) / existing[0], "already exists; overwrite (--overwrite) to replace it")
    return [
        generate_sequence(out_dir, config, sequence_seed, name=name, overwrite=overwrite, progress=progress)
        for name, sequence_seed in zip(names, sequence_seeds(seed, sequences))
    ]

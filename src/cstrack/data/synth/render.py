"""Drawing a synthetic scene: people and cars as antialiased sprites with motion blur, the static
background (ground, facade, clutter, fake-background decoys), compositing, and the boxes and
visibilities counted on the sprites' sharp masks."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import cv2
import numpy as np

from cstrack.data.mot import MOT_PEDESTRIAN
from cstrack.data.synth.scene import _CAR_HEIGHT, _CAR_LENGTH, SynthConfig, _Ground

# cv2 drawing in fixed point: coordinates carry 4 fractional bits, for smooth sub-pixel motion.
_SHIFT = 4
_FIXED = 1 << _SHIFT


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


# --- ground truth -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Annotation:
    identity: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 clipped to the image
    visibility: float
    object_class: int = MOT_PEDESTRIAN  # MOTChallenge class id


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

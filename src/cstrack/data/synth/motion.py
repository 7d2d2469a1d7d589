"""How a synthetic scene moves: walkers and cars entering, moving and leaving (Poisson arrivals,
drifting headings), and the moving camera's view of a wider world."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Generic, TypeVar

import cv2
import numpy as np

from cstrack.data.synth.render import (
    _annotate,
    _Annotation,
    _Appearance,
    _CarLook,
    _random_appearance,
    _random_car_look,
    _Sprite,
)
from cstrack.data.synth.scene import _CAR_LENGTH, SynthConfig, _Ground

__all__ = ["camera_warps"]

# Image rows move less than columns for the same ground distance: the plane is seen at a slant.
_DEPTH_FORESHORTENING = 0.5
# One full leg cycle (two steps) covers this many person heights.
_GAIT_CYCLE = 0.8
# Heading limits (radians off horizontal) and their drift per time step.
_MAX_SLOPE = 0.6
_SLOPE_DRIFT = 0.015
# A figure's half width (legs and arms swinging) as a fraction of its height: the out-of-view test.
_HALF_WIDTH = 0.35
# A car's half length in person heights (the out-of-view test).
_CAR_HALF_LENGTH = _CAR_LENGTH / 2 + 0.02
# Cars drive at this many person heights per second (about 1.7-3.4 m/s), keep nearly level
# headings, and are numbered apart from walkers until the ground truth renumbers every object.
_CAR_SPEED = (1.0, 2.0)
_CAR_MAX_SLOPE = 0.2
_CAR_IDENTITY_BASE = 1 << 30

# A moving camera's world, as a multiple of the frame's width and height.
_WORLD = (1.6, 1.25)
_ZOOM_IN, _WALK_ZOOM = 0.4, 0.25


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


# --- moving camera ----------------------------------------------------------------------------


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

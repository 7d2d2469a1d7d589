"""What a synthetic scene is: every knob (`SynthConfig`), the ground plane's perspective, the
annotated classes' ids and sizes (see the `cstrack.data.synth` package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cstrack.errors import check_options

__all__ = ["CAMERA_MOTIONS", "SynthConfig"]

# MOTChallenge's class id of the rendered vehicles (TrackEval's class_name_to_class_id: car 3).
CAR = 3
# A car's size in person heights at its ground row.
_CAR_HEIGHT, _CAR_LENGTH = 0.75, 1.9

#: The camera motions a sequence can have (`SynthConfig.camera_motion`).
CAMERA_MOTIONS = ("none", "pan", "zoom", "shake", "walk")

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

"""Every setting of the tracker with its default: frozen dataclasses of literals.

    from cstrack.config import AssociationConfig, DetectorConfig
    tracker = JDETracker(AssociationConfig(track_buffer=60, byte_low_threshold=0.1))

- `AssociationConfig`: the JDE cascade (`cstrack.tracking.JDETracker`), BYTE's second stage, long
  re-identification and camera-motion compensation;
- `DetectorConfig`: the thresholds, NMS and input size of `cstrack.models.Detector`;
- `RecheckConfig`: OMC's re-check: its search (`Detector`) and its fusion (`cstrack.Tracker`);
- `RuntimeConfig`: what runs the network: backend, device, precision, execution providers;

and the defaults of `cstrack track`'s sources and outputs (`DEFAULT_FRAME_RATE`, `RUNS_ROOT` ...).

`cstrack.pipeline.tracker_config.TrackerConfig` composes the first three (`tracker.yaml`). Each
field carries its `Rule` and what it does (`help`), which the YAML reader, the command line and
`cstrack tune` read; a config checks its values when it is made (`__post_init__`), so a value of
the wrong type or out of range is one InputError naming the field wherever it came from, and the
classes that take a config trust it.

This module imports neither torch nor numpy, so `cstrack --help` shows these defaults at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from typing import Any

from cstrack.errors import InputError, quote

#: The bundled model that `Tracker()` and `cstrack track` use when none is named.
DEFAULT_MODEL = "omc_yolox_nano.bytetrack_pets"
#: Network input sides are multiples of the largest stride.
SIZE_MULTIPLE = 32
EMBEDDING_READOUTS = ("box", "centre")  # see cstrack.models.readout
#: The network input (W, H) that JDE trains at: `cstrack train`'s default, and the input of
#: weights that do not record the size they were trained at.
DEFAULT_IMG_SIZE = (1088, 608)
#: A 4K frame's width; beyond it the feature maps alone take tens of GB.
MAX_INPUT_SIDE = 4096
#: Chi-square 95% quantile for 4 degrees of freedom: the Mahalanobis gate of stage 1.
CHI2_95_4DOF = 9.4877
#: Camera-motion estimation (`cstrack.pipeline.camera_motion`): none turns compensation off.
CMC_METHODS = ("none", "sof", "ecc", "orb")
#: What runs the network (`cstrack.backends.choice`): auto picks onnx or torch.
BACKENDS = ("auto", "torch", "onnx")
#: The frame rate of sources that do not say theirs (image folders, cameras that report none).
DEFAULT_FRAME_RATE = 30.0
#: How long a stream may stay down before tracking ends (math.inf: forever).
RECONNECT_SECONDS = 60.0
#: Where `cstrack track` writes without --output, and the name of its numbered folders.
RUNS_ROOT = "runs/track"
RUN_NAME = "exp"
#: A crop of each track every this many frames (of the source's numbering) by default.
CROP_EVERY = 30
#: The input-size rule in words (`check_input_size`, `Rule`).
SIZE_WORDS = f"two positive multiples of {SIZE_MULTIPLE} up to {MAX_INPUT_SIDE}"


def check_input_size(size: Any, what: str = "the input size") -> tuple[int, int]:
    """(width, height), both positive multiples of SIZE_MULTIPLE up to MAX_INPUT_SIDE, else
    InputError naming `what` (an option, a file's metadata): 100000 x 100000 would allocate 110 GB."""
    width, height = (int(v) for v in size)
    if (
        not (0 < width <= MAX_INPUT_SIDE and 0 < height <= MAX_INPUT_SIDE)
        or width % SIZE_MULTIPLE
        or height % SIZE_MULTIPLE
    ):
        raise InputError(None, f"{what} must be {SIZE_WORDS}, got {width} {height}")
    return width, height


def _number(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a setting accepts.

    `kind`: float, int, bool, text, choice (one of `choices`), size (an input width and height,
    see `check_input_size`) or names (comma-separated, or a sequence); a trailing "?" also takes None
    (off, or not set). Numbers lie in low..high with `bounds` "[]", "[)", "(]" or "()" (high None:
    unbounded, but finite).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    bounds: str = "[]"
    choices: tuple[str, ...] = ()

    @property
    def optional(self) -> bool:
        return self.kind.endswith("?")

    @property
    def base(self) -> str:
        """The kind without its "?"."""
        return self.kind.rstrip("?")

    def words(self, typed: bool = True) -> str:
        """The rule in words: 'a number in (0, 1)', 'an integer >= 0'; untyped (for an option that
        argparse has already converted): 'in (0, 1)', '>= 0'."""
        if self.base == "bool":
            return "true or false"
        if self.base == "choice":
            return "one of " + ", ".join(self.choices)
        if self.base == "size":
            return f"null or {SIZE_WORDS}" if typed and self.optional else SIZE_WORDS
        if self.base == "names":
            return "names, comma-separated"
        if self.base == "text":
            return "text"
        if self.high is None:
            sign = ">=" if self.bounds.startswith("[") else ">"
            if self.base == "int":
                return f"an integer {sign} {_number(self.low)}" if typed else f"{sign} {_number(self.low)}"
            return f"a finite number {sign} {_number(self.low)}"
        interval = f"{self.bounds[0]}{_number(self.low)}, {_number(self.high)}{self.bounds[1]}"
        if not typed:
            return f"in {interval}"
        noun = "an integer" if self.base == "int" else "a number"
        return f"null (off) or {noun} in {interval}" if self.optional else f"{noun} in {interval}"

    def accepts(self, value: Any) -> bool:
        """Whether `value` (of the setting's type, see `convert`) is allowed."""
        if value is None:
            return self.optional
        if self.base == "choice":
            return value in self.choices
        if self.base == "bool":
            return isinstance(value, bool)
        if self.base == "names":
            return all(isinstance(name, str) for name in value)
        if self.base == "text":
            return isinstance(value, str)
        if self.base == "size":
            return all(0 < side <= MAX_INPUT_SIDE and side % SIZE_MULTIPLE == 0 for side in value)
        if isinstance(value, bool) or not math.isfinite(value):
            return False
        assert self.low is not None
        above = bool(value >= self.low if self.bounds.startswith("[") else value > self.low)
        if self.high is None:
            return above
        return above and bool(value <= self.high if self.bounds.endswith("]") else value < self.high)

    def convert(self, value: Any) -> Any:
        """`value` as the setting's type, or a TypeError: an int for a float (YAML's `1`), a whole
        float for an int, a string that reads as a number (YAML 1.1 leaves `1e-3` a string), a list
        for a size are taken; `true` is no number."""
        if value is None:
            if self.optional:
                return None
        elif self.base == "bool":
            if isinstance(value, bool):
                return value
        elif self.base in ("choice", "text"):
            if isinstance(value, str):
                return value
        elif self.base == "names":
            if isinstance(value, str):
                return tuple(name.strip() for name in value.split(","))
            if isinstance(value, (list, tuple)):
                return tuple(value)
        elif self.base == "size":
            if isinstance(value, (list, tuple)) and len(value) == 2:
                return tuple(self._integer(side) for side in value)
        elif self.base == "int":
            return self._integer(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                return float(value)
        raise TypeError(self.words())

    def _integer(self, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(self.words())

    def check(self, name: str, value: Any, source: str | None = None, line: int | None = None) -> Any:
        """`value` converted and allowed, or an InputError 'SOURCE:LINE: NAME: must be RULE, got VALUE'."""
        try:
            converted = self.convert(value)
            accepted = self.accepts(converted)
        except (TypeError, OverflowError):  # not a number, or an integer beyond any float
            accepted = False
        if not accepted:
            got = (
                f"a {'list' if isinstance(value, list) else 'mapping'}"
                if isinstance(value, (list, dict)) and self.base != "size"
                else quote(value)
            )
            raise InputError(source, f"{name}: must be {self.words()}, got {got}", line)
        return converted


def setting(
    default: Any, rule: Rule, help: str, *, flag: str | None = None, search: tuple[float, float] | None = None
) -> Any:
    """A config field: its default, its rule, what it does, its command-line option when that is
    not `--` + the name with dashes, and the range `cstrack tune` searches by default (None: not
    searched unless asked)."""
    return dataclasses.field(
        default=default, metadata={"rule": rule, "help": help, "flag": flag, "search": search}
    )


def rules(config: type) -> dict[str, Rule]:
    """Field name -> rule of a config class, in field order."""
    return {item.name: item.metadata["rule"] for item in dataclasses.fields(config)}


def field_help(config: type, name: str) -> str:
    """What field `name` of a config class does."""
    help_text: str = next(item for item in dataclasses.fields(config) if item.name == name).metadata["help"]
    return help_text


def option(config: type, name: str) -> str:
    """The command-line option of field `name` of a config class: `--track-buffer`, `--byte-low`."""
    flag: str | None = next(item for item in dataclasses.fields(config) if item.name == name).metadata["flag"]
    return flag or "--" + name.replace("_", "-")


class Settings:
    """What every config shares: its fields checked and converted when it is made."""

    def __post_init__(self) -> None:
        for name, rule in rules(type(self)).items():
            object.__setattr__(self, name, rule.check(name, getattr(self, name)))

    def items(self) -> Iterator[tuple[str, Any]]:
        """(field, value) pairs in field order."""
        for name in rules(type(self)):
            yield name, getattr(self, name)


def _probability(bounds: str = "[]") -> Rule:
    return Rule("float", 0, 1, bounds)


@dataclasses.dataclass(frozen=True)
class DetectorConfig(Settings):
    """The thresholds, NMS and input size of `cstrack.models.Detector`."""

    conf: float = setting(
        0.5, _probability("[)"), "detection score threshold (objectness and score)", search=(0.35, 0.7)
    )
    nms_iou: float = setting(
        0.6,
        _probability("(]"),
        "detector NMS: boxes overlapping a better one by more than this IoU are dropped",
    )
    max_det: int = setting(300, Rule("int", 1), "the most detections a frame keeps, best first")
    diou_nms: bool = setting(False, Rule("bool"), "NMS by distance-IoU (IoU less the centres' distance)")
    clip: bool = setting(
        False,
        Rule("bool"),
        "clip boxes to the frame, as the JDE-family trackers do (off: boxes past the border are kept, "
        "as ByteTrack keeps them; clipping cost recall 0.825 -> 0.795 on MOT17-11-300)",
    )
    img_size: tuple[int, int] | None = setting(
        None,
        Rule("size?"),
        f"network input width and height, multiples of {SIZE_MULTIPLE} (default: fitted to each "
        "frame's aspect ratio within input_pixels; a backend built for one size keeps it)",
    )
    input_pixels: int = setting(
        960 * 544,
        Rule("int", SIZE_MULTIPLE**2),
        "the most input pixels of a size fitted to the frame (960 x 544: within the peer detector's "
        "cost at 1088 x 608)",
    )
    embedding_readout: str = setting(
        "box",
        Rule("choice", choices=EMBEDDING_READOUTS),
        "where a detection's embedding is read: the mean over its box (ReID's pooling; on unseen "
        "footage fewer identity switches) or the centre cell (the papers' JDE readout)",
    )


@dataclasses.dataclass(frozen=True)
class AssociationConfig(Settings):
    """The JDE cascade of `cstrack.tracking.JDETracker`, BYTE's second stage, long
    re-identification and camera-motion compensation; the defaults are the reference tracker's.

    `byte_low_threshold` (off by default) adds ByteTrack's BYTE stage; `reid_seconds` (0: off)
    remembers tracks lost for longer than the buffer; `cmc` is read by `cstrack.Tracker`, which
    estimates the camera's motion (a `JDETracker` alone is moved by `compensate_camera`).
    """

    new_track_thresh: float = setting(
        0.5, _probability(), "least score of an unmatched detection that starts a track", search=(0.35, 0.8)
    )
    embedding_match_thresh: float = setting(
        0.4,
        Rule("float", 0, 2),
        "stage 1 (tracked and lost tracks, appearance fused with motion): cost limit of the match",
        search=(0.2, 0.7),
    )
    appearance_weight: float = setting(
        0.98,
        _probability(),
        "stage 1 cost = weight x cosine distance + (1 - weight) x Mahalanobis distance",
        search=(0.5, 1.0),
    )
    gate_thresh: float = setting(
        CHI2_95_4DOF,
        Rule("float", 0, None, "()"),
        "stage 1: pairs whose squared Mahalanobis distance exceeds this cannot match",
        search=(2.0, 50.0),
    )
    iou_match_thresh: float = setting(
        0.5,
        _probability(),
        "stage 2 (remaining tracked tracks, IoU): cost limit (1 - IoU)",
        search=(0.3, 0.9),
    )
    unconfirmed_match_thresh: float = setting(
        0.7, _probability(), "stage 3 (tracks seen once, IoU): cost limit (1 - IoU)", search=(0.5, 0.95)
    )
    track_buffer: int = setting(
        30,
        Rule("int", 0, None, "[)"),
        "frames a lost track is kept for re-identification, at 30 fps (scaled by the frame rate)",
        search=(10, 150),
    )
    duplicate_iou: float = setting(
        0.85,
        _probability(),
        "a tracked and a lost track overlapping by more than this IoU: the older is kept",
        search=(0.5, 0.95),
    )
    template_momentum: float = setting(
        0.9, _probability(), "appearance template update: t = m t + (1 - m) e", search=(0.5, 0.99)
    )
    byte_low_threshold: float | None = setting(
        None,
        Rule("float?", 0, 1, "()"),
        "BYTE second stage (ByteTrack): also match tracked tracks by IoU to boxes scoring in [this, conf)",
        flag="--byte-low",
        search=(0.1, 0.3),
    )
    byte_match_thresh: float = setting(
        0.5, _probability(), "BYTE stage: IoU cost limit (1 - IoU)", search=(0.3, 0.9)
    )
    class_aware: bool = setting(
        True,
        Rule("bool"),
        "multi-class models: a track keeps its class and matches only detections of it (off: any "
        "class, the track taking its latest)",
    )
    reid_seconds: float = setting(
        0.0,
        Rule("float", 0, None, "[)"),
        "seconds a track lost for longer than the buffer is remembered for re-identification by "
        "appearance alone (0: off)",
        search=(0, 60),
    )
    reid_match_thresh: float = setting(
        0.1,
        Rule("float", 0, 2),
        "long re-identification: cosine-distance limit between a new track and a remembered one",
        search=(0.05, 0.3),
    )
    reid_capacity: int = setting(
        1000,
        Rule("int", 1, None, "[)"),
        "long re-identification: the most tracks remembered (the oldest are forgotten first)",
    )
    cmc: str = setting(
        "ecc",
        Rule("choice", choices=CMC_METHODS),
        "camera-motion compensation for moving cameras: sparse optical flow (sof), ecc, orb, or none",
    )


@dataclasses.dataclass(frozen=True)
class RecheckConfig(Settings):
    """OMC's re-check: the search for the tracks' templates (`Detector`) and the fusion of what it
    finds with the detections (paper eq. 10, `cstrack.Tracker`)."""

    recheck_threshold: float = setting(
        0.3,
        _probability("[)"),
        "OMC re-check: least heat of a peak that becomes a candidate",
        search=(0.1, 0.6),
    )
    recheck_top_k: int = setting(100, Rule("int", 1), "OMC re-check: the most heat peaks taken as candidates")
    fusion_eps: float = setting(
        0.5,
        _probability(),
        "OMC fusion (eq. 10): a re-check box joins when 1 - its largest IoU with the detections is "
        "at least this",
        search=(0.2, 0.9),
    )
    recheck_starts_tracks: bool = setting(
        False,
        Rule("bool"),
        "let re-check candidates start new tracks, as the released OMC does",
        search=(0, 1),
    )
    recheck_cover_iou: float | None = setting(
        0.5,
        Rule("float?", 0, 1, "(]"),
        "OMC re-check: search only for tracks no detection overlaps at this IoU, and skip the "
        "re-check network when there are none (null: every tracked track, every frame, as the paper)",
    )


@dataclasses.dataclass(frozen=True)
class RuntimeConfig(Settings):
    """What runs the network (`cstrack.backends.choice.build_detector`). The device and the
    providers are checked where they are resolved, against this machine's CUDA and onnxruntime."""

    backend: str = setting(
        "auto",
        Rule("choice", choices=BACKENDS),
        "inference backend: auto is onnx (ONNX Runtime, faster on the CPU) where the onnx extra is "
        "installed and the device is the CPU, else torch",
    )
    device: str = setting("auto", Rule("text"), "auto, cpu, cuda or cuda:N")
    half: bool = setting(
        False,
        Rule("bool"),
        "FP16 inference (torch on CUDA, or onnx with a TensorRT or CUDA execution provider)",
    )
    providers: tuple[str, ...] | None = setting(
        None,
        Rule("names?"),
        "ONNX Runtime execution providers to use, comma-separated, e.g. cuda,cpu (names: tensorrt, "
        "cuda, openvino, cpu); default: the first of those that onnxruntime has (implies backend onnx)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.providers and self.backend == "torch":
            raise InputError(
                None, "--providers chooses ONNX Runtime's execution providers: use --backend onnx"
            )


#: What `tracker.yaml` holds (`cstrack.pipeline.tracker_config.TrackerConfig`): its attribute ->
#: the config there, in the file's order. Their field names do not repeat, so the file and the
#: command line name each field alone.
TRACKER_SECTIONS: dict[str, type] = {
    "detector": DetectorConfig,
    "association": AssociationConfig,
    "recheck": RecheckConfig,
}


def search_space() -> dict[str, tuple[float, float]]:
    """The fields of `tracker.yaml` that `cstrack tune` searches by default -> their ranges."""
    return {
        item.name: item.metadata["search"]
        for section in TRACKER_SECTIONS.values()
        for item in dataclasses.fields(section)
        if item.metadata["search"] is not None
    }

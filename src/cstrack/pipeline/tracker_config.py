"""Every threshold of the tracker in one frozen dataclass, read from and written to YAML.

    from cstrack.pipeline.tracker_config import TrackerConfig
    config = TrackerConfig.load("tracker.yaml")     # unknown keys, wrong types: one-line InputError
    tracker = Tracker.from_config("omc_yolox_nano.bytetrack_pets", config)
    config.replace(track_buffer=60).save("tuned.yaml")

`TrackerConfig` holds the thresholds of the JDE cascade (`cstrack.tracking.JDETracker`'s keyword
arguments), of BYTE's second stage, of OMC's candidate fusion (`Tracker`'s `fusion_eps`, the
re-check heat threshold) and the detector's score threshold and NMS IoU. Each field's default
is the default of the keyword argument that `SPEC` names (read from its signature when this
module is imported), so that there is one source for every number: a default changed in
`JDETracker`, `Tracker` or `Detector` is the config's default too.

`SPEC` and `FLAGS` are plain literals so that `cstrack track --help` reads them (and the
defaults, from the owners' source) without importing PyTorch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib
import inspect
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from cstrack.atomic import atomic_write
from cstrack.errors import QUOTE_CHARS, InputError, printable, quote

#: The file `track` writes beside its results: the configuration it ran with.
CONFIG_FILE = "tracker.yaml"
#: A tracker configuration is a few hundred bytes; a larger file is not one.
MAX_FILE_BYTES = 1 << 16
#: It is one mapping of scalars; a field given a list or mapping is refused by name below this.
MAX_DEPTH = 4

#: field -> (owner "module:Class", the keyword of the owner's __init__ whose default the field
#: takes, kind, low, high, bounds, what it does). kind: "float", "int", "bool", "float?"
#: (None allowed: off) or "choice" (one of the names `CHOICES` points to); bounds "[]", "[)",
#: "(]" or "()" on low..high, high None: unbounded (finite).
SPEC: dict[str, tuple[str, str, str, float | None, float | None, str, str]] = {
    "conf": (
        "cstrack.pipeline.end_to_end:Tracker",
        "conf",
        "float",
        0,
        1,
        "()",
        "detection score threshold (objectness and score)",
    ),
    "new_track_thresh": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "new_track_thresh",
        "float",
        0,
        1,
        "[]",
        "least score of an unmatched detection that starts a track",
    ),
    "embedding_match_thresh": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "embedding_match_thresh",
        "float",
        0,
        2,
        "[]",
        "stage 1 (tracked and lost tracks, appearance fused with motion): cost limit of the match",
    ),
    "appearance_weight": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "appearance_weight",
        "float",
        0,
        1,
        "[]",
        "stage 1 cost = weight x cosine distance + (1 - weight) x Mahalanobis distance",
    ),
    "gate_thresh": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "gate_thresh",
        "float",
        0,
        None,
        "()",
        "stage 1: pairs whose squared Mahalanobis distance exceeds this cannot match",
    ),
    "iou_match_thresh": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "iou_match_thresh",
        "float",
        0,
        1,
        "[]",
        "stage 2 (remaining tracked tracks, IoU): cost limit (1 - IoU)",
    ),
    "unconfirmed_match_thresh": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "unconfirmed_match_thresh",
        "float",
        0,
        1,
        "[]",
        "stage 3 (tracks seen once, IoU): cost limit (1 - IoU)",
    ),
    "track_buffer": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "track_buffer",
        "int",
        0,
        None,
        "[)",
        "frames a lost track is kept for re-identification, at 30 fps (scaled by the frame rate)",
    ),
    "duplicate_iou": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "duplicate_iou",
        "float",
        0,
        1,
        "[]",
        "a tracked and a lost track overlapping by more than this IoU: the older is kept",
    ),
    "template_momentum": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "template_momentum",
        "float",
        0,
        1,
        "[]",
        "appearance template update: t = m t + (1 - m) e",
    ),
    "byte_low_threshold": (
        "cstrack.pipeline.end_to_end:Tracker",
        "byte_low_threshold",
        "float?",
        0,
        1,
        "()",
        "BYTE second stage (ByteTrack): also match tracked tracks by IoU to boxes scoring in [this, conf)",
    ),
    "byte_match_thresh": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "byte_match_thresh",
        "float",
        0,
        1,
        "[]",
        "BYTE stage: IoU cost limit (1 - IoU)",
    ),
    "fusion_eps": (
        "cstrack.pipeline.end_to_end:Tracker",
        "fusion_eps",
        "float",
        0,
        1,
        "[]",
        "OMC fusion (eq. 10): a re-check box joins when 1 - its largest IoU with the detections "
        "is at least this",
    ),
    "recheck_threshold": (
        "cstrack.models.inference:Detector",
        "recheck_threshold",
        "float",
        0,
        1,
        "[)",
        "OMC re-check: least heat of a peak that becomes a candidate",
    ),
    "recheck_starts_tracks": (
        "cstrack.pipeline.end_to_end:Tracker",
        "recheck_starts_tracks",
        "bool",
        None,
        None,
        "",
        "let re-check candidates start new tracks, as the released OMC does",
    ),
    "recheck_cover_iou": (
        "cstrack.pipeline.end_to_end:Tracker",
        "recheck_cover_iou",
        "float?",
        0,
        1,
        "(]",
        "OMC re-check: search only for tracks no detection overlaps at this IoU, and skip the "
        "re-check network when there are none (null: every tracked track, every frame, as the paper)",
    ),
    "cmc": (
        "cstrack.pipeline.end_to_end:Tracker",
        "cmc",
        "choice",
        None,
        None,
        "",
        "camera-motion compensation for moving cameras: sparse optical flow (sof), ecc, orb, or none",
    ),
    "reid_seconds": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "reid_seconds",
        "float",
        0,
        None,
        "[)",
        "seconds a track lost for longer than the buffer is remembered for re-identification by "
        "appearance alone (0: off)",
    ),
    "reid_match_thresh": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "reid_match_thresh",
        "float",
        0,
        2,
        "[]",
        "long re-identification: cosine-distance limit between a new track and a remembered one",
    ),
    "reid_capacity": (
        "cstrack.tracking.jde_tracker:JDETracker",
        "reid_capacity",
        "int",
        1,
        None,
        "[)",
        "long re-identification: the most tracks remembered (the oldest are forgotten first)",
    ),
    "nms_iou": (
        "cstrack.models.inference:Detector",
        "iou_threshold",
        "float",
        0,
        1,
        "(]",
        "detector NMS: boxes overlapping a better one by more than this IoU are dropped",
    ),
}
#: The names a "choice" field takes: field -> (module, the tuple of names in it), read from there
#: so that the names have one source (`cstrack track --help` reads them without importing it).
CHOICES: dict[str, tuple[str, str]] = {"cmc": ("cstrack.pipeline.camera_motion", "METHODS")}
#: Command-line spellings that are not `--` + the field name with dashes.
FLAGS: dict[str, str] = {"byte_low_threshold": "--byte-low"}
#: The owner whose keywords go to the `Detector` that `Tracker` builds (`detector_options`).
DETECTOR = "cstrack.models.inference:Detector"


class Rule(NamedTuple):
    """What a field accepts (one `SPEC` entry)."""

    owner: str
    keyword: str
    kind: str
    low: float | None
    high: float | None
    bounds: str
    help: str

    def words(self, typed: bool = True) -> str:
        """The rule in words: 'a number in (0, 1)', 'an integer >= 0'; untyped (for an option that
        argparse has already converted): 'in (0, 1)', '>= 0'."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.high is None:
            sign = ">=" if self.bounds.startswith("[") else ">"
            if self.kind == "int":
                return f"an integer {sign} {_number(self.low)}" if typed else f"{sign} {_number(self.low)}"
            return f"a finite number {sign} {_number(self.low)}"
        interval = f"{self.bounds[0]}{_number(self.low)}, {_number(self.high)}{self.bounds[1]}"
        if not typed:
            return f"in {interval}"
        noun = "an integer" if self.kind == "int" else "a number"
        return f"null (off) or {noun} in {interval}" if self.kind == "float?" else f"{noun} in {interval}"

    @property
    def choices(self) -> tuple[str, ...]:
        """The names a "choice" field takes (see `CHOICES`)."""
        module, name = CHOICES[self.keyword]
        names: tuple[str, ...] = getattr(importlib.import_module(module), name)
        return names

    def accepts(self, value: Any) -> bool:
        """Whether `value` (already of the field's type, see `convert`) is in range."""
        if self.kind == "choice":
            return value in self.choices
        if self.kind == "bool" or value is None:
            return isinstance(value, bool) if self.kind == "bool" else self.kind == "float?"
        if not math.isfinite(value):
            return False
        assert self.low is not None
        above = bool(value >= self.low if self.bounds.startswith("[") else value > self.low)
        if self.high is None:
            return above
        return above and bool(value <= self.high if self.bounds.endswith("]") else value < self.high)

    def convert(self, value: Any) -> Any:
        """`value` as the field's type, or a TypeError: an int for a float field (YAML's `1`) and a
        string that reads as a number (YAML 1.1 leaves `1e-3` a string) are taken, `true` is no number."""
        if self.kind in ("bool", "choice"):
            if isinstance(value, bool if self.kind == "bool" else str):
                return value
        elif value is None:
            if self.kind == "float?":
                return None
        elif isinstance(value, bool):
            pass
        elif self.kind == "int":
            if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
                return int(value)
        elif isinstance(value, (int, float)):
            return float(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                return float(value)
        raise TypeError(self.words())

    def check(
        self, name: str, value: Any, source: str | PathLike[str] | None = None, line: int | None = None
    ) -> Any:
        """`value` converted and in range, or an InputError 'SOURCE:LINE: NAME: must be RULE, got VALUE'."""
        try:
            converted = self.convert(value)
            accepted = self.accepts(converted)
        except (TypeError, OverflowError):  # not a number, or an integer beyond any float
            accepted = False
        if not accepted:
            got = (
                f"a {'list' if isinstance(value, list) else 'mapping'}"
                if isinstance(value, (list, dict))
                else quote(value)
            )
            raise InputError(source, f"{name}: must be {self.words()}, got {got}", line)
        return converted


def _number(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


RULES: dict[str, Rule] = {name: Rule(*entry) for name, entry in SPEC.items()}


def flag(name: str) -> str:
    """The command-line option of a field: `--track-buffer`, `--byte-low` ..."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


@cache
def _signature(owner: str) -> Mapping[str, inspect.Parameter]:
    module, _, qualname = owner.partition(":")
    value: Any = importlib.import_module(module)
    for attribute in qualname.split("."):
        value = getattr(value, attribute)
    return inspect.signature(value).parameters


def owner_default(name: str) -> Any:
    """The default of the keyword argument that field `name` mirrors (`SPEC`), from its signature."""
    rule = RULES[name]
    return _signature(rule.owner)[rule.keyword].default


@dataclass(frozen=True)
class TrackerConfig:
    """Every threshold of `Tracker`: the cascade, BYTE, OMC's fusion and the detector (see `SPEC`).

    Defaults are those of the keyword arguments they mirror. A value of the wrong type or out of
    range raises InputError naming the field; `byte_low_threshold`, when set, must be below `conf`.
    """

    conf: float = owner_default("conf")
    new_track_thresh: float = owner_default("new_track_thresh")
    embedding_match_thresh: float = owner_default("embedding_match_thresh")
    appearance_weight: float = owner_default("appearance_weight")
    gate_thresh: float = owner_default("gate_thresh")
    iou_match_thresh: float = owner_default("iou_match_thresh")
    unconfirmed_match_thresh: float = owner_default("unconfirmed_match_thresh")
    track_buffer: int = owner_default("track_buffer")
    duplicate_iou: float = owner_default("duplicate_iou")
    template_momentum: float = owner_default("template_momentum")
    byte_low_threshold: float | None = owner_default("byte_low_threshold")
    byte_match_thresh: float = owner_default("byte_match_thresh")
    fusion_eps: float = owner_default("fusion_eps")
    recheck_threshold: float = owner_default("recheck_threshold")
    recheck_starts_tracks: bool = owner_default("recheck_starts_tracks")
    recheck_cover_iou: float | None = owner_default("recheck_cover_iou")
    cmc: str = owner_default("cmc")
    reid_seconds: float = owner_default("reid_seconds")
    reid_match_thresh: float = owner_default("reid_match_thresh")
    reid_capacity: int = owner_default("reid_capacity")
    nms_iou: float = owner_default("nms_iou")

    def __post_init__(self) -> None:
        for name, value in self.items():
            object.__setattr__(self, name, RULES[name].check(name, value))
        low = self.byte_low_threshold
        if low is not None and low >= self.conf:
            raise InputError(None, f"byte_low_threshold: must be below conf ({self.conf}), got {low}")

    def items(self) -> Iterator[tuple[str, Any]]:
        """(field, value) pairs in the order of `SPEC`."""
        for item in dataclasses.fields(self):
            yield item.name, getattr(self, item.name)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.items())

    def replace(self, **changes: Any) -> TrackerConfig:
        """A copy with `changes`, checked as the constructor checks its arguments."""
        for name in changes:
            if name not in RULES:
                raise InputError(None, _unknown_key(name))
        return dataclasses.replace(self, **changes)

    def changes(self, base: TrackerConfig | None = None) -> dict[str, Any]:
        """The fields whose values differ from `base` (default: the defaults)."""
        base = TrackerConfig() if base is None else base
        return {name: value for name, value in self.items() if getattr(base, name) != value}

    def tracker_options(self) -> dict[str, Any]:
        """The keyword arguments of `Tracker` that build a tracker with these values: its own, the
        JDETracker keywords it passes on, and `detector_options` for the `Detector` it builds."""
        options: dict[str, Any] = {}
        detector: dict[str, Any] = {}
        for name, value in self.items():
            rule = RULES[name]
            (detector if rule.owner == DETECTOR else options)[rule.keyword] = value
        options["detector_options"] = detector
        return options

    @classmethod
    def from_options(cls, options: Mapping[str, Any], detector: Mapping[str, Any]) -> TrackerConfig:
        """The configuration of keyword arguments of `Tracker` (`options`, its own and JDETracker's)
        and of its `Detector` (`detector`): `tracker_options` read backwards, every value that a
        field mirrors checked by its rule, so `Tracker(conf=nan)` fails as `--conf nan` does."""
        values = {}
        for name, rule in RULES.items():
            given = detector if rule.owner == DETECTOR else options
            if rule.keyword in given:
                values[name] = given[rule.keyword]
        return cls(**values)

    @classmethod
    def load(cls, path: str | PathLike[str], base: TrackerConfig | None = None) -> TrackerConfig:
        """`base` (default: the defaults) with the `field: value` lines of the YAML file at `path`;
        fields left out keep their values, an empty file is `base`. Anything wrong (unknown or
        repeated keys, wrong types, values out of range, bad YAML) is one InputError naming the
        file, the line and the key."""
        path = Path(path)
        base = TrackerConfig() if base is None else base
        node, values = _read_yaml(path)
        if values is None:
            return base
        if not isinstance(values, dict) or not isinstance(node, yaml.MappingNode):
            kind = "list" if isinstance(values, list) else type(values).__name__
            raise InputError(path, f"must be a mapping of `field: value` lines, not a {kind}")
        lines: dict[str, int] = {}
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or not isinstance(yaml.safe_load(yaml.serialize(key_node)), str):
                raise InputError(path, f"keys must be field names, got {quote(key_node.value)}", line)
            if key in lines:
                raise InputError(path, f"{key}: given twice (first on line {lines[key]})", line)
            if key not in RULES:
                raise InputError(path, _unknown_key(key), line)
            lines[key] = line
        checked = {key: RULES[key].check(key, value, path, lines[key]) for key, value in values.items()}
        try:
            return dataclasses.replace(base, **checked)
        except InputError as error:
            key = error.problem.partition(":")[0]
            raise InputError(path, error.problem, lines.get(key)) from None

    def dumps(self, header: str | None = None) -> str:
        """YAML text of every field, in `SPEC` order, after `header` as comment lines."""
        body = str(yaml.safe_dump(self.as_dict(), sort_keys=False, default_flow_style=False))
        comments = [f"# {line}".rstrip() for line in (header or "").splitlines()]
        return "".join(f"{line}\n" for line in comments) + body

    def save(self, path: str | PathLike[str], header: str | None = None) -> Path:
        """Write `dumps(header)` to `path` atomically (a crash never leaves half a file)."""
        path = Path(path)
        with atomic_write(path) as stream:
            stream.write(self.dumps(header))
        return path


def _read_yaml(path: Path) -> tuple[yaml.Node | None, Any]:
    """The YAML node tree (for line numbers) and the values of a small file, or InputError."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise InputError(path, f"cannot read the tracker configuration: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(path, f"is over {MAX_FILE_BYTES} bytes: not a tracker configuration")
    try:
        text = data.decode("utf-8-sig")
        _check_flat(path, text)
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except UnicodeDecodeError as error:
        raise InputError(path, f"is not UTF-8 text (byte {error.start})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(
            path, f"is not valid YAML: {problem}", None if mark is None else mark.line + 1
        ) from None
    except InputError:
        raise
    except ValueError as error:  # a value PyYAML cannot build: an integer of 5000 digits
        raise InputError(
            path, f"holds a value that cannot be read: {printable(error, QUOTE_CHARS)}"
        ) from None


def _check_flat(path: Path, text: str) -> None:
    """Refuse, from the parser's events and before anything is built, what a file of `field: value`
    lines never needs: anchors and aliases (a 1 KB alias bomb expands to gigabytes when shown),
    merge keys (`<<`) and nesting beyond MAX_DEPTH (the composer recurses once per level)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise InputError(
                path, "anchors and aliases (&name, *name) are not supported: write each value out", line
            )
        if isinstance(event, yaml.ScalarEvent) and event.value == "<<" and event.implicit[0]:
            raise InputError(path, "merge keys (<<) are not supported: write each field out", line)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise InputError(
                    path, f"nested deeper than {MAX_DEPTH} levels: not a tracker configuration", line
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _unknown_key(key: str) -> str:
    close = difflib.get_close_matches(key[:QUOTE_CHARS], RULES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{printable(key, QUOTE_CHARS)}: unknown key{hint}; the keys are {', '.join(RULES)}"


#: What an option of a `float?` field (`--byte-low off`) gives to turn off a value the file set.
OFF = "off"


def resolve(
    path: str | PathLike[str] | None, overrides: Mapping[str, Any], base: TrackerConfig | None = None
) -> TrackerConfig:
    """The configuration of a command: `base` (default: the defaults), then the file at `path`,
    then `overrides`: the command-line options by field name (None: not given; `OFF` for None).

    An override out of range is an InputError naming its option: `--track-buffer must be >= 0,
    got -1`, `--byte-low must be in (0, 1) and below --conf (0.5), got 0.7`.
    """
    config = TrackerConfig() if base is None else base
    if path is not None:
        config = TrackerConfig.load(path, config)
    given = {name: value for name, value in overrides.items() if value is not None}
    conf = given.get("conf", config.conf)
    for name, value in given.items():
        rule = RULES[name]
        if value == OFF and rule.kind == "float?":
            given[name] = None
        elif name == "byte_low_threshold":
            if not (rule.accepts(value) and value < conf):
                raise InputError(
                    None,
                    f"{flag(name)} must be {rule.words(typed=False)} and below {flag('conf')} ({conf}), got {value}",
                )
        elif not rule.accepts(value):
            raise InputError(None, f"{flag(name)} must be {rule.words(typed=False)}, got {value}")
    try:
        return dataclasses.replace(config, **given)
    except InputError as error:  # conf given below the file's byte_low_threshold
        source = f" of {path}" if path is not None else ""
        raise InputError(None, f"{error.problem}{source}, with the command-line options") from None

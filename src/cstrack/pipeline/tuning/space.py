"""The search space of `cstrack tune`: which fields of `tracker.yaml` are searched, over which
ranges (`--params`, else each field's `search` range in `cstrack.config`), and the lowest
thresholds any trial uses, at which the detections are cached (`detection_floor`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from cstrack.config import search_space
from cstrack.errors import InputError
from cstrack.pipeline.tracker_config import RULES, TrackerConfig

#: The search space of `cstrack tune` when --params is not given: field -> (low, high), each
#: field's `search` range (`cstrack.config.search_space`). A `float?` field (BYTE's low
#: threshold) is searched as off or in the range.
DEFAULT_SPACE = search_space()
#: "choice" fields (see `cstrack.config.Rule`), searched over all their names unless --params
#: names some (`cmc=none:sof`).
DEFAULT_CHOICES = ("cmc",)
#: Searched on a log scale.
LOG_SCALE = frozenset({"gate_thresh"})
#: Fields that matter only when another is set (not None): searched only then.
NEEDS = {"byte_match_thresh": "byte_low_threshold", "reid_match_thresh": "reid_seconds"}
#: Fields of OMC's re-check, left out when tuning without it.
RECHECK_FIELDS = frozenset({"fusion_eps", "recheck_threshold", "recheck_starts_tracks"})
#: Fields that cached detections cannot follow, and why.
NOT_TUNABLE = {
    "nms_iou": "it changes which boxes the detector keeps, so each trial would need the network again",
    "reid_capacity": "it bounds the memory of long re-identification; set it, do not search it",
    "class_aware": "it says what a track is (one class, or any); set it, do not search it",
    **dict.fromkeys(
        ("max_det", "diou_nms", "clip", "img_size", "input_pixels", "recheck_top_k"),
        "it changes what the network gives, so each trial would need the network again",
    ),
}


class Param(NamedTuple):
    """One searched field: its kind (its `cstrack.config.Rule`'s), range and scale, or the names
    a "choice" field is searched over."""

    name: str
    kind: str
    low: float
    high: float
    log: bool = False
    choices: tuple[str, ...] = ()


def parse_space(text: str | None, recheck: bool = True) -> list[Param]:
    """The search space of `--params`: 'conf,track_buffer=20:90,...' (a range overrides the default
    one), None for every field of `DEFAULT_SPACE` (without the re-check ones when `recheck` is off);
    in `TrackerConfig` field order. A name or range the config does not accept is an InputError."""
    if text is None:
        wanted: dict[str, str | None] = {
            name: None for name in (*DEFAULT_SPACE, *DEFAULT_CHOICES) if recheck or name not in RECHECK_FIELDS
        }
    else:
        wanted = {}
        for item in (part.strip() for part in text.split(",")):
            name, _, bounds = item.partition("=")
            name = name.strip()
            if name in NOT_TUNABLE:
                raise InputError(
                    None, f"--params: {name} cannot be tuned over cached detections: {NOT_TUNABLE[name]}"
                )
            if name not in RULES:
                raise InputError(
                    None,
                    f"--params: unknown field {name!r}; choose from {', '.join((*DEFAULT_SPACE, *DEFAULT_CHOICES))}",
                )
            if name in RECHECK_FIELDS and not recheck:
                raise InputError(None, f"--params: {name} is a re-check threshold; tuning without re-check")
            wanted[name] = bounds.strip() or None
    space = []
    for name in RULES:  # field order: BYTE's low threshold before what needs it
        if name not in wanted:
            continue
        rule = RULES[name]
        if rule.kind == "choice":
            names = rule.choices if wanted[name] is None else _parse_choices(name, str(wanted[name]))
            space.append(Param(name, rule.kind, 0, 0, choices=names))
            continue
        low, high = DEFAULT_SPACE[name]
        if wanted[name] is not None:
            low, high = _parse_range(name, str(wanted[name]), rule.kind)
        space.append(Param(name, rule.kind, low, high, name in LOG_SCALE))
    return space


def _parse_choices(name: str, text: str) -> tuple[str, ...]:
    """The names of `--params NAME=A:B:...`, each one the field takes, at least two."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(":")))
    rule = RULES[name]
    if len(names) < 2 or not all(rule.accepts(value) for value in names):
        raise InputError(
            None, f"--params: {name}={text}: give two or more of {', '.join(rule.choices)}, ':'-separated"
        )
    return names


def _parse_range(name: str, text: str, kind: str) -> tuple[float, float]:
    rule = RULES[name]
    if kind == "bool":
        raise InputError(None, f"--params: {name} is true or false; give it without a range")
    first, sep, second = text.partition(":")
    try:
        low, high = (int(first), int(second)) if kind == "int" else (float(first), float(second))
    except ValueError:
        low = high = math.nan
    if not sep or not (rule.accepts(low) and rule.accepts(high) and low < high):
        raise InputError(None, f"--params: {name}={text}: give LOW:HIGH, LOW < HIGH, each {rule.words()}")
    return low, high


def detection_floor(space: Sequence[Param], base: TrackerConfig) -> tuple[float, float]:
    """The detection score and re-check heat thresholds to cache at: the lowest any trial uses."""
    ranges = {param.name: param.low for param in space}
    conf, byte_low = base.detector.conf, base.association.byte_low_threshold
    scores = [conf, ranges.get("conf", conf)]
    if byte_low is not None:
        scores.append(byte_low)
    if "byte_low_threshold" in ranges:
        scores.append(ranges["byte_low_threshold"])
    heat = base.recheck.recheck_threshold
    heat = min(heat, ranges.get("recheck_threshold", heat))
    return min(scores), heat

"""`tracker.yaml`: the detector's, the association's and the re-check's settings in one file.

    from cstrack.pipeline.tracker_config import TrackerConfig
    config = TrackerConfig.load("tracker.yaml")     # unknown keys, wrong types: one-line InputError
    tracker = Tracker("omc_yolox_nano.bytetrack_pets", config)
    config.replace(track_buffer=60).save("tuned.yaml")

`TrackerConfig` composes `cstrack.config`'s `DetectorConfig`, `AssociationConfig` and
`RecheckConfig`, which hold every default and rule. The file is one flat `field: value` line per
field of the three (their names do not repeat), so `replace`, `items` and the command-line options
(`--track-buffer`, `--byte-low` ...) name fields alike; fields left out keep their values.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from cstrack.atomic import atomic_write
from cstrack.config import (
    TRACKER_SECTIONS,
    AssociationConfig,
    DetectorConfig,
    RecheckConfig,
    Rule,
    option,
    rules,
)
from cstrack.errors import QUOTE_CHARS, InputError, printable, quote

#: The file `track` writes beside its results: the configuration it ran with.
TRACKER_CONFIG_FILE = "tracker.yaml"
#: A tracker configuration is a few hundred bytes; a larger file is not one.
MAX_FILE_BYTES = 1 << 16
#: It is one mapping of scalars; a field given a list or mapping is refused by name below this.
MAX_DEPTH = 4

#: Field -> its rule, over every section in the file's order.
RULES: dict[str, Rule] = {
    name: rule for kind in TRACKER_SECTIONS.values() for name, rule in rules(kind).items()
}
#: Field -> the section (`TrackerConfig`'s attribute) that holds it.
SECTION_OF: dict[str, str] = {
    name: section for section, kind in TRACKER_SECTIONS.items() for name in rules(kind)
}


def flag(name: str) -> str:
    """The command-line option of a field: `--track-buffer`, `--byte-low` ..."""
    return option(TRACKER_SECTIONS[SECTION_OF[name]], name)


@dataclass(frozen=True)
class TrackerConfig:
    """Every setting of `Tracker`: its detector's, its association's and OMC's re-check's.

    Each section checks its values when made; `byte_low_threshold`, when set, must be below the
    detector's `conf` (the boxes between them are BYTE's low-score ones).
    """

    detector: DetectorConfig = DetectorConfig()
    association: AssociationConfig = AssociationConfig()
    recheck: RecheckConfig = RecheckConfig()

    def __post_init__(self) -> None:
        low, conf = self.association.byte_low_threshold, self.detector.conf
        if low is not None and low >= conf:
            raise InputError(None, f"byte_low_threshold: must be below conf ({conf}), got {low}")

    def value(self, name: str) -> Any:
        """The value of field `name` of whichever section holds it."""
        return getattr(getattr(self, SECTION_OF[name]), name)

    def items(self) -> Iterator[tuple[str, Any]]:
        """(field, value) pairs in the file's order."""
        for name in RULES:
            yield name, self.value(name)

    def as_dict(self) -> dict[str, Any]:
        """Field -> value, as the file holds them (an input size as a list)."""
        return {name: list(value) if isinstance(value, tuple) else value for name, value in self.items()}

    def replace(self, **changes: Any) -> TrackerConfig:
        """A copy with `changes` (fields by name, of any section), checked as the sections check
        their values."""
        for name in changes:
            if name not in RULES:
                raise InputError(None, _unknown_key(name))
        sections = {
            section: dataclasses.replace(
                getattr(self, section), **{k: v for k, v in changes.items() if SECTION_OF[k] == section}
            )
            for section in TRACKER_SECTIONS
        }
        return TrackerConfig(**sections)

    def changes(self, base: TrackerConfig | None = None) -> dict[str, Any]:
        """The fields whose values differ from `base` (default: the defaults)."""
        base = TrackerConfig() if base is None else base
        return {name: value for name, value in self.items() if base.value(name) != value}

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
        try:
            return base.replace(**values)
        except InputError as error:  # the problem starts with the field's name
            key = error.problem.partition(":")[0]
            raise InputError(path, error.problem, lines.get(key)) from None

    def dumps(self, header: str | None = None) -> str:
        """YAML text of every field, in the file's order, after `header` as comment lines."""
        body = str(yaml.dump(self.as_dict(), Dumper=_Dumper, sort_keys=False, default_flow_style=False))
        comments = [f"# {line}".rstrip() for line in (header or "").splitlines()]
        return "".join(f"{line}\n" for line in comments) + body

    def save(self, path: str | PathLike[str], header: str | None = None) -> Path:
        """Write `dumps(header)` to `path` atomically (a crash never leaves half a file)."""
        path = Path(path)
        with atomic_write(path) as stream:
            stream.write(self.dumps(header))
        return path


class _Dumper(yaml.SafeDumper):
    """One `field: value` line each, an input size as `[W, H]`."""


_Dumper.add_representer(
    list, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)
)


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
        line = None if event.start_mark is None else event.start_mark.line + 1
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
    # The 29 keys would not fit one line: `cstrack track --help` and docs/api/config.md list them.
    return f"{printable(key, QUOTE_CHARS)}: unknown key{hint} (the keys: `cstrack track --help`)"


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
    given = {
        name: None if value == OFF and RULES[name].optional else value
        for name, value in overrides.items()
        if value is not None
    }
    try:
        return config.replace(**given)
    except InputError as error:  # the problem starts with the field's name
        name = error.problem.partition(":")[0]
        if name not in given:  # conf given below the file's byte_low_threshold
            source = f" of {path}" if path is not None else ""
            raise InputError(None, f"{error.problem}{source}, with the command-line options") from None
        rule, value = RULES[name], given[name]
        shown = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        if name == "byte_low_threshold":
            conf = given.get("conf", config.detector.conf)
            raise InputError(
                None,
                f"{flag(name)} must be {rule.words(typed=False)} and below {flag('conf')} ({conf}), got {shown}",
            ) from None
        raise InputError(None, f"{flag(name)} must be {rule.words(typed=False)}, got {shown}") from None

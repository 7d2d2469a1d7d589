"""Tracker configurations and `Tracker` keywords on hostile inputs (issue 23): alias bombs, merge
keys, deep nesting, huge values; one validation for the API and the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cstrack.errors import QUOTE_CHARS, InputError, quote
from cstrack.pipeline.end_to_end import Tracker
from cstrack.pipeline.tracker_config import TrackerConfig


def alias_bomb(levels: int = 9) -> str:
    """1.3 KB of YAML whose value, shown with repr(), is 9**levels items."""
    rows = ["&a0 [" + ", ".join(["lol"] * 9) + "]"]
    rows += [f"&a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]" for k in range(1, levels)]
    return f"track_buffer: [{', '.join(rows)}]\n"


def test_an_alias_bomb_is_refused_in_bounded_memory(tmp_path: Path, address_space_limit):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    assert path.stat().st_size < 2000
    with address_space_limit(256 << 20), pytest.raises(InputError) as caught:
        TrackerConfig.load(path)
    assert (
        str(caught.value)
        == f"{path}:1: anchors and aliases (&name, *name) are not supported: write each value out"
    )


@pytest.mark.parametrize(
    "text, problem",
    [
        ("<<: {conf: 0.3}\n", ":1: merge keys (<<) are not supported: write each field out"),
        ("base: &b {conf: 0.3}\nconf: *b\n", ":1: anchors and aliases"),
        ("conf: " + "[" * 5000 + "]" * 5000 + "\n", ":1: nested deeper than 4 levels"),
        ("conf: [0.3]\n", ":1: conf: must be a number in [0, 1), got a list"),
        ("conf: {a: 1}\n", ":1: conf: must be a number in [0, 1), got a mapping"),
    ],
)
def test_yaml_features_a_configuration_never_needs_are_one_line(tmp_path: Path, text: str, problem: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        TrackerConfig.load(path)
    assert str(caught.value).startswith(f"{path}{problem}") and "\n" not in str(caught.value)


def test_a_huge_value_is_quoted_short(tmp_path: Path):
    path = tmp_path / "long.yaml"
    path.write_text(f"conf: '{'9' * 60_000}'\n")
    with pytest.raises(InputError) as caught:
        TrackerConfig.load(path)
    assert len(str(caught.value)) < len(str(path)) + 200
    assert len(quote("x" * 10**7)) == QUOTE_CHARS + 3  # the value cut, then "..."
    nested: list = []
    for _ in range(9):
        nested = [nested] * 9
    assert len(quote(nested)) <= QUOTE_CHARS + 3


@pytest.mark.parametrize("model", [12345, 1.5, b"x"])
def test_a_model_of_no_accepted_kind_is_a_type_error(model):
    with pytest.raises(
        TypeError, match=f"a network module, a detector .* or None, not {type(model).__name__}"
    ):
        Tracker(model)


class NoDetector:
    has_recheck = False

    def __call__(self, frame_bgr: np.ndarray, templates=None):
        raise AssertionError("not called")


@pytest.mark.parametrize(
    "options, problem",
    [
        ({"conf": float("nan")}, "conf: must be a number in [0, 1), got nan"),
        ({"conf": 1}, "conf: must be a number in [0, 1), got 1"),
        ({"track_buffer": -1}, "track_buffer: must be an integer >= 0, got -1"),
        ({"fusion_eps": 2.0}, "fusion_eps: must be a number in [0, 1], got 2.0"),
        ({"nms_iou": 0}, "nms_iou: must be a number in (0, 1], got 0"),
        ({"conf": 0.3, "byte_low_threshold": 0.4}, "byte_low_threshold: must be below conf (0.3), got 0.4"),
    ],
)
def test_the_api_checks_what_the_command_line_checks(options: dict, problem: str):
    """The settings check themselves when made, whoever makes them: one check, one message."""
    with pytest.raises(InputError) as caught:
        Tracker(NoDetector(), TrackerConfig().replace(**options))
    assert str(caught.value) == problem

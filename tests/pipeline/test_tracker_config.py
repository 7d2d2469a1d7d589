"""`TrackerConfig`: the three settings of `cstrack.config` in one file, every default in one place,
YAML round trip, one-line errors for bad files and options, command-line options over the file,
and `tracker.yaml` beside the results."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from cstrack.backends.choice import build_detector
from cstrack.cli.main import build_parser, main
from cstrack.config import (
    TRACKER_SECTIONS,
    AssociationConfig,
    DetectorConfig,
    RecheckConfig,
    RuntimeConfig,
)
from cstrack.errors import InputError
from cstrack.models.inference import Detector
from cstrack.pipeline import end_to_end
from cstrack.pipeline.end_to_end import Tracker
from cstrack.pipeline.tracker_config import RULES, TRACKER_CONFIG_FILE, TrackerConfig, flag, resolve
from cstrack.tracking import DetectionResult
from cstrack.tracking.jde_tracker import JDETracker


def test_the_file_holds_every_field_of_the_three_settings_once() -> None:
    names = [item.name for kind in TRACKER_SECTIONS.values() for item in dataclasses.fields(kind)]
    assert [name for name, _ in TrackerConfig().items()] == names == list(RULES)
    assert len(set(names)) == len(names)  # one name, one field: the file and the options are flat
    assert [item.name for item in dataclasses.fields(TrackerConfig)] == list(TRACKER_SECTIONS)
    # What `--help` shows is each field's own default and help.
    track = build_parser()._subparsers._group_actions[0].choices["track"]
    helps = {action.dest: action.help for action in track._actions}
    for kind in TRACKER_SECTIONS.values():
        for item in dataclasses.fields(kind):
            assert helps[item.name].startswith(item.metadata["help"]), item.name
            if item.metadata["rule"].base not in ("bool", "size") and item.default is not None:
                assert f"(default: {item.default}" in helps[item.name], item.name


def test_the_classes_take_the_settings_whole() -> None:
    """The defaults live in `cstrack.config` only: the classes take the configs, no threshold."""
    defaults = {
        JDETracker: {"config": AssociationConfig()},
        Detector: {"config": DetectorConfig(), "recheck": RecheckConfig()},
        Tracker: {"config": TrackerConfig(), "runtime": RuntimeConfig()},
        build_detector: {"config": DetectorConfig(), "recheck": RecheckConfig(), "runtime": RuntimeConfig()},
    }
    for owner, expected in defaults.items():
        parameters = inspect.signature(owner).parameters
        assert {name: parameters[name].default for name in expected} == expected
        assert not set(parameters) & set(RULES), owner  # no field repeated as a keyword


def test_yaml_round_trip(tmp_path: Path) -> None:
    config = TrackerConfig().replace(
        track_buffer=60, conf=0.42, byte_low_threshold=0.1, recheck_starts_tracks=True
    )
    path = config.save(tmp_path / "sub" / "tracker.yaml", "first line\nsecond line")
    text = path.read_text()
    assert text.startswith("# first line\n# second line\nconf: 0.42\n")
    assert TrackerConfig.load(path) == config
    assert yaml.safe_load(text) == config.as_dict()
    assert not list(path.parent.glob(".*"))  # the atomic write left no temporary file


def test_a_partial_file_keeps_the_other_values_and_an_empty_one_is_the_base(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("track_buffer: 90\nconf: 1e-1  # YAML 1.1 reads this as a string\n")
    assert TrackerConfig.load(path) == TrackerConfig().replace(track_buffer=90, conf=0.1)
    base = TrackerConfig().replace(iou_match_thresh=0.8)
    assert TrackerConfig.load(path, base) == base.replace(track_buffer=90, conf=0.1)
    path.write_text("# nothing\n")
    assert TrackerConfig.load(path, base) == base


@pytest.mark.parametrize(
    "text, problem",
    [
        (
            "conf: 0.4\ntrack_bufer: 60\n",
            ":2: track_bufer: unknown key (did you mean track_buffer?) (the keys: `cstrack track --help`)",
        ),
        ("track_buffer: 1.5\n", ":1: track_buffer: must be an integer >= 0, got 1.5"),
        ("conf: high\n", ":1: conf: must be a number in [0, 1), got 'high'"),
        ("recheck_starts_tracks: 3\n", ":1: recheck_starts_tracks: must be true or false, got 3"),
        ("fusion_eps: true\n", ":1: fusion_eps: must be a number in [0, 1], got True"),
        ("conf: 2\n", ":1: conf: must be a number in [0, 1), got 2"),
        ("img_size: [100, 96]\n", ":1: img_size: must be null or two positive multiples of 32 up to 4096"),
        ("gate_thresh: .inf\n", ":1: gate_thresh: must be a finite number > 0, got inf"),
        ("track_buffer: -1\n", ":1: track_buffer: must be an integer >= 0, got -1"),
        ("conf: 0.3\nbyte_low_threshold: 0.4\n", ":2: byte_low_threshold: must be below conf (0.3), got 0.4"),
        ("conf: 0.3\nconf: 0.4\n", ":2: conf: given twice (first on line 1)"),
        ("- conf\n", ": must be a mapping of `field: value` lines, not a list"),
        ("conf: [0.3\n", ":2: is not valid YAML: expected ',' or ']'"),
        ("1: 2\n", ":1: keys must be field names, got '1'"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_line_and_key(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        TrackerConfig.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}{problem}"), message
    assert "\n" not in message


def test_a_missing_or_huge_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the tracker configuration"):
        TrackerConfig.load(tmp_path / "nope.yaml")
    (tmp_path / "big.yaml").write_text("#" * 70_000)
    with pytest.raises(InputError, match="not a tracker configuration"):
        TrackerConfig.load(tmp_path / "big.yaml")


def test_the_constructor_checks_its_values() -> None:
    with pytest.raises(InputError, match=r"^duplicate_iou: must be a number in \[0, 1\], got 1.5$"):
        AssociationConfig(duplicate_iou=1.5)
    with pytest.raises(InputError, match="unknown key"):
        TrackerConfig().replace(no_such=1)
    assert AssociationConfig(track_buffer=40.0).track_buffer == 40  # an integral float is an integer
    assert isinstance(AssociationConfig(gate_thresh=9).gate_thresh, float)  # YAML's 9 for a float field
    assert DetectorConfig(img_size=[320.0, 256]).img_size == (320, 256)  # a YAML list for a size
    with pytest.raises(InputError, match=r"^byte_low_threshold: must be below conf \(0.3\), got 0.4$"):
        TrackerConfig(DetectorConfig(conf=0.3), AssociationConfig(byte_low_threshold=0.4))


def test_options_override_the_file_and_name_themselves(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("track_buffer: 90\nbyte_low_threshold: 0.2\nconf: 0.6\n")
    config = resolve(path, {"track_buffer": 45, "conf": None, "byte_low_threshold": None})
    assert [config.value(name) for name in ("track_buffer", "conf", "byte_low_threshold")] == [45, 0.6, 0.2]
    assert resolve(path, {"byte_low_threshold": "off"}).association.byte_low_threshold is None
    with pytest.raises(InputError, match=r"^--track-buffer must be >= 0, got -1$"):
        resolve(path, {"track_buffer": -1})
    with pytest.raises(
        InputError, match=r"^--byte-low must be in \(0, 1\) and below --conf \(0.6\), got 0.7$"
    ):
        resolve(path, {"byte_low_threshold": 0.7})
    with pytest.raises(
        InputError, match=r"^byte_low_threshold: must be below conf \(0.1\), got 0.2 of .*t.yaml"
    ):
        resolve(path, {"conf": 0.1})  # the file's BYTE threshold is now above --conf
    with pytest.raises(
        InputError, match=r"^--img-size must be two positive multiples of 32 up to 4096, got 100 96$"
    ):
        resolve(path, {"img_size": [100, 96]})
    assert flag("byte_low_threshold") == "--byte-low" and flag("track_buffer") == "--track-buffer"


def test_the_config_reaches_the_cascade_and_the_detector() -> None:
    config = TrackerConfig().replace(
        embedding_match_thresh=0.3,
        track_buffer=60,
        byte_low_threshold=0.2,
        nms_iou=0.45,
        recheck_threshold=0.25,
    )
    tracker = Tracker("omc_n", config, RuntimeConfig(device="cpu"), frame_rate=15)
    assert tracker.config is config
    association = tracker.association
    assert (association.embedding_match_thresh, association.max_time_lost) == (0.3, 30)
    assert (association.byte_low_threshold, association.byte_high_threshold) == (0.2, 0.5)
    detector = tracker.detector
    assert (detector.config.nms_iou, detector.recheck_config.recheck_threshold) == (0.45, 0.25)
    assert detector.config.conf == 0.2  # BYTE on: the detector keeps the low-score boxes too


class NoDetections:
    has_recheck = False

    def __call__(self, frame_bgr, templates=None):
        empty = np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 8), np.float32)
        return DetectionResult(*empty, np.zeros(0, np.int64), *empty)


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(2):
        cv2.imwrite(str(folder / f"{k:03d}.jpg"), np.zeros((48, 64, 3), np.uint8))
    return folder


def test_track_writes_the_resolved_values_beside_the_results(
    capsys, monkeypatch, frames: Path, tmp_path: Path
) -> None:
    built = {}

    def fake_build_detector(model, config, recheck, runtime, *, arch=None):
        built.update(config=config, recheck=recheck)
        return NoDetections()

    monkeypatch.setattr(end_to_end, "build_detector", fake_build_detector)
    config_file = tmp_path / "mine.yaml"
    config_file.write_text("track_buffer: 90\nnms_iou: 0.5\nrecheck_starts_tracks: true\n")
    out = tmp_path / "out"
    code = main(
        ["track", str(frames), "--output", str(out), "--quiet", "--tracker-config", str(config_file),
         "--track-buffer", "45", "--no-recheck-starts-tracks", "--conf", "0.4", "--byte-low", "0.1"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    written = TrackerConfig.load(out / TRACKER_CONFIG_FILE)
    expected = TrackerConfig().replace(
        track_buffer=45, nms_iou=0.5, recheck_starts_tracks=False, conf=0.4, byte_low_threshold=0.1
    )
    assert written == expected
    assert built == {"config": DetectorConfig(conf=0.1, nms_iou=0.5), "recheck": RecheckConfig()}
    assert (out / TRACKER_CONFIG_FILE).read_text().startswith("# The tracker configuration of this run")


def test_track_refuses_a_bad_config_before_tracking(capsys, frames: Path, tmp_path: Path) -> None:
    config_file = tmp_path / "bad.yaml"
    config_file.write_text("track_buffer: lots\n")
    out = tmp_path / "out"
    code = main(["track", str(frames), "--output", str(out), "--quiet", "--tracker-config", str(config_file)])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        err == f"cstrack track: error: {config_file}:1: track_buffer: must be an integer >= 0, got 'lots'\n"
    )
    assert not out.exists()


def test_every_field_has_an_option_of_track() -> None:
    args = build_parser().parse_args(["track", "x"])
    for name in RULES:
        assert getattr(args, name) is None  # not given: the file decides

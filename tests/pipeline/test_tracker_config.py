"""`TrackerConfig`: defaults from the code that uses them, YAML round trip, one-line errors for bad
files and options, command-line options over the file, and `tracker.yaml` beside the results."""

from __future__ import annotations

import inspect
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from cstrack.cli.main import main
from cstrack.cli.options import tracker_fields
from cstrack.errors import InputError
from cstrack.models.inference import DetectionResult, Detector
from cstrack.pipeline import end_to_end
from cstrack.pipeline.end_to_end import Tracker
from cstrack.pipeline.tracker_config import CONFIG_FILE, RULES, SPEC, TrackerConfig, flag, resolve
from cstrack.tracking.jde_tracker import JDETracker

OWNERS = {
    "cstrack.pipeline.end_to_end:Tracker": Tracker,
    "cstrack.tracking.jde_tracker:JDETracker": JDETracker,
    "cstrack.models.inference:Detector": Detector,
}


def test_every_default_is_the_default_of_the_keyword_it_mirrors() -> None:
    config = TrackerConfig()
    assert [name for name, _ in config.items()] == list(SPEC)
    for name, (owner, keyword, *_) in SPEC.items():
        expected = inspect.signature(OWNERS[owner]).parameters[keyword].default
        assert getattr(config, name) == expected, name
    # What `--help` shows, read from source without importing torch, is the same.
    assert {name: default for name, (_, _, default) in tracker_fields().items()} == config.as_dict()


def test_every_threshold_of_the_cascade_is_a_field() -> None:
    not_thresholds = {
        "frame_rate",
        "kalman",
        "byte_high_threshold",
        "class_aware",
    }  # set by Tracker / not numbers
    keywords = set(inspect.signature(JDETracker).parameters) - not_thresholds
    mirrored = {keyword for _, keyword, *_ in SPEC.values()}  # byte_low_threshold: via Tracker
    assert keywords <= mirrored


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
    assert TrackerConfig.load(path) == TrackerConfig(track_buffer=90, conf=0.1)
    base = TrackerConfig(iou_match_thresh=0.8)
    assert TrackerConfig.load(path, base) == TrackerConfig(track_buffer=90, conf=0.1, iou_match_thresh=0.8)
    path.write_text("# nothing\n")
    assert TrackerConfig.load(path, base) == base


@pytest.mark.parametrize(
    "text, problem",
    [
        (
            "conf: 0.4\ntrack_bufer: 60\n",
            ":2: track_bufer: unknown key (did you mean track_buffer?); the keys are conf, ",
        ),
        ("track_buffer: 1.5\n", ":1: track_buffer: must be an integer >= 0, got 1.5"),
        ("conf: high\n", ":1: conf: must be a number in (0, 1), got 'high'"),
        ("recheck_starts_tracks: 3\n", ":1: recheck_starts_tracks: must be true or false, got 3"),
        ("fusion_eps: true\n", ":1: fusion_eps: must be a number in [0, 1], got True"),
        ("conf: 2\n", ":1: conf: must be a number in (0, 1), got 2"),
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
        TrackerConfig(duplicate_iou=1.5)
    with pytest.raises(InputError, match="unknown key"):
        TrackerConfig().replace(no_such=1)
    assert TrackerConfig(track_buffer=40.0).track_buffer == 40  # an integral float is an integer
    assert isinstance(TrackerConfig(gate_thresh=9).gate_thresh, float)  # YAML's 9 for a float field


def test_options_override_the_file_and_name_themselves(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("track_buffer: 90\nbyte_low_threshold: 0.2\nconf: 0.6\n")
    config = resolve(path, {"track_buffer": 45, "conf": None, "byte_low_threshold": None})
    assert (config.track_buffer, config.conf, config.byte_low_threshold) == (45, 0.6, 0.2)
    assert resolve(path, {"byte_low_threshold": "off"}).byte_low_threshold is None
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
    assert flag("byte_low_threshold") == "--byte-low" and flag("track_buffer") == "--track-buffer"


def test_from_config_reaches_the_cascade_and_the_detector() -> None:
    config = TrackerConfig(
        embedding_match_thresh=0.3,
        track_buffer=60,
        byte_low_threshold=0.2,
        nms_iou=0.45,
        recheck_threshold=0.25,
    )
    tracker = Tracker.from_config("omc_n", config, device="cpu", frame_rate=15)
    assert tracker.config is config
    association = tracker.association
    assert (association.embedding_match_thresh, association.max_time_lost) == (0.3, 30)
    assert (association.byte_low_threshold, association.byte_high_threshold) == (0.2, 0.5)
    detector = tracker.detector
    assert (detector.iou_threshold, detector.recheck_threshold, detector.score_threshold) == (0.45, 0.25, 0.2)
    assert Tracker("omc_n", device="cpu").config is None


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
    detector_options = {}

    def fake_build_detector(model, arch, img_size, device, half, backend, conf, providers=None, **options):
        detector_options.update(options, conf=conf)
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
    written = TrackerConfig.load(out / CONFIG_FILE)
    expected = TrackerConfig(
        track_buffer=45, nms_iou=0.5, recheck_starts_tracks=False, conf=0.4, byte_low_threshold=0.1
    )
    assert written == expected
    assert detector_options == {"iou_threshold": 0.5, "recheck_threshold": 0.3, "conf": 0.1}
    assert (out / CONFIG_FILE).read_text().startswith("# The tracker configuration of this run")


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
    from cstrack.cli.main import build_parser

    args = build_parser().parse_args(["track", "x"])
    for name in RULES:
        assert getattr(args, flag(name)[2:].replace("-", "_")) is None  # not given: the file decides

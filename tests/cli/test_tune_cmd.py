"""`cstrack tune` and `cstrack.pipeline.tuning` on a tiny hand-made sequence with an oracle detector.

The oracle gives every frame's ground-truth boxes (jittered, with scores spread around the
default threshold, identity embeddings) and a false positive, keeping those above its own score
threshold as a `Detector` would. The base configuration is enqueued as trial 0, so the best
trial's score is at least the base's by construction; the tests check that it holds, that the
cached trial 0 scores exactly what `track` scores, and that the YAML written loads back.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.cli.main import main
from cstrack.data.sources import open_sources
from cstrack.errors import InputError
from cstrack.pipeline.end_to_end import Tracker
from cstrack.pipeline.runner import track
from cstrack.pipeline.tracker_config import TrackerConfig
from cstrack.pipeline.tuning import (
    cache_detections,
    load_cache,
    parse_space,
    save_cache,
    score_config,
)
from cstrack.tracking import DetectionResult

FRAMES, PEOPLE, EMBEDDING = 30, 3, 16


@pytest.fixture(scope="module")
def sequence(tmp_path_factory) -> Path:
    """SEQ-A: 3 people walking across a 320x240 view, MOT17 gt, black frames (the oracle detects)."""
    root = tmp_path_factory.mktemp("tune") / "SEQ-A"
    (root / "img1").mkdir(parents=True)
    (root / "gt").mkdir()
    image = np.zeros((240, 320, 3), np.uint8)
    rows = []
    for frame in range(1, FRAMES + 1):
        cv2.imwrite(str(root / "img1" / f"{frame:06d}.jpg"), image)
        for person in range(PEOPLE):
            x = 20 + 8 * frame if person != 1 else 280 - 8 * frame
            rows.append(f"{frame},{person + 1},{x},{40 + 50 * person},30,70,1,1,1")
    (root / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    (root / "seqinfo.ini").write_text(
        f"[Sequence]\nname=SEQ-A\nimDir=img1\nframeRate=10\nseqLength={FRAMES}\nimWidth=320\nimHeight=240\nimExt=.jpg\n"
    )
    return root


class OracleDetector:
    """Ground truth with noise: deterministic per frame (seeded), thresholded at `conf` on call.

    With a `recheck_threshold` it also has a "re-check": the true boxes again with heat scores,
    whatever the templates, so that cached and live re-check candidates are the same.
    """

    def __init__(self, sequence: Path, conf: float = 0.1, recheck_threshold: float | None = None):
        self.conf = conf
        self.recheck_threshold = recheck_threshold
        self.has_recheck = recheck_threshold is not None
        gt = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",")
        rng = np.random.default_rng(7)
        identity = rng.normal(size=(PEOPLE + 1, EMBEDDING)).astype(np.float32)
        self.frames = []
        for frame in range(1, FRAMES + 1):
            rows = gt[gt[:, 0] == frame]
            truth = np.column_stack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]])
            false = rng.uniform(0, 200, 2)
            boxes = np.vstack([truth + rng.normal(0, 2, truth.shape), [*false, *(false + [30, 70])]])
            scores = np.append(rng.uniform(0.3, 0.95, len(rows)), rng.uniform(0.15, 0.45))
            ids = np.append(rows[:, 1].astype(int), 0)
            embeddings = identity[ids] + rng.normal(0, 0.3, (len(ids), EMBEDDING)).astype(np.float32)
            embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
            heat = rng.uniform(0.05, 0.9, len(rows))
            self.frames.append(
                (boxes.astype(np.float32), scores.astype(np.float32), embeddings,
                 (truth + 3).astype(np.float32), heat.astype(np.float32), embeddings[:-1])
            )  # fmt: skip
        self.position = 0

    def __call__(self, frame_bgr: np.ndarray, templates=None) -> DetectionResult:
        boxes, scores, embeddings, trans_boxes, heat, trans_embeddings = self.frames[self.position]
        self.position += 1
        keep = scores > self.conf
        peaks = heat > self.recheck_threshold if templates is not None else np.zeros(len(heat), bool)
        return DetectionResult(
            boxes[keep],
            scores[keep],
            embeddings[keep],
            np.zeros(int(keep.sum()), np.int64),
            trans_boxes[peaks],
            heat[peaks],
            trans_embeddings[peaks],
        )


def test_with_recheck_the_cached_candidates_are_thresholded_as_live_ones(sequence: Path) -> None:
    base = TrackerConfig()
    oracle = OracleDetector(sequence, conf=0.1, recheck_threshold=0.1)
    cache = cache_detections(open_sources(sequence), oracle, base, recheck=True, progress=False)
    assert cache.recheck and any(len(result.trans_scores) for result in cache.sequences[0].results)
    for config in (base, base.replace(recheck_threshold=0.5, fusion_eps=0.2, recheck_starts_tracks=True)):
        cached = score_config(cache, config)["combined"]
        live_oracle = OracleDetector(
            sequence, conf=config.detector.conf, recheck_threshold=config.recheck.recheck_threshold
        )
        live = track(sequence, Tracker(live_oracle, config), evaluate=True, progress=False)
        assert {key: live["SEQ-A"].scores[key] for key in cached} == cached


def test_a_cache_without_recheck_does_not_serve_a_model_that_has_it(sequence: Path, tmp_path: Path) -> None:
    sources = open_sources(sequence)
    oracle = OracleDetector(sequence, conf=0.1, recheck_threshold=0.1)
    path = save_cache(cache_detections(sources, oracle, recheck=False, progress=False), tmp_path / "c.npz")
    assert load_cache(path, sources, {}, {"recheck_threshold": 0.1}) is None
    without = load_cache(path, sources, {})  # tuning without re-check: it serves
    assert without is not None and not without.recheck


def test_the_cached_base_trial_scores_what_track_scores(sequence: Path) -> None:
    base = TrackerConfig()
    cache = cache_detections(open_sources(sequence), OracleDetector(sequence, conf=0.1), base, progress=False)
    for config in (base, base.replace(conf=0.35, track_buffer=10)):
        cached = score_config(cache, config)["combined"]
        tracker = Tracker(OracleDetector(sequence, conf=config.detector.conf), config)
        live = track(sequence, tracker, evaluate=True, progress=False)["SEQ-A"].scores
        assert {key: live[key] for key in cached} == cached


def test_select_cuts_every_field_the_result_has() -> None:
    result = DetectionResult(
        np.zeros((3, 4)), np.array([0.2, 0.6, 0.9]), np.zeros((3, 2)), np.zeros(3, np.int64),
        np.zeros((2, 4)), np.array([0.1, 0.8]), np.zeros((2, 2)), classes=np.array([0, 1, 2]),
    )  # fmt: skip
    kept = result.select(result.scores > 0.5, result.trans_scores > 0.5)
    assert kept.classes.tolist() == [1, 2] and kept.levels.shape == (2,)
    assert kept.trans_scores.tolist() == [0.8] and kept.trans_embeddings.shape == (1, 2)
    for item in dataclasses.fields(DetectionResult):
        value = getattr(kept, item.name)
        assert value is None or len(value) == (1 if item.name.startswith("trans_") else 2), item.name


def test_the_cache_file_round_trips_and_serves_only_what_it_holds(sequence: Path, tmp_path: Path) -> None:
    sources = open_sources(sequence)
    key = {"model": "oracle", "conf": 0.1}
    cache = cache_detections(sources, OracleDetector(sequence), progress=False, key=key)
    path = save_cache(cache, tmp_path / "cache.npz")
    loaded = load_cache(path, sources, key)
    assert loaded is not None
    assert loaded.sequences[0].frame_numbers == cache.sequences[0].frame_numbers
    for saved, read in zip(cache.sequences[0].results, loaded.sequences[0].results):
        for item in dataclasses.fields(DetectionResult):
            a, b = getattr(saved, item.name), getattr(read, item.name)
            assert (a is None and b is None) or np.array_equal(a, b)
    assert score_config(loaded, TrackerConfig()) == score_config(cache, TrackerConfig())
    assert load_cache(path, sources, {"model": "oracle", "conf": 0.3}) is not None  # made lower: serves
    assert load_cache(path, sources, {"model": "oracle", "conf": 0.05}) is None  # lacks boxes under 0.1
    assert load_cache(path, sources, {"model": "another", "conf": 0.1}) is None
    # Asked with re-check: the oracle has none, so the cache without candidates is what it would give.
    with_recheck = load_cache(path, sources, key, {"recheck_threshold": 0.3})
    assert with_recheck is not None and not with_recheck.recheck
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read the detection cache"):
        load_cache(tmp_path / "bad.npz", sources, {})


def test_the_search_space_is_checked() -> None:
    names = [param.name for param in parse_space(None, recheck=False)]
    assert "conf" in names and "fusion_eps" not in names and "nms_iou" not in names
    assert "img_size" not in names and "class_aware" not in names
    (param,) = parse_space("track_buffer=5:20")
    assert (param.kind, param.low, param.high) == ("int", 5, 20)
    for text, problem in [
        ("nms_iou", "cannot be tuned over cached detections"),
        ("img_size", "each trial would need the network again"),
        ("conff", "unknown field 'conff'"),
        ("conf=0.5:1", "give LOW:HIGH"),
        ("conf=0.6:0.4", "give LOW:HIGH"),
        ("recheck_starts_tracks=0:1", "give it without a range"),
    ]:
        with pytest.raises(InputError, match=problem):
            parse_space(text)
    with pytest.raises(InputError, match="re-check threshold"):
        parse_space("fusion_eps", recheck=False)


def test_tune_writes_a_best_config_at_least_as_good_as_the_default(
    capsys, monkeypatch, sequence: Path, tmp_path: Path
) -> None:
    pytest.importorskip("optuna")
    from cstrack.backends import choice

    built = {}

    def oracle_detector(model, config, recheck, runtime, *, arch=None):
        built.update(conf=config.conf, nms_iou=config.nms_iou, recheck_threshold=recheck.recheck_threshold)
        return OracleDetector(sequence, config.conf)

    monkeypatch.setattr(choice, "build_detector", oracle_detector)
    out = tmp_path / "tuned"
    code = main(
        ["tune", str(sequence), "--trials", "4", "--output", str(out), "--quiet", "--cache", str(tmp_path / "c.npz"),
         "--params", "conf,track_buffer=5:40,embedding_match_thresh,byte_low_threshold"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert built == {"conf": 0.1, "nms_iou": 0.6, "recheck_threshold": 0.3}  # the lowest of the space
    assert "(base)" in printed and "best (trial" in printed
    best = TrackerConfig.load(out / "best.yaml")
    with (out / "trials.csv").open() as stream:
        trials = list(csv.DictReader(stream))
    assert len(trials) == 4 and trials[0]["trial"] == "0"
    assert float(trials[0]["conf"]) == 0.5 and trials[0]["byte_low_threshold"] == ""  # trial 0: defaults
    scores = [float(trial["HOTA"]) for trial in trials if trial["state"] == "COMPLETE"]
    assert max(scores) >= scores[0]
    rescored = score_config(
        cache_detections(open_sources(sequence), OracleDetector(sequence), progress=False), best
    )["combined"]["HOTA"]
    assert rescored == pytest.approx(max(scores)) and rescored >= scores[0]
    # The same command again reads the detections from the cache file.
    assert main(["tune", str(sequence), "--trials", "1", "--output", str(out), "--quiet", "--cache", str(tmp_path / "c.npz"),
                 "--params", "conf,track_buffer=5:40,embedding_match_thresh,byte_low_threshold"]) == 0  # fmt: skip
    assert "detections read from" in capsys.readouterr().out


def test_tune_without_optuna_says_what_to_install(
    capsys, monkeypatch, sequence: Path, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(["tune", str(sequence), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.rstrip().endswith("pip install 'cstrack[tune]'")
    assert not (tmp_path / "out").exists()


def test_tune_refuses_sources_without_ground_truth(capsys, tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "1.jpg"), np.zeros((48, 64, 3), np.uint8))
    assert main(["tune", str(folder), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    assert "cannot evaluate: not a MOTChallenge sequence" in capsys.readouterr().err


@pytest.mark.parametrize(
    "case", ["cache folder", "cache under a file", "cache over the config", "seed", "best.yaml"]
)
def test_tune_checks_every_option_before_any_work(
    capsys, monkeypatch, sequence: Path, tmp_path: Path, case: str
) -> None:
    """A --cache that is a folder used to fail after the detection pass, a bad --seed or a folder
    named best.yaml after the whole search."""
    import cstrack.data.sources
    from cstrack.pipeline import tuning

    def work(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(tuning, "require_optuna", lambda: None)  # with or without Optuna here
    monkeypatch.setattr(cstrack.data.sources, "open_sources", work)
    folder, file, config, out = (
        tmp_path / "folder",
        tmp_path / "file.txt",
        tmp_path / "t.yaml",
        tmp_path / "out",
    )
    folder.mkdir()
    file.write_text("")
    config.write_text("conf: 0.4\n")
    options, fragments = {
        "cache folder": (
            ["--cache", folder],
            [str(folder), "cannot write the detection cache here: it is a folder"],
        ),
        "cache under a file": (["--cache", file / "c.npz"], [f"{file} is a file, not a folder"]),
        "cache over the config": (
            ["--cache", config, "--tracker-config", config],
            ["the detection cache would overwrite the input"],
        ),
        "seed": (["--seed", "-1"], ["--seed must be in 0..4294967295, got -1"]),
        "best.yaml": ([], [str(out / "best.yaml"), "cannot write best.yaml here: it is a folder"]),
    }[case]
    if case == "best.yaml":
        (out / "best.yaml").mkdir(parents=True)
    assert main(["tune", str(sequence), "--output", str(out), "--quiet", *map(str, options)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    assert config.read_text() == "conf: 0.4\n"

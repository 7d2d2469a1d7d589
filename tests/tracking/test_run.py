"""End-to-end tracking of a tiny synthetic sequence: outputs, ids, video, scores, bad inputs.

An oracle detector (ground-truth boxes with identity embeddings) makes the tracks meaningful
without a trained network; one test runs a real (randomly initialised) OMC network end to end.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data.mot import read_results
from cstrack.data.sources import FrameRange
from cstrack.data.synth import SynthConfig, generate_sequence
from cstrack.models.inference import DetectionResult
from cstrack.tracking.online import Tracker
from cstrack.tracking.run import track


@pytest.fixture(scope="module")
def sequence(tmp_path_factory) -> Path:
    config = SynthConfig(frames=24, width=320, height=240, people=4, fake_background=0)
    return generate_sequence(tmp_path_factory.mktemp("synth"), config, seed=3)


class OracleDetector:
    """Detections read from the sequence's own gt, with a fixed unit vector per identity."""

    has_recheck = False

    def __init__(self, sequence: Path):
        self.gt = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",")
        self.frame = 0
        rng = np.random.default_rng(0)
        self.identity = rng.normal(size=(int(self.gt[:, 1].max()) + 1, 16)).astype(np.float32)
        self.identity /= np.linalg.norm(self.identity, axis=1, keepdims=True)

    def __call__(self, frame_bgr: np.ndarray, templates=None) -> DetectionResult:
        self.frame += 1
        rows = self.gt[(self.gt[:, 0] == self.frame) & (self.gt[:, 8] > 0.3)]
        boxes = np.column_stack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]]).astype(np.float32)
        empty = np.zeros((0, 4), np.float32)
        return DetectionResult(
            boxes,
            np.full(len(rows), 0.9, np.float32),
            self.identity[rows[:, 1].astype(int)],
            np.zeros(len(rows), np.int64),
            empty,
            np.zeros(0, np.float32),
            np.zeros((0, 16), np.float32),
        )


def test_outputs_are_well_formed_and_agree(sequence: Path, tmp_path: Path):
    tracker = Tracker(OracleDetector(sequence), frame_rate=25)
    runs = track(
        sequence,
        tracker,
        output=tmp_path,
        formats=("mot", "json"),
        save_video=True,
        evaluate=True,
        progress=False,
    )
    run = runs[sequence.name]
    assert set(run.files) == {"mot", "json", "video", "scores"}
    mot = read_results(run.files["mot"])
    lines = [json.loads(line) for line in run.files["json"].read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(1, 25))
    from_json = np.array(
        [
            [
                f["frame"],
                t["id"],
                t["box_xyxy"][0],
                t["box_xyxy"][1],
                t["box_xyxy"][2] - t["box_xyxy"][0],
                t["box_xyxy"][3] - t["box_xyxy"][1],
            ]
            for f in lines
            for t in f["tracks"]
        ]
    )
    order = np.lexsort((from_json[:, 1], from_json[:, 0]))
    np.testing.assert_allclose(mot[:, :6], from_json[order], atol=0.011)
    video = cv2.VideoCapture(str(run.files["video"]))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 24
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (320, 240)
    video.release()
    scores = json.loads(run.files["scores"].read_text())
    assert scores["benchmark"] == "MOT17" and scores["MOTA"] > 0.8 and scores["IDF1"] > 0.9
    assert not list(tmp_path.glob(".*tmp*"))


def test_ids_are_stable_across_frames(sequence: Path):
    runs = track(sequence, Tracker(OracleDetector(sequence), frame_rate=25), progress=False)
    table = runs[sequence.name].results_table()
    gt = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",")
    # Each track id follows one ground-truth identity: match rows by frame and box corner.
    owners: dict[int, set[int]] = {}
    for frame, track_id, x, y, *_ in table:
        here = gt[gt[:, 0] == frame]
        nearest = here[np.argmin(np.abs(here[:, 2] - x) + np.abs(here[:, 3] - y)), 1]
        owners.setdefault(int(track_id), set()).add(int(nearest))
    assert all(len(identities) == 1 for identities in owners.values())


def test_frame_range_and_evaluation_window(sequence: Path):
    runs = track(
        sequence,
        Tracker(OracleDetector(sequence), frame_rate=25),
        frames=FrameRange(5, 12),
        evaluate=True,
        progress=False,
    )
    run = runs[sequence.name]
    assert sorted(run.frames) == list(range(5, 13))
    assert run.scores["frames"] == [5, 12]


def test_real_network_end_to_end(sequence: Path, tmp_path: Path):
    tracker = Tracker("omc_n", img_size=(320, 256), device="cpu", conf=0.3)
    runs = track(
        sequence, tracker, output=tmp_path, formats=("mot",), frames=FrameRange(1, 3), progress=False
    )
    assert runs[sequence.name].files["mot"].is_file()
    assert tracker.timing.frames == 3 and tracker.timing.model > 0


class FarRecheckDetector:
    """One steady detection, and with templates a re-check candidate far from every track."""

    has_recheck = True

    def __call__(self, frame_bgr: np.ndarray, templates: np.ndarray | None) -> DetectionResult:
        emb = np.eye(2, 16, dtype=np.float32)
        basic = (np.array([[10, 10, 40, 90]], np.float32), np.array([0.9], np.float32), emb[:1])
        if templates is None:
            trans = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 16), np.float32))
        else:
            trans = (np.array([[200, 10, 230, 90]], np.float32), np.array([0.95], np.float32), emb[1:])
        return DetectionResult(*basic, np.zeros(1, np.int64), *trans)


@pytest.mark.parametrize("starts", [False, True])
def test_recheck_candidates_start_tracks_only_when_asked(starts: bool) -> None:
    tracker = Tracker(FarRecheckDetector(), recheck_starts_tracks=starts)
    frame = np.zeros((100, 300, 3), np.uint8)
    for _ in range(3):
        tracker.update(frame)
    started = {t.track_id for t in tracker.association.tracks()} - {1}
    assert bool(started) == starts


class ScriptedDetector:
    """Two people; person 0 misses frame 3 and comes back in frame 4 only as a re-check candidate
    (heat 0.35), person 1's score dips to 0.3 in frames 5-6. Boxes below `threshold` are dropped,
    as the real detector does."""

    has_recheck = True

    def __init__(self, threshold: float):
        self.threshold, self.frame = threshold, 0

    def __call__(self, frame_bgr: np.ndarray, templates: np.ndarray | None) -> DetectionResult:
        self.frame += 1
        emb = np.eye(2, 16, dtype=np.float32)
        boxes = np.array([[10, 10, 40, 90], [200, 10, 230, 90]], np.float32)
        scores = np.array([0.9 if self.frame not in (3, 4) else 0.0, 0.3 if self.frame in (5, 6) else 0.9])
        keep = scores >= self.threshold
        trans = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), emb[:0])
        if templates is not None and self.frame == 4:
            trans = (boxes[:1], np.array([0.35], np.float32), emb[:1])
        return DetectionResult(
            boxes[keep], scores[keep].astype(np.float32), emb[keep], np.zeros(2)[keep], *trans
        )


def test_byte_option_passes_through_tracker_and_keeps_recheck_candidates_in_the_cascade():
    frame = np.zeros((100, 300, 3), np.uint8)
    seen = {}
    for byte in (None, 0.1):
        tracker = Tracker(ScriptedDetector(threshold=byte or 0.5), byte_low_threshold=byte)
        seen[byte] = [sorted(t.track_id for t in tracker.update(frame)) for _ in range(8)]
    # Frame 4: the re-check candidate re-finds lost track 1 through the cascade, BYTE on or off.
    assert seen[None][3] == seen[0.1][3] == [1, 2]
    # Frames 5-6: only BYTE keeps track 2 through its low-score boxes.
    assert seen[None][4:6] == [[1], [1]] and seen[0.1][4:6] == [[1, 2], [1, 2]]
    assert seen[None][6:] == seen[0.1][6:] == [[1, 2], [1, 2]]
    tracker.reset(frame_rate=25)
    assert tracker.association.byte_low_threshold == 0.1


def test_byte_option_lowers_the_built_detectors_thresholds():
    tracker = Tracker("omc_n", img_size=(320, 256), device="cpu", conf=0.4, byte_low_threshold=0.1)
    assert (tracker.detector.obj_threshold, tracker.detector.score_threshold) == (0.1, 0.1)
    assert (tracker.association.byte_low_threshold, tracker.association.byte_high_threshold) == (0.1, 0.4)
    with pytest.raises(ValueError, match="byte_low_threshold"):
        Tracker(ScriptedDetector(0.5), conf=0.4, byte_low_threshold=0.4)

"""End-to-end tracking of a tiny synthetic sequence: outputs, ids, video, scores, bad inputs.

An oracle detector (ground-truth boxes with identity embeddings) makes the tracks meaningful
without a trained network; one test runs a real (randomly initialised) OMC network end to end.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.config import RuntimeConfig
from cstrack.data.mot import read_results
from cstrack.data.sources import FrameRange
from cstrack.data.synth.scene import SynthConfig
from cstrack.data.synth.write import generate_sequence
from cstrack.errors import InputError
from cstrack.pipeline.end_to_end import Tracker
from cstrack.pipeline.runner import track
from cstrack.pipeline.tracker_config import TrackerConfig
from cstrack.tracking import DetectionResult


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


@pytest.mark.parametrize("frames", [FrameRange(5, 12), "5-12"])  # the string --frames takes too
def test_frame_range_and_evaluation_window(sequence: Path, frames: FrameRange | str):
    runs = track(
        sequence,
        Tracker(OracleDetector(sequence), frame_rate=25),
        frames=frames,
        evaluate=True,
        progress=False,
    )
    run = runs[sequence.name]
    assert sorted(run.frames) == list(range(5, 13))
    assert run.scores["frames"] == [5, 12]


def test_real_network_end_to_end(sequence: Path, tmp_path: Path):
    config = TrackerConfig().replace(img_size=(320, 256), conf=0.3)
    tracker = Tracker("omc_n", config, RuntimeConfig(device="cpu"))
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
    tracker = Tracker(FarRecheckDetector(), TrackerConfig().replace(recheck_starts_tracks=starts))
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
        config = TrackerConfig().replace(byte_low_threshold=byte)
        tracker = Tracker(ScriptedDetector(threshold=byte or 0.5), config)
        seen[byte] = [sorted(t.track_id for t in tracker.update(frame)) for _ in range(8)]
    # Frame 4: the re-check candidate re-finds lost track 1 through the cascade, BYTE on or off.
    assert seen[None][3] == seen[0.1][3] == [1, 2]
    # Frames 5-6: only BYTE keeps track 2 through its low-score boxes.
    assert seen[None][4:6] == [[1], [1]] and seen[0.1][4:6] == [[1, 2], [1, 2]]
    assert seen[None][6:] == seen[0.1][6:] == [[1, 2], [1, 2]]
    tracker.reset(frame_rate=25)
    assert tracker.association.byte_low_threshold == 0.1


def test_byte_option_lowers_the_built_detectors_thresholds():
    config = TrackerConfig().replace(img_size=(320, 256), conf=0.4, byte_low_threshold=0.1)
    tracker = Tracker("omc_n", config, RuntimeConfig(device="cpu"))
    assert tracker.detector.config.conf == 0.1
    assert (tracker.association.byte_low_threshold, tracker.association.byte_high_threshold) == (0.1, 0.4)
    with pytest.raises(ValueError, match="byte_low_threshold"):
        TrackerConfig().replace(conf=0.4, byte_low_threshold=0.4)


class WatchingDetector(OracleDetector):
    """The oracle, which also records what the output folder's temporary files hold at each frame
    and presses Ctrl-C at frame `interrupt_at`."""

    def __init__(self, sequence: Path, out_dir: Path, interrupt_at: int | None = None):
        super().__init__(sequence)
        self.out_dir, self.interrupt_at = out_dir, interrupt_at
        self.seen: list[tuple[int, int]] = []

    def __call__(self, frame_bgr: np.ndarray, templates=None) -> DetectionResult:
        (jsonl,) = self.out_dir.glob(f".{SEQUENCE_NAME}.jsonl.*.tmp")
        (mot,) = self.out_dir.glob(f".{SEQUENCE_NAME}.txt.*.tmp")
        frames_in_mot = {int(line.split(",")[0]) for line in mot.read_text().splitlines()}
        self.seen.append((len(jsonl.read_text().splitlines()), len(frames_in_mot)))
        if self.frame + 1 == self.interrupt_at:
            raise KeyboardInterrupt
        return super().__call__(frame_bgr, templates)


SEQUENCE_NAME = "SYNTH-01"


def test_rows_are_streamed_frame_by_frame_and_not_kept_in_memory(sequence: Path, tmp_path: Path):
    assert sequence.name == SEQUENCE_NAME
    detector = WatchingDetector(sequence, tmp_path)
    runs = track(sequence, Tracker(detector, frame_rate=25), tmp_path, ("mot", "json"), progress=False)
    # Before frame k is tracked, the temporary files already hold frames 1..k-1.
    assert detector.seen == [(k, k) for k in range(24)]
    run = runs[SEQUENCE_NAME]
    assert run.frames == {} and run.tracked == 24
    with pytest.raises(ValueError, match="went to files"):
        run.results_table()
    assert len(read_results(run.files["mot"])) > 24 and not list(tmp_path.glob(".*"))


def test_ctrl_c_keeps_the_earlier_result_and_writes_a_partial_one(sequence: Path, tmp_path: Path, caplog):
    track(
        sequence, Tracker(OracleDetector(sequence), frame_rate=25), tmp_path, ("mot", "json"), progress=False
    )
    complete = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert set(complete) == {f"{SEQUENCE_NAME}.txt", f"{SEQUENCE_NAME}.jsonl", "tracker.yaml"}
    caplog.clear()
    detector = WatchingDetector(sequence, tmp_path, interrupt_at=9)
    runs = track(
        sequence, Tracker(detector, frame_rate=25), tmp_path, ("mot", "json"), save_video=True, progress=False
    )
    run = runs[SEQUENCE_NAME]
    assert run.interrupted and run.tracked == 8
    assert {name: (tmp_path / name).read_bytes() for name in complete} == complete
    partial = {
        kind: tmp_path / f"{SEQUENCE_NAME}.partial{suffix}"
        for kind, suffix in [("mot", ".txt"), ("json", ".jsonl"), ("video", ".mp4")]
    }
    assert run.files == partial
    assert complete[f"{SEQUENCE_NAME}.txt"].startswith(partial["mot"].read_bytes())
    assert [json.loads(line)["frame"] for line in partial["json"].read_text().splitlines()] == list(
        range(1, 9)
    )
    video = cv2.VideoCapture(str(partial["video"]))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    video.release()
    err = caplog.text  # the library logs it; the command line prints it on stderr
    assert f"8 frames of {SEQUENCE_NAME} tracked, written to {SEQUENCE_NAME}.partial.txt" in err
    assert f"the earlier complete {SEQUENCE_NAME}.txt, {SEQUENCE_NAME}.jsonl kept as it was" in err
    assert not list(tmp_path.glob(".*"))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temporaries_of_killed_runs_are_recovered_or_removed(sequence: Path, tmp_path: Path, caplog):
    pid = dead_pid()
    stale_mot = tmp_path / f".{SEQUENCE_NAME}.txt.{pid}.0123abcd.tmp"
    stale_mot.write_text(
        "1,1,2.00,3.00,4.00,5.00,0.9000,-1,-1,-1\n2,1,2.50,3.00,4.00,5.00,0.9000,-1,-1,-1\n2,2,9"
    )
    stale_json = tmp_path / f".other.jsonl.{pid}.0123abcd.tmp"
    stale_json.write_text("")
    stale_video = tmp_path / f".{SEQUENCE_NAME}.mp4.{pid}.0123abcd.tmp.mp4"
    stale_video.write_bytes(b"\x00" * 44)
    live = tmp_path / f".{SEQUENCE_NAME}.txt.{os.getpid()}.89abcdef.tmp"  # a run still going
    live.write_text("1,1,2,3,4,5,1,-1,-1,-1\n")
    unrelated = tmp_path / f".notes.md.{pid}.0123abcd.tmp"
    unrelated.write_text("not ours")

    def track_three_frames() -> None:
        tracker = Tracker(OracleDetector(sequence), frame_rate=25)
        track(sequence, tracker, tmp_path, frames=FrameRange(1, 3), progress=False)

    with caplog.at_level(logging.WARNING, logger="cstrack.pipeline.outputs"):
        track_three_frames()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"{SEQUENCE_NAME}.txt", f"{SEQUENCE_NAME}.partial.txt", "tracker.yaml", live.name, unrelated.name]
    )
    partial = tmp_path / f"{SEQUENCE_NAME}.partial.txt"
    assert read_results(partial)[:, :2].tolist() == [[1, 1], [2, 1]]  # the cut last row is dropped
    assert f"recovered the frames that killed run {pid} had tracked for {SEQUENCE_NAME}.txt" in caplog.text
    # A partial file newer than a stale temporary is not replaced by it.
    stale_mot.write_text("7,1,2,3,4,5,1,-1,-1,-1\n")
    os.utime(stale_mot, (1, 1))
    track_three_frames()
    assert not stale_mot.exists() and read_results(partial)[:, :2].tolist() == [[1, 1], [2, 1]]


def test_the_output_folder_and_ground_truth_are_checked_before_the_first_frame(
    sequence: Path, tmp_path: Path
):
    class Refusing:
        has_recheck = False

        def __call__(self, frame_bgr, templates=None):
            raise AssertionError("a frame was tracked")

    a_file = tmp_path / "results"
    a_file.write_text("keep me")
    for output in (a_file, a_file / "sub"):
        with pytest.raises(InputError, match="cannot write results here") as error:
            track(sequence, Tracker(Refusing()), output, progress=False)
        assert error.value.path == str(output)
    assert a_file.read_text() == "keep me"
    no_gt = tmp_path / "frames"
    no_gt.mkdir()
    cv2.imwrite(str(no_gt / "1.jpg"), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(InputError, match="cannot evaluate: not a MOTChallenge sequence"):
        track(no_gt, Tracker(Refusing()), tmp_path / "out", evaluate=True, progress=False)
    with pytest.raises(InputError, match="min_area=nan"):
        track(sequence, Tracker(Refusing()), min_area=float("nan"), progress=False)
    with pytest.raises(InputError, match="no output format"):
        track(sequence, Tracker(Refusing()), formats=(), progress=False)
    assert not (tmp_path / "out").exists()


def test_eval_of_the_written_window_scores_what_track_eval_scored(sequence: Path, tmp_path: Path):
    """`cstrack eval --frames A-B` of the file `track --frames A-B --eval` wrote: the same scores,
    to the last bit; without the window, the frames before it count as misses."""
    from cstrack.evaluation import SCORE_FIELDS, evaluate

    detector = OracleDetector(sequence)
    detector.frame = 4  # the oracle reads the gt of the frames tracked: 5-16
    runs = track(
        sequence,
        Tracker(detector, frame_rate=25),
        tmp_path,
        frames=FrameRange(5, 16),
        evaluate=True,
        progress=False,
    )
    tracked = runs[SEQUENCE_NAME].scores
    assert tracked["benchmark"] == "MOT17" and tracked["frames"] == [5, 16] and tracked["HOTA"] > 0.5
    scored = evaluate(sequence, tmp_path, benchmark="MOT17", frames="5-16")["sequences"][SEQUENCE_NAME]
    assert scored == {key: tracked[key] for key in SCORE_FIELDS}
    whole = evaluate(sequence, tmp_path, benchmark="MOT17")["sequences"][SEQUENCE_NAME]
    assert whole["HOTA"] < tracked["HOTA"] and whole["FN"] > tracked["FN"]
    # Frames to the end, and a window past the end, are cut at seqLength (24) as track cuts them.
    assert evaluate(sequence, tmp_path, frames=FrameRange(5, None)) == evaluate(
        sequence, tmp_path, frames="5-99"
    )


def test_the_benchmark_of_eval_is_chosen_or_guessed_and_checked_before_tracking(
    sequence: Path, tmp_path: Path
):
    class Refusing:
        has_recheck = False

        def __call__(self, frame_bgr, templates=None):
            raise AssertionError("a frame was tracked")

    runs = track(
        sequence,
        Tracker(OracleDetector(sequence), frame_rate=25),
        frames=FrameRange(1, 6),
        evaluate=True,
        benchmark="MOT15",
        progress=False,
    )
    assert runs[SEQUENCE_NAME].scores["benchmark"] == "MOT15"
    with pytest.raises(InputError, match="needs evaluate=True"):
        track(sequence, Tracker(Refusing()), benchmark="MOT17", progress=False)
    with pytest.raises(InputError, match="unknown benchmark 'MOT99'"):
        track(sequence, Tracker(Refusing()), evaluate=True, benchmark="MOT99", progress=False)
    mot15 = tmp_path / "MOT15-STYLE"
    mot15.mkdir()
    (mot15 / "seqinfo.ini").write_text((sequence / "seqinfo.ini").read_text())
    (mot15 / "img1").symlink_to(sequence / "img1")
    (mot15 / "gt").mkdir()
    (mot15 / "gt" / "gt.txt").write_text("1,1,10,10,20,40,1,-1,-1,-1\n")  # world coordinates, no class
    with pytest.raises(InputError, match=r"ground-truth classes \[-1\] are not MOTChallenge classes"):
        track(mot15, Tracker(Refusing()), evaluate=True, benchmark="MOT17", progress=False)


class StoppingViewer:
    """Records what it is shown; asks to stop (as q does) when shown frame `stop_at`."""

    def __init__(self, stop_at: int):
        self.stop_at, self.shown, self.closed = stop_at, [], 0

    def show(self, image: np.ndarray) -> bool:
        self.shown.append(image.shape)
        return len(self.shown) < self.stop_at

    def close(self) -> None:
        self.closed += 1


def test_a_viewer_sees_every_rendered_frame_and_q_stops_with_complete_outputs(sequence: Path, tmp_path: Path):
    viewer = StoppingViewer(stop_at=6)
    runs = track(
        sequence,
        Tracker(OracleDetector(sequence), frame_rate=25),
        tmp_path,
        ("mot", "json"),
        save_video=True,
        evaluate=True,
        progress=False,
        viewer=viewer,
    )
    run = runs[SEQUENCE_NAME]
    assert run.stopped and not run.interrupted and run.tracked == 6
    assert viewer.shown == [(240, 320, 3)] * 6 and viewer.closed == 1
    names = {kind: path.name for kind, path in run.files.items()}
    assert names == {
        "mot": f"{SEQUENCE_NAME}.txt",
        "json": f"{SEQUENCE_NAME}.jsonl",
        "video": f"{SEQUENCE_NAME}.mp4",
        "scores": f"{SEQUENCE_NAME}.scores.json",
    }
    assert set(read_results(run.files["mot"])[:, 0].astype(int)) == set(range(1, 7))
    video = cv2.VideoCapture(str(run.files["video"]))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    video.release()
    # Scored up to the stop: the misses of frames never tracked are not counted.
    from cstrack.evaluation import evaluate

    scored = evaluate(sequence, tmp_path, frames="1-6")["sequences"][SEQUENCE_NAME]
    assert run.scores["frames"] == [1, 6] and scored == {key: run.scores[key] for key in scored}
    # Without an output folder the viewer still gets the rendered frames.
    viewer = StoppingViewer(stop_at=100)
    track(sequence, Tracker(OracleDetector(sequence), frame_rate=25), progress=False, viewer=viewer)
    assert len(viewer.shown) == 24 and viewer.closed == 1


class GatedCamera:
    """A capture that reads the frames the test feeds it (None: the stream ends), counting reads."""

    def __init__(self):
        self.frames: queue.Queue = queue.Queue()
        self.reads = 0
        self.changed = threading.Condition()

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def get(self, prop: int) -> float:
        return 10.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        with self.changed:
            self.reads += 1
            self.changed.notify_all()
        image = self.frames.get(timeout=60)
        return (False, None) if image is None else (True, image)

    def release(self) -> None:
        pass


def test_a_slow_tracker_on_a_live_source_tracks_the_newest_frames_and_reports_the_dropped(
    tmp_path: Path, caplog
):
    from cstrack.data.sources import StreamSource

    camera = GatedCamera()
    captures = [GatedCamera(), camera]
    source = StreamSource(0, reconnect=0, open_capture=lambda target: captures.pop(0))
    image = np.zeros((96, 128, 3), np.uint8)

    class SlowDetector(FarRecheckDetector):
        """While it works on frame 1, the camera delivers frames 2-12 and ends."""

        has_recheck = False
        calls = 0

        def __call__(self, frame_bgr, templates=None):
            SlowDetector.calls += 1
            if SlowDetector.calls == 1:
                for _ in range(11):
                    camera.frames.put(image)
                camera.frames.put(None)
                with camera.changed:
                    assert camera.changed.wait_for(lambda: camera.reads >= 13, timeout=60)
            return super().__call__(frame_bgr, None)

    camera.frames.put(image)
    with caplog.at_level(logging.INFO, logger="cstrack.pipeline.runner"):
        runs = track([source], Tracker(SlowDetector()), tmp_path, ("json",), progress=False)
    run = runs["camera0"]
    assert run.tracked == 2 and run.dropped_frames == 10 and not run.interrupted
    lines = run.files["json"].read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == [1, 12]
    assert "camera0: dropped 10 frames to keep up with the camera" in caplog.text


class TwoClassOracle(OracleDetector):
    """The oracle over people (class 1, index 0) and cars (class 3, index 1) of a two-class scene."""

    class_names = ("pedestrian", "car")

    def __call__(self, frame_bgr: np.ndarray, templates=None) -> DetectionResult:
        rows = self.gt[(self.gt[:, 0] == self.frame + 1) & (self.gt[:, 8] > 0.3)]
        result = super().__call__(frame_bgr, templates)
        classes = (rows[:, 7] == 3).astype(np.int64)
        return dataclasses.replace(result, classes=classes, trans_classes=np.zeros(0, np.int64))


@pytest.fixture(scope="module")
def two_class_sequence(tmp_path_factory) -> Path:
    config = SynthConfig(frames=30, width=320, height=240, people=3, vehicles=2, fake_background=0)
    return generate_sequence(tmp_path_factory.mktemp("twoclass"), config, seed=5)


def test_multi_class_outputs_and_per_class_scores(two_class_sequence: Path, tmp_path: Path):
    gt = np.loadtxt(two_class_sequence / "gt" / "gt.txt", delimiter=",")
    assert {1, 3} <= set(gt[:, 7].astype(int).tolist())
    tracker = Tracker(TwoClassOracle(two_class_sequence), frame_rate=25)
    assert tracker.class_names == ("pedestrian", "car")
    runs = track(
        two_class_sequence, tracker, output=tmp_path, formats=("mot", "json"), evaluate=True, progress=False
    )
    run = runs[two_class_sequence.name]
    results = read_results(run.files["mot"])
    assert set(results[:, 7].astype(int).tolist()) == {1, 3}  # the MOT16+ class column
    # Each id keeps one class; the cars' ids and the people's ids are disjoint.
    classes_of_id = {int(i): set(results[results[:, 1] == i, 7].tolist()) for i in np.unique(results[:, 1])}
    assert all(len(classes) == 1 for classes in classes_of_id.values())
    lines = [json.loads(line) for line in run.files["json"].read_text().splitlines()]
    names = {(t["class"], t["class_name"]) for line in lines for t in line["tracks"]}
    assert names == {(0, "pedestrian"), (1, "car")}
    per_class = run.scores["classes"]
    assert set(per_class) == {"pedestrian", "car"}
    for scores in per_class.values():  # the oracle finds only real targets, each under one id
        assert scores["Precision"] == 1.0 and scores["IDSW"] == 0 and scores["HOTA"] > 0.4
    # The class column decides: scoring the cars against the people's gt finds nothing.
    assert per_class["car"]["TP"] + per_class["pedestrian"]["TP"] == len(results)
    # `cstrack eval --per-class` scores the written file as --eval scored the rows.
    from cstrack.cli.main import main

    out = tmp_path / "scores.json"
    args = [
        "eval",
        "--gt",
        str(two_class_sequence),
        "--results",
        str(tmp_path),
        "--per-class",
        "pedestrian,car",
    ]
    assert main([*args, "--json", str(out)]) == 0
    files = json.loads(out.read_text())
    for name in ("pedestrian", "car"):
        assert files[name]["sequences"][two_class_sequence.name] == pytest.approx(per_class[name])
    assert main([*args[:-1], "pedestrian,dog"]) == 2
    # Only the cars, when asked.
    cars = track(
        two_class_sequence,
        Tracker(TwoClassOracle(two_class_sequence), frame_rate=25, classes=["car"]),
        output=tmp_path / "cars",
        progress=False,
    )[two_class_sequence.name]
    assert set(read_results(cars.files["mot"])[:, 7].astype(int).tolist()) == {3}
    with pytest.raises(InputError, match="unknown class 'dog'"):
        Tracker(TwoClassOracle(two_class_sequence), classes=["dog"])

"""`cstrack track` on bad inputs: one-line errors, exit code 2, nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.cli.main import main
from cstrack.models import create_model
from cstrack.models.weights import save_weights


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["track", *args, "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def frames(frame_folder) -> Path:
    return frame_folder(3)


@pytest.mark.parametrize(
    "make_source, message",
    [
        (lambda tmp: tmp / "missing.mp4", "no such file"),
        (lambda tmp: (tmp / "bad.mp4").write_bytes(b"\x00" * 512) and tmp / "bad.mp4", "cannot decode"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no images"),
    ],
)
def test_bad_sources_exit_2_with_one_line(capsys, tmp_path: Path, make_source, message):
    out_dir = tmp_path / "out"
    code, _, err = run_cli(capsys, str(make_source(tmp_path)), "--model", "omc_n", "--output", str(out_dir))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_corrupt_video_stderr_is_one_line_from_the_process(tmp_path: Path):
    """FFmpeg writes its own log lines to the process's stderr, below what capsys sees."""
    video = tmp_path / "bad.mp4"
    video.write_bytes(b"\x00" * 512)
    env = {key: value for key, value in os.environ.items() if key != "OPENCV_FFMPEG_LOGLEVEL"}
    completed = subprocess.run(
        [sys.executable, "-m", "cstrack", "track", str(video), "--model", "omc_n", "--quiet"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert completed.returncode == 2
    assert (
        completed.stderr
        == f"cstrack track: error: {video}: cannot decode this video (corrupt or unsupported format)\n"
    )


def test_unknown_model_name(capsys, frames: Path, tmp_path: Path):
    code, _, err = run_cli(capsys, str(frames), "--model", "omc_q", "--output", str(tmp_path / "o"))
    assert code == 2 and "unknown model 'omc_q'" in err


def test_weights_of_the_wrong_architecture(capsys, frames: Path, tmp_path: Path):
    weights = tmp_path / "omc_n.safetensors"
    save_weights(create_model("omc_n"), weights, {"arch": "omc_n"})
    code, _, err = run_cli(
        capsys, str(frames), "--model", str(weights), "--arch", "cstrack_s", "--output", str(tmp_path / "o")
    )
    assert code == 2 and str(weights) in err and "Traceback" not in err


def test_unreadable_image_is_skipped_and_reported(capsys, frames: Path, tmp_path: Path):
    (frames / "001.jpg").write_bytes(b"garbage")
    weights = tmp_path / "omc_n.safetensors"
    save_weights(create_model("omc_n"), weights, {"arch": "omc_n"})
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys, str(frames), "--model", str(weights), "--img-size", "128", "96", "--output", str(out_dir)
    )
    assert code == 0
    assert "skipped 1 unreadable frames (2)" in err
    assert (out_dir / "frames.txt").is_file() and "tracked 2 frames" in out


def test_cli_process_has_no_traceback(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "cstrack", "track", str(tmp_path / "nope"), "--quiet"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("cstrack track: error:") and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["0", "1", "-0.1", "1.5", "0.5", "nan"])
def test_byte_low_out_of_range_is_a_one_line_error(capsys, frames: Path, tmp_path: Path, value: str):
    out_dir = tmp_path / "out"
    code, _, err = run_cli(capsys, str(frames), "--byte-low", value, "--output", str(out_dir))
    assert code == 2 and "Traceback" not in err
    assert (
        err
        == f"cstrack track: error: --byte-low must be in (0, 1) and below --conf (0.5), got {float(value)}\n"
    )
    assert not out_dir.exists()


def test_byte_low_reaches_the_tracker(capsys, monkeypatch, frames: Path, tmp_path: Path):
    from cstrack.pipeline import end_to_end
    from cstrack.tracking import DetectionResult

    class NoDetections:
        has_recheck = False

        def __call__(self, frame_bgr, templates=None):
            empty = np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 8), np.float32)
            return DetectionResult(*empty, np.zeros(0, np.int64), *empty)

    configs = []
    real_init = end_to_end.Tracker.__init__

    def recording_init(self, model, config, runtime, **kwargs):
        configs.append(config)
        real_init(self, NoDetections(), config)

    monkeypatch.setattr(end_to_end.Tracker, "__init__", recording_init)
    code, out, _ = run_cli(capsys, str(frames), "--byte-low", "0.1", "--output", str(tmp_path / "o"))
    assert code == 0 and "tracked 3 frames" in out
    (config,) = configs
    assert (config.association.byte_low_threshold, config.detector.conf) == (0.1, 0.5)


def test_byte_low_is_off_by_default():
    from cstrack.cli.main import build_parser

    args = build_parser().parse_args(["track", "frames"])
    assert args.byte_low_threshold is None


@pytest.mark.parametrize(
    "option, message",
    [
        (["--conf", "2"], "--conf must be in [0, 1), got 2.0"),
        (["--conf", "nan"], "--conf must be in [0, 1), got nan"),
        (["--conf", "-1"], "--conf must be in [0, 1), got -1.0"),
        (["--min-area", "nan"], "min_area=nan (must be finite and >= 0)"),
        (["--min-area", "-5"], "min_area=-5.0 (must be finite and >= 0)"),
        (["--max-aspect", "-1"], "max_aspect=-1.0 (must be finite and > 0)"),
        (["--max-aspect", "inf"], "max_aspect=inf (must be finite and > 0)"),
        (["--trails", "-1"], "trails=-1 (must be an integer >= 0)"),
        (["--cmc", "sift"], "--cmc must be one of none, sof, ecc, orb, got sift"),
        (["--backend", "tensorrt"], "backend: must be one of auto, torch, onnx, got 'tensorrt'"),
        (
            ["--img-size", "100", "96"],
            "--img-size must be two positive multiples of 32 up to 4096, got 100 96",
        ),
        (
            ["--img-size", "100000", "100000"],
            "--img-size must be two positive multiples of 32 up to 4096, got 100000 100000",
        ),
        (["--format", ","], "--format ',' has an empty item"),
        (["--format", "mot,xml"], "unknown output formats ['xml']; choose from mot, json"),
        (["--frames", "4-9"], "frames 4-9 are outside this sequence of 3 frames"),
        (["--eval"], "cannot evaluate: not a MOTChallenge sequence with gt/gt.txt"),
    ],
)
def test_bad_options_are_refused_before_tracking(capsys, frames: Path, tmp_path: Path, option, message):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, str(frames), "--model", "omc_n", *option, "--output", str(out_dir))
    assert code == 2 and out == ""
    assert err.startswith("cstrack track: error: ") and err.endswith(f"{message}\n")
    assert len(err.splitlines()) == 1  # not even the model's "random initialisation" line
    assert not out_dir.exists()


def test_eval_names_the_sequence_without_ground_truth(capsys, tmp_path: Path):
    root = tmp_path / "data"
    for name, with_gt in (("SEQ-A", True), ("SEQ-B", False)):
        images = root / name / "img1"
        images.mkdir(parents=True)
        cv2.imwrite(str(images / "000001.jpg"), np.zeros((96, 128, 3), np.uint8))
        (root / name / "seqinfo.ini").write_text(
            f"[Sequence]\nname={name}\nimDir=img1\nframeRate=10\nseqLength=1\nimWidth=128\nimHeight=96\nimExt=.jpg\n"
        )
        if with_gt:
            (root / name / "gt").mkdir()
            (root / name / "gt" / "gt.txt").write_text("1,1,10,10,20,40,1,1,1\n")
    code, _, err = run_cli(capsys, str(root), "--eval", "--output", str(tmp_path / "out"))
    assert code == 2
    assert (
        err
        == f"cstrack track: error: {root / 'SEQ-B' / 'gt' / 'gt.txt'}: cannot evaluate: this sequence has no ground truth\n"
    )


def test_output_that_is_a_file_is_refused_before_tracking(capsys, frames: Path, tmp_path: Path):
    a_file = tmp_path / "results.txt"
    a_file.write_text("earlier results")
    for output in (a_file, a_file / "sub"):
        code, _, err = run_cli(capsys, str(frames), "--model", "omc_n", "--output", str(output))
        assert code == 2 and len(err.splitlines()) == 1
        assert f"{output}: cannot write results here" in err and "is a file, not a folder" in err
    assert a_file.read_text() == "earlier results"


def test_truncated_jpeg_is_skipped_with_a_warning(capsys, caplog, frames: Path, tmp_path: Path):
    truncated = frames / "001.jpg"
    truncated.write_bytes(truncated.read_bytes()[:-100])
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys,
        str(frames),
        "--model",
        "omc_n",
        "--img-size",
        "128",
        "96",
        "--device",
        "cpu",
        "--output",
        str(out_dir),
    )
    assert code == 0 and "tracked 2 frames" in out
    assert "skipped 1 unreadable frames (2)" in err
    assert f"{truncated}: truncated JPEG" in caplog.text


def test_missing_camera_prints_only_our_line(tmp_path: Path):
    """OpenCV logs a dozen lines of its own (V4L2, FFmpeg, obsensor) when a camera index is missing."""
    completed = subprocess.run(
        [sys.executable, "-m", "cstrack", "track", "63", "--quiet", "--output", str(tmp_path / "out")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={key: value for key, value in os.environ.items() if not key.startswith("OPENCV_")},
    )
    assert completed.returncode == 2
    assert completed.stderr == "cstrack track: error: 63: cannot open this camera or stream\n"

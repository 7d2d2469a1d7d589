"""`cstrack track`'s source, output-folder, crop and counting options, end to end on a tiny folder."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import pytest

from cstrack.cli.main import main
from cstrack.cli.track_options import seconds_or_forever
from cstrack.models import create_model
from cstrack.models.weights import save_weights
from cstrack.pipeline.video import h264_encoder


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "omc_n.safetensors"
    save_weights(create_model("omc_n"), path, {"arch": "omc_n"})
    return path


def run_cli(capsys, weights: Path, *args: str | Path) -> tuple[int, str, str]:
    code = main(["track", *map(str, args), "--model", str(weights), "--img-size", "128", "96",
                 "--device", "cpu", "--quiet"])  # fmt: skip
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_runs_without_output_go_to_numbered_folders(capsys, monkeypatch, frame_folder, weights, tmp_path):
    frames = frame_folder(2)
    monkeypatch.chdir(tmp_path)
    for expected, extra in (("exp", ()), ("exp2", ()), ("exp2", ("--exist-ok",)), ("exp3", ())):
        code, out, err = run_cli(capsys, weights, frames, *extra)
        assert code == 0, err
        assert f"results in {Path('runs/track') / expected}\n" in out
        assert (tmp_path / "runs" / "track" / expected / "frames.txt").is_file()
    code, out, _ = run_cli(capsys, weights, frames, "--output", tmp_path / "mine")
    assert (
        code == 0
        and f"results in {tmp_path / 'mine'}\n" in out
        and (tmp_path / "mine" / "frames.txt").is_file()
    )


def test_fps_and_vid_stride_set_the_rate_and_the_frames(capsys, frame_folder, weights, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, weights, frame_folder(5), "--fps", "12", "--vid-stride", "2",
                             "--save-video", "--output", out_dir)  # fmt: skip
    assert code == 0, err
    assert "tracked 3 frames" in out
    video = cv2.VideoCapture(str(out_dir / "frames.mp4"))
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(6.0) and video.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    video.release()
    codec = "video (H.264)" if h264_encoder() else "video (mp4v: not played by most browsers"
    assert f"frames {codec}" in out


def test_counts_and_crops_are_listed_with_the_results(capsys, frame_folder, weights, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, weights, frame_folder(3), "--count-line", "0,48,128,48",
                             "--count-zone", "0,0,64,0,64,48", "--save-crops", "--output", out_dir)  # fmt: skip
    assert code == 0, err
    lines = (out_dir / "frames.counts.csv").read_text().splitlines()
    assert lines[0] == "frame,seconds,line1_in,line1_out,zone1" and len(lines) == 4
    assert f"frames counts: {out_dir / 'frames.counts.csv'}" in out


@pytest.mark.parametrize(
    "option, message",
    [
        (("--vid-stride", "0"), "vid_stride=0 (must be an integer >= 1)"),
        (("--fps", "0"), "fps=0.0 (must be a finite number > 0)"),
        (("--reconnect", "-5"), "reconnect=-5.0"),
        (("--count-line", "1,2,3,4,5,6"), "exactly 2 points"),
        (("--count-zone", "1,2,3,4"), "at least 3 points"),
        (("--crop-every", "0", "--save-crops"), "every must be an integer >= 1"),
    ],
)
def test_bad_values_are_one_line_errors_before_tracking(
    capsys, frame_folder, weights, tmp_path, option, message
):
    out_dir = tmp_path / "out"
    code, _, err = run_cli(capsys, weights, frame_folder(2), *option, "--output", out_dir)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out_dir.exists()


def test_reconnect_takes_seconds_or_forever(capsys):
    assert seconds_or_forever("forever") == math.inf and seconds_or_forever("2.5") == 2.5
    with pytest.raises(SystemExit) as exit_info:
        main(["track", "0", "--reconnect", "soon"])
    assert exit_info.value.code == 2
    assert "--reconnect: invalid seconds or 'forever' value: 'soon'" in capsys.readouterr().err

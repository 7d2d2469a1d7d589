"""`cstrack track` killed with SIGKILL mid-sequence: the frames tracked survive, the next run tidies up.

A real process, a real kill: the temporary files must already hold whole rows of every frame
tracked (they are written frame by frame), and the next run into the folder must leave no
temporary file behind, recover the killed run's rows as NAME.partial.*, and write complete files.
SIGTERM (docker stop, systemd, Kubernetes) is handled as Ctrl-C: the process itself completes
the partial files and exits with 143.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
import torch

from cstrack.data.synth.scene import SynthConfig
from cstrack.data.synth.write import generate_sequence
from cstrack.models import create_model
from cstrack.models.weights import save_weights

FRAMES = 40
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


@pytest.fixture(scope="module")
def eager_weights(tmp_path_factory) -> Path:
    """Random omc_n weights with objectness and class biases raised, so frames have tracks."""
    torch.manual_seed(0)
    model = create_model("omc_n")
    (head,) = [module for module in model.modules() if hasattr(module, "_init_biases")]
    with torch.no_grad():
        for conv in head.m:
            conv.bias.view(head.na, -1)[:, 4:] += 6.0
    path = tmp_path_factory.mktemp("weights") / "eager.safetensors"
    save_weights(model, path, {"arch": "omc_n"})
    return path


def complete_lines(path: Path) -> list[str]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), f"{path.name} ends in a cut row"
    return text.splitlines()


def track_env() -> dict[str, str]:
    """The test's environment (its private CSTRACK_CACHE, set by a session fixture) with one thread."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def track_command(sequence: Path, weights: Path, out_dir: Path, *options: str) -> list[str]:
    return [
        sys.executable, "-m", "cstrack", "track", str(sequence), "--model", str(weights),
        "--img-size", "128", "96", "--device", "cpu", "--format", "mot,json", *options,
        "--output", str(out_dir), "--quiet",
    ]  # fmt: skip


def signal_after_three_frames(process: subprocess.Popen, out_dir: Path, name: str, signum: int) -> None:
    """Send `signum` once the process's temporary JSON lines hold three frames (any later frame is
    as good: the tests assert what was tracked, not how many), however long that takes."""
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            temporaries = list(out_dir.glob(f".{name}.jsonl.{process.pid}.*.tmp")) if out_dir.is_dir() else []
            if temporaries and temporaries[0].read_bytes().count(b"\n") >= 3:
                break
            assert process.poll() is None, "cstrack track ended before the signal"
            time.sleep(0.005)
        else:
            pytest.fail("no frame was written within the time limit")
    finally:
        process.send_signal(signum)


def test_sigkill_keeps_tracked_frames_and_the_next_run_recovers_them(tmp_path: Path, eager_weights: Path):
    config = SynthConfig(frames=FRAMES, width=320, height=192, people=3, fake_background=0)
    sequence = generate_sequence(tmp_path / "synth", config, seed=1)
    name, out_dir = sequence.name, tmp_path / "out"
    command = track_command(sequence, eager_weights, out_dir, "--save-video")
    process = subprocess.Popen(command, env=track_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        signal_after_three_frames(process, out_dir, name, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL

    (jsonl_temp,) = out_dir.glob(f".{name}.jsonl.{process.pid}.*.tmp")
    (mot_temp,) = out_dir.glob(f".{name}.txt.{process.pid}.*.tmp")
    assert len(list(out_dir.glob(f".{name}.mp4.{process.pid}.*.tmp.mp4"))) == 1
    assert not list(out_dir.glob(f"{name}.*"))  # nothing final yet
    json_lines = complete_lines(jsonl_temp)
    tracked = len(json_lines)
    assert 3 <= tracked < FRAMES
    assert [json.loads(line)["frame"] for line in json_lines] == list(range(1, tracked + 1))
    mot_lines = complete_lines(mot_temp)
    assert mot_lines and all(len(line.split(",")) == 10 for line in mot_lines)
    mot_frames = sorted({int(line.split(",")[0]) for line in mot_lines})
    # A frame's MOT rows are written just before its JSON line: one frame ahead at most.
    assert mot_frames == list(range(1, mot_frames[-1] + 1)) and mot_frames[-1] in (tracked, tracked + 1)
    killed = {"txt": mot_temp.read_text(), "jsonl": jsonl_temp.read_text()}

    completed = subprocess.run(
        command, env=track_env(), capture_output=True, text=True, timeout=600, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert f"recovered the frames that killed run {process.pid} had tracked" in completed.stderr
    assert sorted(path.name for path in out_dir.iterdir()) == sorted(
        [
            "tracker.yaml",  # the resolved tracker configuration of the complete results
            "tracker.partial.yaml",  # the killed run's, written before its first frame, beside its frames
            *(f"{name}{suffix}" for suffix in (".txt", ".jsonl", ".mp4", ".partial.txt", ".partial.jsonl")),
        ]
    )
    for suffix, text in killed.items():
        assert (out_dir / f"{name}.partial.{suffix}").read_text() == text
    final_json = complete_lines(out_dir / f"{name}.jsonl")
    assert [json.loads(line)["frame"] for line in final_json] == list(range(1, FRAMES + 1))
    final_mot = complete_lines(out_dir / f"{name}.txt")
    assert {int(line.split(",")[0]) for line in final_mot} == set(range(1, FRAMES + 1))
    video = cv2.VideoCapture(str(out_dir / f"{name}.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    video.release()


def test_sigterm_completes_the_partial_files_and_exits_143(tmp_path: Path, eager_weights: Path):
    config = SynthConfig(frames=FRAMES, width=320, height=192, people=3, fake_background=0)
    sequence = generate_sequence(tmp_path / "synth", config, seed=1)
    name, out_dir = sequence.name, tmp_path / "out"
    command = track_command(sequence, eager_weights, out_dir)
    process = subprocess.Popen(
        command, env=track_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        signal_after_three_frames(process, out_dir, name, signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and "cstrack track: interrupted" in stderr
    assert sorted(path.name for path in out_dir.iterdir()) == sorted(
        ["tracker.partial.yaml", f"{name}.partial.txt", f"{name}.partial.jsonl"]
    )  # no temporary file left, no complete result claimed
    json_lines = complete_lines(out_dir / f"{name}.partial.jsonl")
    tracked = len(json_lines)
    assert 3 <= tracked < FRAMES
    assert [json.loads(line)["frame"] for line in json_lines] == list(range(1, tracked + 1))
    mot_frames = sorted({int(line.split(",")[0]) for line in complete_lines(out_dir / f"{name}.partial.txt")})
    # A frame's MOT rows are written just before its JSON line: one frame ahead at most.
    assert mot_frames == list(range(1, mot_frames[-1] + 1)) and mot_frames[-1] in (tracked, tracked + 1)
    assert f"{name}.partial.jsonl" in stdout

"""Commands never write over their inputs, and check their options before any work (issue 23)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cstrack.cli.main import main
from cstrack.models import create_model
from cstrack.models.weights import save_weights


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "w.safetensors"
    save_weights(create_model("omc_n"), path, {"arch": "omc_n"})
    return path


def one_line_error(code: int, err: str, command: str, problem: str) -> None:
    assert code == 2 and err.startswith(f"cstrack {command}: error: ") and problem in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("through_link", [False, True])
def test_convert_refuses_to_write_over_its_checkpoint(capsys, tmp_path: Path, through_link: bool):
    checkpoint = tmp_path / "same.pt"
    checkpoint.write_bytes(b"PK\x03\x04 not really a checkpoint")
    output = tmp_path / "same.pt"
    if through_link:
        output = tmp_path / "link.safetensors"
        output.symlink_to(checkpoint)
    before = checkpoint.read_bytes()
    code, err = run(capsys, "convert", str(checkpoint), str(output), "--arch", "omc_yolox_nano")
    problem = "must end in .safetensors" if not through_link else f"would overwrite the input {checkpoint}"
    one_line_error(code, err, "convert", problem)
    assert checkpoint.read_bytes() == before


def test_convert_checks_the_output_name_before_reading(capsys, tmp_path: Path):
    code, err = run(
        capsys, "convert", str(tmp_path / "missing.pt"), str(tmp_path / "out.bin"), "--arch", "omc_n"
    )
    one_line_error(code, err, "convert", "out.bin: the output must end in .safetensors")


def test_export_refuses_to_write_over_its_weights(capsys, weights: Path):
    before = weights.read_bytes()
    code, err = run(
        capsys, "export", "--model", str(weights), "--output", str(weights), "--img-size", "128", "96"
    )
    one_line_error(code, err, "export", f"would overwrite the input {weights}")
    assert weights.read_bytes() == before


@pytest.mark.parametrize("opset", ["1", "999"])
def test_export_checks_the_opset(capsys, weights: Path, tmp_path: Path, opset: str):
    output = tmp_path / "g.onnx"
    code, err = run(capsys, "export", "--model", str(weights), "--output", str(output), "--opset", opset)
    one_line_error(code, err, "export", f"opset {opset} is not supported: choose 11 to 20")
    assert not output.exists()


def test_track_refuses_to_write_over_its_tracker_config(capsys, frame_folder, tmp_path: Path):
    frames, out = frame_folder(2), tmp_path / "out"
    out.mkdir()
    config = out / "tracker.yaml"
    config.write_text("# mine\nconf: 0.4\n")
    code, err = run(
        capsys,
        "track",
        str(frames),
        "--model",
        "omc_n",
        "--tracker-config",
        str(config),
        "--output",
        str(out),
    )
    one_line_error(code, err, "track", "would overwrite the input")
    assert config.read_text() == "# mine\nconf: 0.4\n"


def test_synth_refuses_a_frame_size_beyond_the_limit_before_rendering(capsys, tmp_path: Path):
    out = tmp_path / "synth"
    code, err = run(capsys, "synth", str(out), "--width", "100000", "--height", "100000", "--frames", "2")
    one_line_error(code, err, "synth", "width=100000 (must be in [64, 4096])")
    assert not out.exists()

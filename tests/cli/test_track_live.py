"""`cstrack track --show` and `--all-frames`: the window's q stops cleanly, a live source keeps
only the newest frame unless told otherwise; no camera and no display are needed."""

from __future__ import annotations

import queue
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.cli.main import main
from cstrack.data import sources as sources_module
from cstrack.models import create_model
from cstrack.models.weights import save_weights
from cstrack.pipeline import viewer as viewer_module


@pytest.fixture
def frames(frame_folder) -> Path:
    return frame_folder(4, ".png")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "omc_n.safetensors"
    save_weights(create_model("omc_n"), path, {"arch": "omc_n"})
    return path


def run_cli(capsys, *args: str | Path) -> tuple[int, str, str]:
    code = main(["track", *map(str, args), "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class FakeGui:
    """OpenCV's window calls; q is pressed when the second frame is shown."""

    error = cv2.error

    def __init__(self):
        self.shown: list[tuple[str, tuple[int, ...]]] = []
        self.destroyed: list[str] = []

    def imshow(self, title: str, image: np.ndarray) -> None:
        self.shown.append((title, image.shape))

    def waitKey(self, delay: int) -> int:  # noqa: N802 - OpenCV's name
        return ord("q") if len(self.shown) == 2 and not self.destroyed else -1

    def destroyWindow(self, title: str) -> None:  # noqa: N802
        self.destroyed.append(title)


def test_show_without_a_display_is_refused_before_anything(capsys, monkeypatch, frames: Path, tmp_path: Path):
    monkeypatch.setattr(viewer_module, "sys", type("linux", (), {"platform": "linux"}))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    code, out, err = run_cli(capsys, frames, "--show", "--model", "omc_n", "--output", tmp_path / "out")
    assert code == 2 and out == ""
    assert err == "cstrack track: error: --show needs a display, and DISPLAY is not set (no X server here)\n"
    assert not (tmp_path / "out").exists()


def test_q_in_the_window_stops_and_writes_complete_outputs(
    capsys, monkeypatch, frames: Path, weights: Path, tmp_path: Path
):
    gui = FakeGui()
    monkeypatch.setattr(viewer_module, "cv2", gui)
    monkeypatch.setenv("DISPLAY", ":0")
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys, frames, "--show", "--model", weights, "--img-size", "128", "96", "--device", "cpu",
        "--format", "mot,json", "--output", out_dir,
    )  # fmt: skip
    assert code == 0, err
    assert "tracked 2 frames" in out and "frames: stopped from the viewer after frame 2" in err
    assert gui.shown == [(f"cstrack track {frames}", (96, 128, 3))] * 2 and gui.destroyed == [gui.shown[0][0]]
    written = {path.name for path in out_dir.iterdir()}
    assert {"frames.jsonl", "frames.txt"} <= written and not [name for name in written if "partial" in name]
    assert len((out_dir / "frames.jsonl").read_text().splitlines()) == 2


class Camera:
    """Five frames, then the stream ends."""

    def __init__(self):
        self.frames: queue.Queue = queue.Queue()
        for k in range(5):
            self.frames.put(np.full((96, 128, 3), 50 + 10 * k, np.uint8))
        self.frames.put(None)

    def isOpened(self) -> bool:  # noqa: N802
        return True

    def get(self, prop: int) -> float:
        return 15.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        image = self.frames.get(timeout=60)
        return (False, None) if image is None else (True, image)

    def release(self) -> None:
        pass


@pytest.mark.parametrize("all_frames", [False, True])
def test_all_frames_turns_the_latest_frame_mode_off(
    capsys, monkeypatch, weights: Path, tmp_path: Path, all_frames: bool
):
    modes = []
    real = sources_module.StreamSource

    def fake_camera(target, latest=True, **options):
        modes.append(latest)
        return real(target, reconnect=0, latest=latest, open_capture=lambda target: Camera())

    monkeypatch.setattr(sources_module, "StreamSource", fake_camera)
    extra = ["--all-frames"] if all_frames else []
    code, out, err = run_cli(
        capsys, "0", *extra, "--model", weights, "--img-size", "128", "96", "--device", "cpu",
        "--output", tmp_path / "out",
    )  # fmt: skip
    assert code == 0, err
    assert modes == [not all_frames]
    if all_frames:
        assert "tracked 5 frames" in out and "dropped" not in err
    assert (tmp_path / "out" / "camera0.txt").is_file()

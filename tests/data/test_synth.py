"""Synthetic sequences: determinism, ground truth against the pixels, occlusion, perspective, decoys."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data import MotSequence
from cstrack.data.mot import CLASS, FRAME, ID, MARK, VISIBILITY, H, W, X, Y
from cstrack.data.synth.motion import camera_warps
from cstrack.data.synth.scene import CAR, SynthConfig
from cstrack.data.synth.write import generate_dataset, generate_sequence
from cstrack.errors import InputError

# Small and fast; 8 fps so that people cross the 320 px image within the 60 frames.
SMALL = SynthConfig(frames=60, width=320, height=240, fps=8, people=6)
SEED = 7


def generate(folder: Path, config: SynthConfig = SMALL, seed: int = SEED) -> MotSequence:
    return MotSequence.open(generate_sequence(folder, config, seed))


def images(sequence: MotSequence) -> np.ndarray:
    """All frames as one (frames, rows, cols, 3) int16 array, for pixel differences."""
    return np.stack([image for _, image in sequence.frames()]).astype(np.int16)


def away_from_borders(gt: np.ndarray, width: int, height: int) -> np.ndarray:
    """Rows whose box is not clipped by the image border."""
    return (gt[:, X] > 0) & (gt[:, Y] > 0) & (gt[:, X] + gt[:, W] < width) & (gt[:, Y] + gt[:, H] < height)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> MotSequence:
    return generate(tmp_path_factory.mktemp("small"))


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> MotSequence:
    """Many people, every arrival crossing someone: lots of occlusion."""
    return generate(tmp_path_factory.mktemp("crowded"), replace(SMALL, people=10, occlusion=1.0, frames=80))


def test_same_seed_gives_identical_files(small: MotSequence, tmp_path: Path) -> None:
    again = generate(tmp_path / "again")
    assert again.gt_path.read_bytes() == small.gt_path.read_bytes()
    for frame in (1, 30, SMALL.frames):
        assert again.frame_path(frame).read_bytes() == small.frame_path(frame).read_bytes()
    other = generate(tmp_path / "other", seed=SEED + 1)
    assert other.gt_path.read_bytes() != small.gt_path.read_bytes()


def test_layout_seqinfo_and_gt_format(small: MotSequence) -> None:
    info = small.info
    assert (info.name, info.seq_length, info.width, info.height, info.frame_rate) == (
        "SYNTH-01",
        60,
        320,
        240,
        8,
    )
    assert sorted(path.name for path in (small.path / "img1").iterdir()) == [
        f"{frame:06d}.jpg" for frame in range(1, 61)
    ]
    assert small.read_frame(1).shape == (240, 320, 3)
    assert not (small.path / "fake_background.txt").exists()
    gt = small.read_gt()
    assert gt.shape[1] == 9 and len(gt) > 100
    assert set(gt[:, FRAME]) <= set(range(1, 61))
    assert (gt[:, MARK] == 1).all() and (gt[:, CLASS] == 1).all()
    assert ((gt[:, VISIBILITY] >= 0) & (gt[:, VISIBILITY] <= 1)).all()
    assert (gt[:, X] >= 0).all() and (gt[:, Y] >= 0).all() and (gt[:, W] > 0).all() and (gt[:, H] > 0).all()
    assert (gt[:, X] + gt[:, W] <= 320).all() and (gt[:, Y] + gt[:, H] <= 240).all()
    assert np.array_equal(gt[:, [FRAME, ID]], gt[np.lexsort((gt[:, ID], gt[:, FRAME]))][:, [FRAME, ID]])
    # ids 1..N numbered by first appearance
    first_ids = list(dict.fromkeys(gt[:, ID].astype(int)))
    assert first_ids == list(range(1, len(first_ids) + 1))


def test_boxes_hold_the_figures_and_nothing_else_changes(small: MotSequence, tmp_path: Path) -> None:
    """Against the empty scene (same seed, no people): pixels differ inside the boxes only."""
    empty = generate(tmp_path / "empty", replace(SMALL, people=0))
    assert empty.read_gt().size == 0
    difference = np.abs(images(small) - images(empty)).mean(axis=3)
    gt = small.read_gt()
    outside = np.ones(difference.shape, bool)
    for frame, _, x, y, w, h in gt[:, :6].astype(int):
        outside[frame - 1, max(y - 4, 0) : y + h + 4, max(x - 4, 0) : x + w + 4] = False
    assert difference[outside].mean() < 1.0
    visible = gt[(gt[:, VISIBILITY] > 0.8) & (gt[:, W] * gt[:, H] > 150)]
    assert len(visible) > 50
    for frame, _, x, y, w, h in visible[:, :6].astype(int):
        assert difference[frame - 1, y : y + h, x : x + w].mean() > 8


def test_visibility_drops_when_figures_overlap(crowded: MotSequence) -> None:
    gt = crowded.read_gt()
    info = crowded.info
    inner = away_from_borders(gt, info.width, info.height)
    alone, hidden_behind = [], []
    for frame in np.unique(gt[:, FRAME]):
        rows = gt[gt[:, FRAME] == frame]
        x0, y0 = rows[:, X], rows[:, Y]
        x1, y1 = x0 + rows[:, W], y0 + rows[:, H]
        overlap_w = np.clip(np.minimum(x1[:, None], x1) - np.maximum(x0[:, None], x0), 0, None)
        overlap_h = np.clip(np.minimum(y1[:, None], y1) - np.maximum(y0[:, None], y0), 0, None)
        covered = overlap_w * overlap_h / (rows[:, W] * rows[:, H])[:, None]
        np.fill_diagonal(covered, 0)
        nearer = y1[None, :] > y1[:, None]  # [i, j]: j's feet are lower, so j is nearer than i
        indices = np.flatnonzero(gt[:, FRAME] == frame)
        for row, index in enumerate(indices):
            if not inner[index]:
                continue
            if covered[row].max() == 0:
                alone.append(rows[row, VISIBILITY])
            elif (covered[row] * nearer[row]).max() > 0.6:
                hidden_behind.append(rows[row, VISIBILITY])
    assert len(alone) > 50 and len(hidden_behind) > 10
    assert all(visibility == 1.0 for visibility in alone)
    assert np.mean(np.array(hidden_behind) < 1) > 0.9
    assert np.mean(hidden_behind) < 0.8


def test_nearer_people_are_taller(small: MotSequence) -> None:
    """Perspective: box height grows with the row of the feet (the box bottom)."""
    gt = small.read_gt()
    rows = gt[away_from_borders(gt, 320, 240)]
    correlation = np.corrcoef(rows[:, Y] + rows[:, H], rows[:, H])[0, 1]
    assert correlation > 0.9


def test_people_enter_and_leave_at_the_borders(small: MotSequence) -> None:
    gt = small.read_gt()
    touches_side = (gt[:, X] == 0) | (gt[:, X] + gt[:, W] == 320)
    entries = exits = 0
    for identity in np.unique(gt[:, ID]):
        track = np.flatnonzero(gt[:, ID] == identity)
        first, last = track[0], track[-1]
        if gt[first, FRAME] > 1:
            entries += 1
            assert touches_side[first]
        if gt[last, FRAME] < SMALL.frames:
            exits += 1
            assert touches_side[last]
        assert np.array_equal(np.diff(gt[track, FRAME]), np.ones(len(track) - 1))  # no gaps
    assert entries >= 2 and exits >= 2


def test_fake_background_is_drawn_but_never_annotated(small: MotSequence, tmp_path: Path) -> None:
    with_decoys = generate(tmp_path / "decoys", replace(SMALL, fake_background=4))
    assert with_decoys.gt_path.read_bytes() == small.gt_path.read_bytes()
    lines = (with_decoys.path / "fake_background.txt").read_text().splitlines()
    assert lines[0] == "x,y,w,h,kind" and len(lines) == 5
    difference = np.abs(
        with_decoys.read_frame(1).astype(np.int16) - small.read_frame(1).astype(np.int16)
    ).mean(axis=2)
    for line in lines[1:]:
        x, y, w, h, kind = line.split(",")
        assert kind in {"poster", "board", "statue"}
        x, y, w, h = int(x), int(y), int(w), int(h)
        assert w > 0 and h > 0
        assert difference[y : y + h, x : x + w].mean() > 8


def test_blur_changes_pixels_not_ground_truth(small: MotSequence, tmp_path: Path) -> None:
    blurred = generate(tmp_path / "blurred", replace(SMALL, blur=3.0))
    assert blurred.gt_path.read_bytes() == small.gt_path.read_bytes()
    assert np.abs(images(blurred) - images(small)).mean() > 0.2


def test_dropped_frames_make_motion_jump(small: MotSequence, tmp_path: Path) -> None:
    """Skipped time steps: boxes move about twice as far between some consecutive frames."""

    def mean_step(sequence: MotSequence) -> float:
        gt = sequence.read_gt()
        gt = gt[away_from_borders(gt, 320, 240)]
        gt = gt[np.lexsort((gt[:, FRAME], gt[:, ID]))]
        same = (np.diff(gt[:, ID]) == 0) & (np.diff(gt[:, FRAME]) == 1)
        centres = gt[:, X] + gt[:, W] / 2
        return float(np.abs(np.diff(centres) / gt[1:, H])[same].mean())

    dropping = generate(tmp_path / "dropping", replace(SMALL, drop_frames=0.5))
    assert dropping.info.seq_length == SMALL.frames
    assert mean_step(dropping) > 1.25 * mean_step(small)


# sha256 of SMALL's gt.txt at SEED, as rendered before cars existed: `vehicles` 0 must keep it.
SMALL_GT_SHA256 = "8d1b009e5efb5bb458e06b27e41e88f63d3349ea76ce8e86e036d8d7d88d068b"


def test_no_vehicles_keeps_the_sequences_of_old(small: MotSequence) -> None:
    assert SMALL.vehicles == 0
    assert hashlib.sha256(small.gt_path.read_bytes()).hexdigest() == SMALL_GT_SHA256


@pytest.fixture(scope="module")
def with_cars(tmp_path_factory: pytest.TempPathFactory) -> MotSequence:
    return generate(tmp_path_factory.mktemp("cars"), replace(SMALL, vehicles=2))


def test_vehicles_are_annotated_cars_among_the_same_walkers(
    small: MotSequence, with_cars: MotSequence, tmp_path: Path
) -> None:
    gt = with_cars.read_gt()
    cars, people = gt[gt[:, CLASS] == CAR], gt[gt[:, CLASS] == 1]
    assert set(np.unique(gt[:, CLASS])) == {1, CAR} and (gt[:, MARK] == 1).all()
    assert len(cars) > 40 and len(np.unique(cars[:, ID])) >= 2
    assert not set(cars[:, ID]) & set(people[:, ID])  # one id space for every object
    inner = cars[away_from_borders(cars, 320, 240) & (cars[:, VISIBILITY] > 0.9)]
    assert len(inner) > 10 and (inner[:, W] > 1.8 * inner[:, H]).all()  # wider than tall

    # The crowd draws from its own stream: the walkers' boxes are those of the scene without cars.
    def boxes(rows: np.ndarray) -> list[tuple[float, ...]]:
        return sorted(map(tuple, rows[:, [FRAME, X, Y, W, H]].tolist()))

    assert boxes(people) == boxes(small.read_gt())
    # Cars hide people: some walkers are less visible than without cars.
    assert people[:, VISIBILITY].sum() < small.read_gt()[:, VISIBILITY].sum()
    # Cars are drawn where their boxes are.
    difference = np.abs(images(with_cars) - images(small)).mean(axis=3)
    for frame, _, x, y, w, h in inner[:, :6].astype(int):
        assert difference[frame - 1, y : y + h, x : x + w].mean() > 8
    again = generate(tmp_path, replace(SMALL, vehicles=2))
    assert again.gt_path.read_bytes() == with_cars.gt_path.read_bytes()
    assert again.frame_path(30).read_bytes() == with_cars.frame_path(30).read_bytes()
    with pytest.raises(InputError, match="vehicles"):
        SynthConfig(vehicles=-1)


def test_invalid_config_and_existing_output(small: MotSequence) -> None:
    with pytest.raises(InputError, match="occlusion"):
        SynthConfig(occlusion=1.5)
    with pytest.raises(InputError, match="already exists"):
        generate_sequence(small.path.parent, SMALL, SEED)
    with pytest.raises(InputError, match="already exists"):
        generate_dataset(small.path.parent, SMALL, 2, SEED)


def test_dataset_names_seeds_and_no_leftovers(tmp_path: Path) -> None:
    config = replace(SMALL, frames=3)
    paths = generate_dataset(tmp_path, config, 2, seed=1)
    assert [path.name for path in paths] == ["SYNTH-01", "SYNTH-02"]
    assert paths[0].joinpath("gt", "gt.txt").read_bytes() != paths[1].joinpath("gt", "gt.txt").read_bytes()
    again = generate_dataset(tmp_path, config, 2, seed=1, overwrite=True)
    assert again == paths
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["SYNTH-01", "SYNTH-02"]


def test_cli(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "cstrack", "synth", str(tmp_path), "--sequences", "2", "--frames", "4"]
    command += [
        "--width",
        "160",
        "--height",
        "120",
        "--fake-background",
        "1",
        "--seed",
        "3",
        "--vehicles",
        "1",
    ]
    completed = subprocess.run(command, check=False, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == [str(tmp_path / "SYNTH-01"), str(tmp_path / "SYNTH-02")]
    assert MotSequence.open(tmp_path / "SYNTH-02").info.seq_length == 4
    classes = np.concatenate([MotSequence.open(path).read_gt()[:, CLASS] for path in tmp_path.iterdir()])
    assert CAR in classes  # --vehicles 1

    again = subprocess.run(command, check=False, capture_output=True, text=True)
    assert again.returncode == 2
    assert "Traceback" not in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert "already exists" in again.stderr


def test_speed_of_a_full_size_sequence(tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    """Recorded, not asserted: 640x480 frames per second, JPEG writing included."""
    config = SynthConfig(frames=60)
    start = time.perf_counter()
    generate_sequence(tmp_path, config, seed=0)
    frames_per_second = config.frames / (time.perf_counter() - start)
    record_property("synth_frames_per_second_640x480", round(frames_per_second, 1))
    print(f"synth: {frames_per_second:.0f} frames/s at 640x480")
    assert cv2.imread(str(tmp_path / "SYNTH-01" / "img1" / "000060.jpg")).shape == (480, 640, 3)


@pytest.mark.parametrize("motion", ["pan", "zoom", "shake", "walk"])
def test_moving_cameras(motion: str, tmp_path: Path) -> None:
    """Each motion renders deterministically, moves the view, and keeps the boxes on the figures:
    a box's pixels differ from the bare background, its surroundings mostly do not."""
    config = replace(SMALL, frames=24, camera_motion=motion, camera_period=2.0)
    sequence = generate(tmp_path / "a", config)
    assert generate(tmp_path / "b", config).gt_path.read_bytes() == sequence.gt_path.read_bytes()
    cameras = np.loadtxt(sequence.path / "camera.txt", delimiter=",")
    assert cameras[:, 0].tolist() == list(range(1, 25))
    warps = camera_warps(cameras[:, 1:])
    np.testing.assert_array_equal(warps[0], np.eye(2, 3))
    moved = np.abs(warps - np.eye(2, 3)).max(axis=(1, 2))
    assert (moved[1:] > 0.01).mean() > 0.5  # the camera moves on most frames
    gt = sequence.read_gt()
    assert len(gt) > 0
    assert (gt[:, X] >= 0).all() and (gt[:, Y] >= 0).all() and (gt[:, W] > 0).all() and (gt[:, H] > 0).all()
    assert (gt[:, X] + gt[:, W] <= config.width + 1e-6).all()
    assert (gt[:, Y] + gt[:, H] <= config.height + 1e-6).all()
    assert ((gt[:, VISIBILITY] >= 0) & (gt[:, VISIBILITY] <= 1)).all()


def test_a_pan_shifts_the_image_by_the_camera_motion(tmp_path: Path) -> None:
    """Frame t is frame t-1 moved by the exact warp (camera.txt): the background lines up."""
    sequence = generate(tmp_path, replace(SMALL, frames=12, camera_motion="pan", camera_period=2.0, noise=0))
    warps = camera_warps(np.loadtxt(sequence.path / "camera.txt", delimiter=",")[:, 1:])
    frames = images(sequence).astype(np.float32)
    for t in (4, 8):
        aligned = cv2.warpAffine(frames[t - 1], warps[t], (SMALL.width, SMALL.height))
        inside = cv2.warpAffine(np.ones_like(frames[t - 1]), warps[t], (SMALL.width, SMALL.height)) > 0.99
        # People walk and JPEG rounds, so only most of the difference goes away.
        assert (
            np.abs(aligned - frames[t])[inside].mean() < np.abs(frames[t - 1] - frames[t])[inside].mean() / 2
        )


def test_unknown_camera_motion_is_refused() -> None:
    with pytest.raises(
        InputError, match="camera_motion='tilt' \\(must be one of none, pan, zoom, shake, walk\\)"
    ):
        SynthConfig(camera_motion="tilt")

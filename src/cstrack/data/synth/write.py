"""Rendering a synthetic sequence frame by frame and writing it as MOTChallenge files (img1/,
gt/gt.txt, seqinfo.ini, camera.txt, fake_background.txt), whole or not at all."""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from os import PathLike
from pathlib import Path

import cv2
import numpy as np

from cstrack.data.mot import MOT_PEDESTRIAN, SequenceInfo, write_seqinfo
from cstrack.data.synth.motion import _Camera, _Car, _Crowd, _Traffic, _Walker, _world
from cstrack.data.synth.render import (
    _annotate,
    _Annotation,
    _Decoy,
    _motion_kernel,
    _paint_background,
    _paste,
    _render_car,
    _render_figure,
    _Sprite,
)
from cstrack.data.synth.scene import CAR, SynthConfig, _Ground
from cstrack.errors import InputError

__all__ = ["Progress", "generate_dataset", "generate_sequence", "sequence_seeds"]

#: Wraps the iterable of frame numbers being drawn, e.g. `tqdm`.
Progress = Callable[[Iterable[int]], Iterable[int]]

_NOISE_FIELDS = 3


def _render_frames(
    view: SynthConfig, seed: int
) -> tuple[list[_Decoy], _Camera | None, Iterator[tuple[np.ndarray, list[_Annotation]]]]:
    """The decoys, the moving camera (None when it stands still), and a generator of (BGR image,
    annotations) for frames 1..config.frames."""
    # A fifth stream for the cars and a sixth for the camera's shake: SeedSequence children do
    # not depend on how many are spawned, so the first four are those of a scene without cars.
    scene_rng, crowd_rng, decoy_rng, camera_rng, traffic_rng, shake_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(6)
    )
    config = _world(view)
    camera = None if config is view else _Camera(view, config, shake_rng)
    ground = _Ground.from_config(config)
    background, decoys = _paint_background(config, ground, scene_rng, decoy_rng)
    if config.noise > 0:
        backgrounds = [
            np.clip(background + camera_rng.normal(0, config.noise, background.shape), 0, 255).astype(
                np.uint8
            )
            for _ in range(_NOISE_FIELDS)
        ]
    else:
        backgrounds = [background]
    crowd = _Crowd(config, ground, crowd_rng)
    crowd.warm_up()
    traffic = _Traffic(config, ground, traffic_rng) if config.vehicles > 0 else None
    if traffic is not None:
        traffic.warm_up()

    def advance() -> None:
        crowd.advance()
        if traffic is not None:
            traffic.advance()

    def sprite_of(mover: _Walker | _Car) -> tuple[int, int, _Sprite]:
        kernel = _motion_kernel(*mover.step, config.blur * math.hypot(*mover.step))
        height = crowd.height_of(mover)  # a person's height where the mover is, times its size
        if isinstance(mover, _Car):
            car = _render_car(mover.look, height, mover.x, mover.y, mover.direction, kernel)
            return mover.identity, CAR, car
        stride = 0.12 * abs(math.cos(mover.slope)) + 0.03
        sprite = _render_figure(
            mover.look, height, mover.x, mover.y, mover.phase, stride, mover.direction, kernel
        )
        return mover.identity, MOT_PEDESTRIAN, sprite

    def frames() -> Iterator[tuple[np.ndarray, list[_Annotation]]]:
        for index in range(config.frames):
            if index > 0:
                advance()
                if camera_rng.uniform() < config.drop_frames:
                    advance()
            image = backgrounds[index % len(backgrounds)].copy()
            movers: list[_Walker | _Car] = [walker for walker in crowd.members if crowd.in_view(walker)]
            if traffic is not None:
                movers += [car for car in traffic.members if traffic.in_view(car)]
            sprites = []
            for mover in sorted(movers, key=lambda mover: (mover.y, mover.identity)):
                sprite = sprite_of(mover)
                _paste(image, sprite[2])
                sprites.append(sprite)
            if camera is None:
                yield image, _annotate(sprites, config.width, config.height)
            else:
                yield camera.shoot(index, image, sprites)

    return decoys, camera, frames()


def _write_sequence(
    folder: Path, config: SynthConfig, seed: int, name: str, progress: Progress | None
) -> None:
    """Write img1/, gt/gt.txt, seqinfo.ini (and fake_background.txt) into `folder`."""
    (folder / "img1").mkdir(parents=True)
    (folder / "gt").mkdir()
    decoys, camera, frames = _render_frames(config, seed)
    frame_numbers = range(1, config.frames + 1)
    rows: list[tuple[int, int, _Annotation]] = []
    first_seen: dict[int, int] = {}
    for frame, (image, frame_annotations) in zip(
        progress(frame_numbers) if progress else frame_numbers, frames
    ):
        path = folder / "img1" / f"{frame:06d}.jpg"
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality]):
            raise InputError(path, "cannot write image")
        for annotation in sorted(frame_annotations, key=lambda annotation: annotation.identity):
            first_seen.setdefault(annotation.identity, len(first_seen) + 1)
            rows.append((frame, first_seen[annotation.identity], annotation))
    with open(folder / "gt" / "gt.txt", "w", encoding="utf-8", newline="\n") as stream:
        for frame, identity, annotation in sorted(rows, key=lambda row: (row[0], row[1])):
            x0, y0, x1, y1 = annotation.box
            width, height = (x1 - x0, y1 - y0) if camera is None else (round(x1 - x0, 2), round(y1 - y0, 2))
            stream.write(
                f"{frame},{identity},{x0},{y0},{width},{height},1,{annotation.object_class},"
                f"{annotation.visibility:.4f}\n"
            )
    if camera is not None:
        with open(folder / "camera.txt", "w", encoding="utf-8", newline="\n") as stream:
            for index in range(config.frames):
                values = ",".join(f"{value + 0.0:.6f}" for value in camera.matrix(index).ravel())
                stream.write(f"{index + 1},{values}\n")
    if decoys:
        with open(folder / "fake_background.txt", "w", encoding="utf-8", newline="\n") as stream:
            stream.write("x,y,w,h,kind\n")
            for decoy in decoys:
                x0, y0, x1, y1 = decoy.box
                stream.write(f"{x0},{y0},{x1 - x0},{y1 - y0},{decoy.kind}\n")
    write_seqinfo(
        folder / "seqinfo.ini",
        SequenceInfo(name, config.fps, config.frames, config.width, config.height, "img1", ".jpg"),
    )


def _replace_folder(staging: Path, target: Path) -> None:
    """Move a finished folder into place, replacing an older one only after the new one is whole."""
    if not target.exists():
        staging.rename(target)
        return
    retired = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    target.rename(retired)
    try:
        staging.rename(target)
    except OSError:
        retired.rename(target)
        raise
    shutil.rmtree(retired)


def generate_sequence(
    out_dir: str | PathLike,
    config: SynthConfig = SynthConfig(),
    seed: int = 0,
    *,
    name: str = "SYNTH-01",
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Render one sequence into `out_dir/name` and return that folder.

    The sequence is written into a hidden folder beside it and renamed into place when complete,
    so an interrupted run leaves nothing half-written. An existing folder is an InputError unless
    `overwrite`. `progress` wraps the frame numbers (e.g. `tqdm`).
    """
    out_dir = Path(out_dir)
    target = out_dir / name
    if target.exists() and not overwrite:
        raise InputError(target, "already exists; overwrite (--overwrite) to replace it")
    staging = out_dir / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_sequence(staging, config, seed, name, progress)
        _replace_folder(staging, target)
    except OSError as error:
        raise InputError(target, f"cannot write: {error.strerror or error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def sequence_seeds(seed: int, count: int) -> list[int]:
    """Independent per-sequence seeds derived from one dataset seed."""
    return [int(value) for value in np.random.SeedSequence(seed).generate_state(count)]


def generate_dataset(
    out_dir: str | PathLike,
    config: SynthConfig = SynthConfig(),
    sequences: int = 1,
    seed: int = 0,
    *,
    prefix: str = "SYNTH",
    overwrite: bool = False,
    progress: Progress | None = None,
) -> list[Path]:
    """Render `sequences` sequences `out_dir/PREFIX-01`, `-02` ..., each with its own derived seed."""
    if sequences < 1:
        raise InputError(None, f"sequences must be >= 1, got {sequences}")
    digits = max(2, len(str(sequences)))
    names = [f"{prefix}-{index:0{digits}d}" for index in range(1, sequences + 1)]
    existing = [name for name in names if (Path(out_dir) / name).exists()]
    if existing and not overwrite:
        raise InputError(Path(out_dir) / existing[0], "already exists; overwrite (--overwrite) to replace it")
    return [
        generate_sequence(out_dir, config, sequence_seed, name=name, overwrite=overwrite, progress=progress)
        for name, sequence_seed in zip(names, sequence_seeds(seed, sequences))
    ]

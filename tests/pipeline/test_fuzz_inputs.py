"""Seeded fuzzing of what users hand `cstrack track` (issue 23): tracker-config YAML and image
folders. Every case ends in a result or one short InputError line: never a traceback, never
memory beyond a fixed bound."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data.sources import open_sources
from cstrack.errors import InputError
from cstrack.pipeline.tracker_config import RULES, TrackerConfig

CASES = 200
MESSAGE_LIMIT = 400  # characters of an error beyond the file's path

SCALARS = [
    "0.3",
    "1",
    "-1",
    "1e400",
    ".nan",
    "~",
    "true",
    "'0.5'",
    "yes",
    "0x10",
    "2024-01-01",
    "!!binary aGk=",
]


def yaml_case(rng: random.Random) -> str:
    """One tracker configuration, well or badly formed."""
    field = rng.choice([*RULES, "unknown_key", "<<", "'<<'", "1", "[a]"])
    kind = rng.randrange(9)
    if kind == 0:  # an alias bomb
        levels = rng.randrange(2, 10)
        rows = ["&a0 [" + ", ".join(["lol"] * 9) + "]"]
        rows += [f"&a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]" for k in range(1, levels)]
        return f"{field}: [{', '.join(rows)}]\n"
    if kind == 1:  # a merge key
        return f"<<: {{{rng.choice(list(RULES))}: {rng.choice(SCALARS)}}}\n"
    if kind == 2:  # deep nesting
        depth = rng.randrange(1, 400)
        return f"{field}: " + "[" * depth + "]" * depth + "\n"
    if kind == 3:  # a huge scalar
        return f"{field}: {rng.choice(['', chr(39)])}{'9' * rng.randrange(1, 20_000)}\n"
    if kind == 4:  # wrong types
        return f"{field}: {rng.choice(['[1, 2]', '{a: 1}', '!!set {a}', '[[[0.5]]]'])}\n"
    if kind == 5:  # random bytes
        return "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(0, 200)))
    lines = [f"{rng.choice(list(RULES))}: {rng.choice(SCALARS)}" for _ in range(rng.randrange(0, 6))]
    return "\n".join(lines) + "\n"


def test_tracker_config_yaml(tmp_path: Path, address_space_limit):
    rng = random.Random(23)
    path = tmp_path / "fuzz.yaml"
    outcomes = {"loaded": 0, "refused": 0}
    with address_space_limit(512 << 20):
        for _ in range(CASES):
            path.write_text(yaml_case(rng), encoding="utf-8", errors="surrogatepass")
            try:
                assert isinstance(TrackerConfig.load(path), TrackerConfig)
                outcomes["loaded"] += 1
            except InputError as error:
                message = str(error)
                assert "\n" not in message and len(message) < len(str(path)) + MESSAGE_LIMIT, message[:200]
                outcomes["refused"] += 1
    assert outcomes["loaded"] and outcomes["refused"]


def png_header(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + header
        + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    )


def image_case(rng: random.Random, folder: Path, index: int) -> None:
    """One file of an image folder: good, empty, truncated, of another size, misnamed, a bomb."""
    size = rng.choice([(64, 48), (64, 48), (33, 17), (1, 1), (200, 90)])
    image = np.full((size[1], size[0], 3), rng.randrange(256), np.uint8)
    extension = rng.choice([".jpg", ".png", ".bmp"])
    ok, encoded = cv2.imencode(extension, image)
    data = encoded.tobytes()
    kind = rng.randrange(6)
    if kind == 1:
        data = b""
    elif kind == 2:
        data = data[: rng.randrange(1, max(2, len(data)))]
    elif kind == 3:
        extension = rng.choice([".jpg", ".png"]) if extension == ".bmp" else ".bmp"  # the wrong name
    elif kind == 4:
        data = png_header(rng.choice([30000, 1 << 20, 0]), rng.choice([30000, 1, 0])) + bytes(
            rng.randrange(64)
        )
    elif kind == 5:
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    (folder / f"{index:04d}{extension}").write_bytes(data)


@pytest.mark.parametrize("seed", range(6))
def test_image_folders(tmp_path: Path, address_space_limit, seed: int):
    rng = random.Random(seed)
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(rng.randrange(1, 12)):
        image_case(rng, folder, index)
    with address_space_limit(512 << 20):
        (source,) = open_sources(str(folder))
        for _number, image in source:
            assert image is None or (image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3)

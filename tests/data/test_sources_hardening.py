"""Frame sources on hostile inputs (issue 23): pixel bombs, empty and unreadable files, seqinfo.ini
that disagrees with its images, folders that look like camera indices."""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data.sources import (
    MAX_IMAGE_PIXELS,
    ImageFolderSource,
    StreamSource,
    declared_size,
    open_sources,
    read_image,
)
from cstrack.errors import InputError

SEQINFO = "[Sequence]\nname={name}\nframeRate=30\nseqLength={length}\nimWidth=64\nimHeight=48\nimDir=img1\nimExt={ext}\n"


def png_bomb(side: int) -> bytes:
    """A valid 1-bit grey PNG of side x side pixels, all black: a few hundred KB that OpenCV
    decodes to side * side * 3 bytes."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte, then the packed bits

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * side, 9))
        + chunk(b"IEND", b"")
    )


def sequence(root: Path, name: str, images: int, ext: str = ".jpg", length: int | None = None) -> Path:
    folder = root / name
    (folder / "img1").mkdir(parents=True)
    for k in range(1, images + 1):
        cv2.imwrite(str(folder / "img1" / f"{k:06d}.jpg"), np.full((48, 64, 3), 90, np.uint8))
    text = SEQINFO.format(name=name, length=images if length is None else length, ext=ext)
    (folder / "seqinfo.ini").write_text(text)
    return folder


def test_declared_sizes_of_every_header_format():
    image = np.zeros((37, 53, 3), np.uint8)
    for extension in (".png", ".jpg", ".bmp", ".webp", ".tif"):
        ok, data = cv2.imencode(extension, image)
        assert ok and declared_size(data.tobytes()) == (53, 37), extension
    assert declared_size(png_bomb(30000)[:64]) == (30000, 30000)
    assert declared_size(b"GIF89a") is None


def test_pixel_bomb_is_skipped_before_decoding(tmp_path: Path, caplog, address_space_limit):
    """30000 x 30000 pixels in a small PNG: OpenCV would allocate 2.7 GB before failing."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb(30000))
    assert path.stat().st_size < 1 << 20
    with caplog.at_level(logging.WARNING), address_space_limit(512 << 20):
        assert read_image(path) is None
    assert f"30000 x 30000 pixels, over the limit of {MAX_IMAGE_PIXELS}" in caplog.text


def test_zero_byte_image_is_skipped_with_a_warning(tmp_path: Path, caplog):
    good, empty = tmp_path / "1.jpg", tmp_path / "2.jpg"
    cv2.imwrite(str(good), np.zeros((8, 8, 3), np.uint8))
    empty.write_bytes(b"")
    source = ImageFolderSource([good, empty], "frames", 30.0)
    with caplog.at_level(logging.WARNING):
        frames = list(source)
    assert frames[0][1] is not None and frames[1] == (2, None)
    assert "empty file (0 bytes)" in caplog.text


def test_unreadable_folder_is_one_input_error(tmp_path: Path, monkeypatch):
    """Mode 000 (simulated: the tests may run as root, whom permissions do not stop)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    is_file = Path.is_file

    def denied(self: Path) -> bool:
        if self.parent == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return is_file(self)

    monkeypatch.setattr(Path, "is_file", denied)
    with pytest.raises(InputError, match="cannot read: Permission denied"):
        open_sources(str(folder))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads mode-000 folders")
def test_mode_000_folder_for_real(tmp_path: Path):
    folder = sequence(tmp_path, "SEQ", 2)
    folder.chmod(0)
    try:
        with pytest.raises(InputError, match="cannot read"):
            open_sources(str(folder))
    finally:
        folder.chmod(0o755)


def test_im_ext_matching_no_image_names_the_field(tmp_path: Path):
    folder = sequence(tmp_path, "SEQ", 3, ext=".png")
    with pytest.raises(InputError) as error:
        open_sources(str(folder))
    assert error.value.path == str(folder / "seqinfo.ini")
    assert "imExt=.png matches no image of img1/, which holds 3 .jpg frame(s): set imExt=.jpg" in str(
        error.value
    )


def test_seq_length_below_the_images_warns_with_both_numbers(tmp_path: Path, caplog):
    folder = sequence(tmp_path, "SEQ", 5, length=3)
    with caplog.at_level(logging.WARNING):
        (source,) = open_sources(str(folder))
    assert len(source) == 3
    assert "seqLength=3 but img1/ holds frames up to 5: frames 1-3 only" in caplog.text


def test_bad_seqinfo_in_a_dataset_root_is_named(tmp_path: Path):
    sequence(tmp_path, "SEQ-A", 2)
    bad = sequence(tmp_path, "SEQ-B", 2)
    (bad / "seqinfo.ini").write_text(SEQINFO.format(name="SEQ-B", length="many", ext=".jpg"))
    with pytest.raises(InputError) as error:
        open_sources(str(tmp_path))
    assert error.value.path == str(bad / "seqinfo.ini") and "seqLength is not an integer" in str(error.value)


def test_existing_folder_named_like_a_camera_index_is_a_folder(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = Path("2024")
    folder.mkdir()
    cv2.imwrite(str(folder / "1.jpg"), np.zeros((8, 8, 3), np.uint8))
    (source,) = open_sources("2024")
    assert isinstance(source, ImageFolderSource) and source.name == "2024"
    assert not isinstance(source, StreamSource)

"""Many sources named at once: folders of videos, globs, @lists, and output names that stay unique."""

from __future__ import annotations

from pathlib import Path

import pytest

from cstrack.data.source_list import SourceItem, expand_sources, names_many
from cstrack.errors import InputError


def touch(path: Path) -> Path:
    """An empty file: listing reads names only, no video is decoded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Videos in nested folders (two of one name), a frames folder, a sequence, clutter."""
    root = tmp_path / "archive"
    for name in (
        "cam1/0001.mp4",
        "cam1/0010.MOV",
        "cam1/0002.mp4",
        "cam2/0001.mp4",
        "notes.txt",
        ".hidden/x.mp4",
    ):
        touch(root / name)
    touch(root / "stills" / "a.jpg")
    touch(root / "stills" / "ignored.mp4")  # a folder with images is one frames source
    touch(root / "mot" / "SEQ-1" / "seqinfo.ini")
    touch(root / "mot" / "SEQ-1" / "img1" / "000001.jpg")
    return root


def names(items: list[SourceItem]) -> list[str]:
    return [item.name for item in items]


def test_a_folder_of_videos_keeps_relative_paths_in_natural_order(archive: Path):
    items = expand_sources([archive])
    assert names(items) == ["cam1/0001", "cam1/0002", "cam1/0010", "cam2/0001", "mot/SEQ-1", "stills"]
    assert items[0] == SourceItem(str(archive / "cam1" / "0001.mp4"), "cam1/0001")
    assert items[0].folder == "cam1" and items[-1].folder == ""


def test_single_sources_are_named_as_open_sources_names_them(archive: Path):
    sequence = archive / "mot" / "SEQ-1"
    assert names(expand_sources([archive / "cam1" / "0001.mp4"])) == ["0001"]
    assert names(expand_sources([sequence])) == ["SEQ-1"]
    assert names(expand_sources([sequence / "img1"])) == ["SEQ-1"]
    assert names(expand_sources([0, "rtsp://host:554/live"])) == ["camera0", "host_554_live"]


def test_sources_of_one_file_name_in_other_folders_are_named_by_their_folders(archive: Path):
    items = expand_sources([archive / "cam1" / "0001.mp4", archive / "cam2" / "0001.mp4"])
    assert names(items) == ["cam1/0001", "cam2/0001"]


def test_globs_and_lists(archive: Path, tmp_path: Path):
    assert names(expand_sources([str(archive / "cam*" / "0001.mp4")])) == ["cam1/0001", "cam2/0001"]
    assert names(expand_sources([str(archive / "**" / "*.mp4")])) == [
        "cam1/0001", "cam1/0002", "cam2/0001", "stills/ignored",
    ]  # fmt: skip
    listing = archive / "list.txt"
    listing.write_text(
        "# cameras of the north gate\n\ncam1/0002.mp4\n  cam2/0001.mp4  \nhttp://example.org/feed\n"
    )
    assert [(item.spec, item.name) for item in expand_sources([f"@{listing}"])] == [
        ("http://example.org/feed", "example.org_feed"),
        (str(archive / "cam1" / "0002.mp4"), "cam1/0002"),
        (str(archive / "cam2" / "0001.mp4"), "cam2/0001"),
    ]


def test_mistakes_are_one_line_errors(archive: Path, tmp_path: Path):
    with pytest.raises(InputError, match="no such file or folder"):
        expand_sources([tmp_path / "missing.mp4"])
    with pytest.raises(InputError, match="no file or folder matches"):
        expand_sources([str(tmp_path / "*.avi")])
    with pytest.raises(InputError, match="cannot read this list"):
        expand_sources([f"@{tmp_path / 'absent.txt'}"])
    listing = touch(tmp_path / "list.txt")
    listing.write_text("archive/cam1/0001.mp4\narchive/cam9.mp4\n")
    with pytest.raises(InputError) as error:
        expand_sources([f"@{listing}"])
    assert str(error.value) == f"{listing}:2: {tmp_path / 'archive' / 'cam9.mp4'}: no such file or folder"
    with pytest.raises(InputError, match="no images, video or MOTChallenge sequences"):
        expand_sources([(tmp_path / "empty").mkdir() or tmp_path / "empty"])
    with pytest.raises(InputError, match=r"would go where those of .*0001\.mp4 go \(cam1/0001\.txt\)"):
        expand_sources([archive, archive / "cam1" / "0001.mp4"])  # named twice
    touch(archive / "cam1" / "0001.avi")
    with pytest.raises(InputError, match=r"0001\.mp4: its results would go where those of .*0001\.avi go"):
        expand_sources([archive])


def test_names_many_tells_a_batch_from_one_source(archive: Path):
    assert names_many(archive) and names_many(archive / "mot")
    assert names_many("@list.txt") and names_many(str(archive / "*.mp4"))
    assert not names_many(archive / "cam1" / "0001.mp4") and not names_many(archive / "stills")
    assert not names_many(archive / "mot" / "SEQ-1") and not names_many("0")

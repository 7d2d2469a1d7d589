"""MOTChallenge to the JDE layout and back: labels, rules, frame ranges, identities, data configs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data import MotSequence, SequenceInfo, write_seqinfo
from cstrack.data.jde import label_path_for, read_data_config, read_labels, read_list_file
from cstrack.data.mot_to_jde import from_mot
from cstrack.data.synth.scene import SynthConfig
from cstrack.data.synth.write import generate_dataset
from cstrack.errors import InputError

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "data" / "example.yaml"
PETS = "PETS09-S2L1"
TINY = SynthConfig(frames=8, width=160, height=120, fps=8, people=4)


def expected_label(row: np.ndarray, width: int, height: int) -> np.ndarray:
    """cx, cy, w, h of a MOT row, worked out the plain way (the box inside the image)."""
    x, y, w, h = row[2:6]
    return np.array([(x + w / 2) / width, (y + h / 2) / height, w / width, h / height])


def labels_of(out_dir: Path, sequence: str, frame: int) -> np.ndarray:
    return read_labels(label_path_for(out_dir / "images" / sequence / f"{frame:06d}.jpg"))


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny synthetic sequences SYNTH-01 and SYNTH-02."""
    root = tmp_path_factory.mktemp("synthetic")
    generate_dataset(root, TINY, 2, seed=11)
    return root


def test_synthetic_round_trip_with_unique_ids(synthetic_root: Path, tmp_path: Path) -> None:
    summary = from_mot(synthetic_root, tmp_path, name="synth")
    assert summary.list_path == tmp_path / "synth.train"
    assert summary.sequences == ("SYNTH-01", "SYNTH-02") and summary.images == 16
    assert (tmp_path / "synth.train").read_text().splitlines()[:2] == [
        "images/SYNTH-01/000001.jpg",
        "images/SYNTH-01/000002.jpg",
    ]
    images = read_list_file(summary.list_path)
    assert len(images) == 16 and all(image.is_file() for image in images)

    ids_per_sequence, boxes = [], 0
    for name in summary.sequences:
        sequence = MotSequence.open(synthetic_root / name)
        gt = sequence.read_gt()
        id_offset = sum(len(ids) for ids in ids_per_sequence)
        mot_ids = np.unique(gt[:, 1])
        ids = set()
        for frame in range(1, 9):
            assert (tmp_path / "images" / name / f"{frame:06d}.jpg").read_bytes() == sequence.frame_path(
                frame
            ).read_bytes()
            labels = labels_of(tmp_path, name, frame)
            rows = gt[gt[:, 0] == frame]
            assert len(labels) == len(rows)
            for row, label in zip(rows[np.argsort(rows[:, 1])], labels):
                assert label[0] == 0
                assert label[1] == id_offset + np.searchsorted(mot_ids, row[1])
                np.testing.assert_allclose(label[2:], expected_label(row, 160, 120), atol=1e-6)
            ids |= set(labels[:, 1].astype(int).tolist())
            boxes += len(labels)
        ids_per_sequence.append(ids)
    assert not ids_per_sequence[0] & ids_per_sequence[1]
    assert ids_per_sequence[0] | ids_per_sequence[1] == set(range(summary.identities))
    assert boxes == summary.boxes


def test_frame_range_is_honoured_and_cut_to_the_sequence(synthetic_root: Path, tmp_path: Path) -> None:
    summary = from_mot(synthetic_root / "SYNTH-02", tmp_path, frames=(6, 100))
    assert summary.list_path.name == "SYNTH-02.train"
    assert [path.name for path in read_list_file(summary.list_path)] == [
        "000006.jpg",
        "000007.jpg",
        "000008.jpg",
    ]
    assert sorted(path.name for path in (tmp_path / "images" / "SYNTH-02").iterdir()) == [
        "000006.jpg",
        "000007.jpg",
        "000008.jpg",
    ]
    assert sorted(path.name for path in (tmp_path / "labels_with_ids" / "SYNTH-02").iterdir()) == [
        "000006.txt",
        "000007.txt",
        "000008.txt",
    ]
    with pytest.raises(InputError, match="no frames"):
        from_mot(synthetic_root / "SYNTH-02", tmp_path, frames=(9, 20))


def test_pets_frames_1_to_5(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / PETS
    summary = from_mot(source, tmp_path, frames=(1, 5))
    assert read_list_file(summary.list_path) == [
        tmp_path / "images" / PETS / f"{frame:06d}.jpg" for frame in range(1, 6)
    ]
    assert len(list((tmp_path / "labels_with_ids" / PETS).iterdir())) == 5
    assert summary.identities == 3  # MOT ids 9, 15, 19 become 0, 1, 2
    gt = MotSequence.open(source).read_gt()
    labels = labels_of(tmp_path, PETS, 1)
    assert labels[:, 1].tolist() == [0, 1, 2]
    for label, mot_id in zip(labels, (9, 15, 19)):
        row = gt[(gt[:, 0] == 1) & (gt[:, 1] == mot_id)][0]
        np.testing.assert_allclose(label[2:], expected_label(row, 768, 576), atol=1e-6)
    # frame 1, id 9: 499,158,31.03,75.17 in a 768x576 image
    np.testing.assert_allclose(
        labels[0], [0, 0, 514.515 / 768, 195.585 / 576, 31.03 / 768, 75.17 / 576], atol=1e-6
    )
    assert (tmp_path / "images" / PETS / "000003.jpg").read_bytes() == (
        source / "img1" / "000003.jpg"
    ).read_bytes()


def test_pets_ignored_rows_are_dropped(shared_data: Path, tmp_path: Path) -> None:
    """Frames 147-149 hold MOT id 12 with conf 0: it must not become a label."""
    from_mot(shared_data / PETS, tmp_path, frames=(147, 149))
    gt = MotSequence.open(shared_data / PETS).read_gt()
    ignored = gt[(gt[:, 0] >= 147) & (gt[:, 0] <= 149) & (gt[:, 6] == 0)]
    assert set(ignored[:, 1]) == {12}
    for frame in (147, 148, 149):
        labels = labels_of(tmp_path, PETS, frame)
        rows = gt[gt[:, 0] == frame]
        assert len(labels) == int((rows[:, 6] != 0).sum())
        dropped = expected_label(ignored[ignored[:, 0] == frame][0], 768, 576)
        assert not np.isclose(labels[:, 2:], dropped, atol=1e-4).all(axis=1).any()


def make_mot17_sequence(folder: Path) -> Path:
    """Two frames of 100x80 with one row per MOT16/17 rule."""
    write_seqinfo(folder / "seqinfo.ini", SequenceInfo(folder.name, 30, 2, 100, 80, "img1", ".jpg"))
    (folder / "img1").mkdir()
    for frame in (1, 2):
        cv2.imwrite(str(folder / "img1" / f"{frame:06d}.jpg"), np.full((80, 100, 3), 40 * frame, np.uint8))
    (folder / "gt").mkdir()
    (folder / "gt" / "gt.txt").write_text(
        "1,5,10,10,20,40,1,1,0.9\n"  # kept
        "1,6,30,10,20,40,0,1,1.0\n"  # mark 0: ignored
        "1,7,50,10,20,40,1,7,1.0\n"  # class 7 (static person): not a pedestrian
        "1,8,70,10,20,40,1,1,0.1\n"  # hardly visible
        "2,5,-10,60,30,40,1,1,0.5\n"  # clipped to x 0..20, y 60..80
    )
    return folder


def test_mot17_rules_and_clipping(tmp_path: Path) -> None:
    sequence = make_mot17_sequence(tmp_path / "MOT17-XX")
    out = tmp_path / "out"
    summary = from_mot(sequence, out, min_visibility=0.25)
    assert summary.identities == 1 and summary.boxes == 2
    np.testing.assert_allclose(labels_of(out, "MOT17-XX", 1), [[0, 0, 0.2, 0.375, 0.2, 0.5]])
    np.testing.assert_allclose(labels_of(out, "MOT17-XX", 2), [[0, 0, 0.1, 0.875, 0.2, 0.25]])
    everyone_visible = from_mot(sequence, out, name="all")
    assert everyone_visible.boxes == 3 and everyone_visible.identities == 2


def test_label_path_for() -> None:
    assert label_path_for("data/images/SEQ/000001.jpg") == Path("data/labels_with_ids/SEQ/000001.txt")
    assert label_path_for("/images/x/images/SEQ/1.png") == Path("/images/x/labels_with_ids/SEQ/1.txt")
    with pytest.raises(InputError, match="images"):
        label_path_for("data/frames/000001.jpg")


@pytest.mark.parametrize(
    ("second_line", "problem"),
    [
        ("0 1 0.5 0.5 0.1", "expected 6 fields"),
        ("0 1 0.5 x 0.1 0.1", "not a number"),
        ("0 1 1.5 0.5 0.1 0.1", "centre must be normalised"),
        ("0 1 0.5 0.5 0 0.1", "width and height"),
        ("0 1.5 0.5 0.5 0.1 0.1", "id must be an integer"),
        ("0 1 nan 0.5 0.1 0.1", "finite"),
    ],
)
def test_malformed_label_names_file_and_line(tmp_path: Path, second_line: str, problem: str) -> None:
    path = tmp_path / "000001.txt"
    path.write_text(f"0 3 0.5 0.5 0.1 0.2\n\n{second_line}\n")
    with pytest.raises(InputError, match=problem) as caught:
        read_labels(path)
    assert caught.value.path == str(path) and caught.value.line == 3
    assert str(caught.value).startswith(f"{path}:3: ")


def test_read_labels_empty_and_valid(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert read_labels(empty).shape == (0, 6)
    valid = tmp_path / "valid.txt"
    valid.write_text("0 -1 0.5 0.5 0.1 0.2\n0 4 1 0 1 1\n")
    np.testing.assert_array_equal(read_labels(valid), [[0, -1, 0.5, 0.5, 0.1, 0.2], [0, 4, 1, 0, 1, 1]])
    with pytest.raises(InputError, match="file not found"):
        read_labels(tmp_path / "missing.txt")


def test_example_data_config_offsets(synthetic_root: Path, tmp_path: Path) -> None:
    """The example config, laid out as its comments say, with synthetic data standing in for PETS."""
    config_path = tmp_path / "configs" / "data" / "example.yaml"
    config_path.parent.mkdir(parents=True)
    shutil.copy(EXAMPLE_CONFIG, config_path)
    jde = tmp_path / "data" / "jde"
    pets = from_mot(synthetic_root / "SYNTH-01", jde / "pets", frames=(1, 5), name=PETS)
    pets_val = from_mot(synthetic_root / "SYNTH-01", jde / "pets", frames=(6, 8), name=f"{PETS}-val")
    synth = from_mot(synthetic_root, jde / "synth", name="synth")

    config = read_data_config(config_path)
    assert list(config.train.datasets) == ["pets", "synth"]
    train_pets, train_synth = config.train.datasets.values()
    assert (
        train_pets.images == tuple(read_list_file(pets.list_path.resolve())) and len(train_pets.images) == 5
    )
    assert (train_pets.num_ids, train_pets.id_offset) == (pets.identities, 0)
    assert (train_synth.num_ids, train_synth.id_offset) == (synth.identities, pets.identities)
    assert config.train.num_ids == pets.identities + synth.identities
    assert len(config.train.images) == 5 + 16
    val = config.val.datasets["pets_val"]
    assert (val.num_ids, val.id_offset, config.val.num_ids) == (pets_val.identities, 0, pets_val.identities)


@pytest.mark.parametrize(
    ("text", "problem", "line"),
    [
        ("train: [a\n", "not valid YAML", 2),
        ("train:\n  a: a.train\ntest:\n  b: b.train\n", "unknown key", None),
        ("val:\n  a: a.train\n", "'train' key", None),
        ("train:\n  a: 3\n", "must be a list file path", None),
        ("train:\n  a: missing.train\n", "file not found", None),
    ],
)
def test_bad_data_config(tmp_path: Path, text: str, problem: str, line: int | None) -> None:
    path = tmp_path / "data.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=problem) as caught:
        read_data_config(path)
    assert caught.value.line == line


def run_cstrack(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cstrack", *map(str, args)], check=False, capture_output=True, text=True
    )


def test_cli_converts_and_reports_missing_input(synthetic_root: Path, tmp_path: Path) -> None:
    completed = run_cstrack("data", "from-mot", synthetic_root, tmp_path, "--frames", "2-3", "--name", "tiny")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"{tmp_path / 'tiny.train'}: 4 images")
    assert len(read_list_file(tmp_path / "tiny.train")) == 4

    missing = tmp_path / "no-such-sequence"
    completed = run_cstrack("data", "from-mot", missing, tmp_path / "out")
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines() == [f"cstrack data: error: {missing}: folder not found"]
    assert not (tmp_path / "out").exists()


def test_classes_keep_mot_classes_in_order_and_write_a_named_config(tmp_path: Path) -> None:
    """--classes 3,1: cars become label class 0, pedestrians 1; the data config names them."""
    sequence = make_mot17_sequence(tmp_path / "MOT17-XX")
    with (sequence / "gt" / "gt.txt").open("a") as stream:
        stream.write("2,9,40,20,50,25,1,3,1.0\n")  # a car
        stream.write("2,10,40,50,50,25,0,3,1.0\n")  # a car marked 0: ignored
    out = tmp_path / "out"
    summary = from_mot(sequence, out, classes=(3, 1), min_visibility=0.25, name="two")
    assert summary.class_names == ("car", "pedestrian") and summary.data_config == out / "two.yaml"
    assert summary.boxes == 3 and summary.identities == 2
    np.testing.assert_allclose(labels_of(out, "MOT17-XX", 1), [[1, 0, 0.2, 0.375, 0.2, 0.5]])
    np.testing.assert_allclose(
        labels_of(out, "MOT17-XX", 2), [[1, 0, 0.1, 0.875, 0.2, 0.25], [0, 1, 0.65, 0.40625, 0.5, 0.3125]]
    )
    text = summary.data_config.read_text()
    assert "names: [car, pedestrian]\ntrain:\n  two: two.train\n" in text
    config = read_data_config(summary.data_config)
    assert config.names == ("car", "pedestrian") and config.train.datasets["two"].num_ids == 2

    # The default keeps pedestrians only, as class 0, and writes no data config.
    default = from_mot(sequence, out, min_visibility=0.25, name="one")
    assert default.class_names == ("pedestrian",) and default.data_config is None
    assert not (out / "one.yaml").exists()
    np.testing.assert_allclose(labels_of(out, "MOT17-XX", 2), [[0, 0, 0.1, 0.875, 0.2, 0.25]])
    # Explicitly pedestrians: the same labels, and a data config naming them.
    explicit = from_mot(sequence, out, min_visibility=0.25, name="ped", classes=[1])
    assert explicit.boxes == default.boxes and read_data_config(out / "ped.yaml").names == ("pedestrian",)

    for classes, problem in (
        ((), "at least one"),
        ((1, 14), "14 is no MOTChallenge class"),
        ((1, 1), "once"),
    ):
        with pytest.raises(InputError, match=problem):
            from_mot(sequence, out, classes=classes)


def test_classes_on_mot15_tables_keep_every_row_as_a_pedestrian(synthetic_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "MOT15-XX"
    shutil.copytree(synthetic_root / "SYNTH-01", source)
    gt = (source / "gt" / "gt.txt").read_text().splitlines()
    (source / "gt" / "gt.txt").write_text("".join(f"{line.rsplit(',', 3)[0]},1,-1,-1,-1\n" for line in gt))
    pedestrians = from_mot(source, tmp_path / "a", classes=(3, 1))
    assert pedestrians.boxes == len(gt)
    assert set(labels_of(tmp_path / "a", "MOT15-XX", 1)[:, 0]) == {1}
    assert from_mot(source, tmp_path / "b", classes=(3,)).boxes == 0


def write_dataset(root: Path, label_lines: str, names: str | None) -> Path:
    """One image with the given labels, and a data config (with a `names:` line when given)."""
    (root / "images").mkdir(parents=True)
    (root / "labels_with_ids").mkdir()
    (root / "images" / "000001.jpg").write_bytes(b"")
    (root / "labels_with_ids" / "000001.txt").write_text(label_lines)
    (root / "d.train").write_text("images/000001.jpg\n")
    config = root / "data.yaml"
    config.write_text(("" if names is None else f"names: {names}\n") + "train:\n  d: d.train\n")
    return config


def test_data_config_names(tmp_path: Path) -> None:
    config = write_dataset(tmp_path / "ok", "0 1 0.5 0.5 0.1 0.2\n1 2 0.5 0.5 0.1 0.2\n", "[pedestrian, car]")
    assert read_data_config(config).names == ("pedestrian", "car")
    assert read_data_config(write_dataset(tmp_path / "none", "0 1 0.5 0.5 0.1 0.2\n", None)).names is None

    too_high = write_dataset(
        tmp_path / "high", "0 1 0.5 0.5 0.1 0.2\n2 2 0.5 0.5 0.1 0.2\n", "[pedestrian, car]"
    )
    with pytest.raises(
        InputError, match=r"class 2 but .* names 2 class\(es\) \(pedestrian, car: 0..1\)"
    ) as caught:
        read_data_config(too_high)
    assert caught.value.path == str(tmp_path / "high" / "labels_with_ids" / "000001.txt")


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        ("pedestrian", "must be a list of class names"),
        ("[]", "must be a list of class names"),
        ("[pedestrian, 3]", "entry 1 must be a non-empty printable string"),
        ("[pedestrian, '']", "entry 1 must be a non-empty printable string"),
        ("[car, pedestrian, car]", "lists 'car' more than once"),
    ],
)
def test_bad_data_config_names(tmp_path: Path, names: str, problem: str) -> None:
    config = write_dataset(tmp_path, "0 1 0.5 0.5 0.1 0.2\n", names)
    with pytest.raises(InputError, match=problem) as caught:
        read_data_config(config)
    assert caught.value.path == str(config)


def test_cli_classes(tmp_path: Path) -> None:
    sequence = make_mot17_sequence(tmp_path / "MOT17-XX")
    completed = run_cstrack("data", "from-mot", sequence, tmp_path / "out", "--classes", "1,7")
    assert completed.returncode == 0, completed.stderr
    config = tmp_path / "out" / "MOT17-XX.yaml"
    assert completed.stdout.splitlines()[-1] == f"{config}: data config, classes pedestrian, static_person"
    assert read_data_config(config).names == ("pedestrian", "static_person")
    completed = run_cstrack("data", "from-mot", sequence, tmp_path / "out", "--classes", "1,car")
    assert completed.returncode == 2 and "expected MOT class ids like 1,3" in completed.stderr

"""ReID crops: names read as (identity, camera), the identity split, composition into frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data.jde import read_labels, read_list_file
from cstrack.data.reid import CAMERA_A, CAMERA_B, ComposeConfig, read_reid_root, split_identities
from cstrack.data.reid_compose import compose_reid, identity_table, load_backgrounds
from cstrack.errors import InputError


def test_names_give_identity_and_camera(reid_root: Path) -> None:
    crops = read_reid_root(reid_root)
    assert len(crops) == 40
    by_name = {(c.dataset, c.path.name): c for c in crops}
    assert (by_name["CUHK03", "0003_00.jpg"].identity, by_name["CUHK03", "0003_00.jpg"].camera) == (
        3,
        CAMERA_A,
    )
    assert by_name["CUHK03", "0003_07.jpg"].camera == CAMERA_B
    assert (by_name["CUHK01", "0004003.jpg"].identity, by_name["CUHK01", "0004003.jpg"].camera) == (
        4,
        CAMERA_B,
    )


def test_a_file_off_the_naming_rule_is_named(reid_root: Path) -> None:
    cv2.imwrite(str(reid_root / "CUHK03" / "0001_12.jpg"), np.zeros((64, 32, 3), np.uint8))
    with pytest.raises(InputError, match="0001_12.jpg.*not a CUHK03 crop name"):
        read_reid_root(reid_root)


def test_a_folder_without_datasets_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no ReID crops"):
        read_reid_root(tmp_path)


def test_the_last_identities_of_each_dataset_are_held_out(reid_root: Path) -> None:
    train, held = split_identities(read_reid_root(reid_root), 0.15)
    held_ids = {(c.dataset, c.identity) for c in held}
    # ceil(10 * 0.15) = 2 identities of each dataset, the last two in sorted order.
    assert held_ids == {("CUHK03", 8), ("CUHK03", 9), ("CUHK01", 9), ("CUHK01", 10)}
    assert not held_ids & {(c.dataset, c.identity) for c in train}
    assert len(train) + len(held) == 40


def test_composed_frames_hold_labelled_crops_of_training_identities_only(
    reid_root: Path, tmp_path: Path
) -> None:
    train, _ = split_identities(read_reid_root(reid_root), 0.2)
    background = tmp_path / "bg.png"
    cv2.imwrite(str(background), np.full((240, 320, 3), (40, 120, 40), dtype=np.uint8))
    config = ComposeConfig(size=(320, 256), frames=5, people=(3, 5), heights=(40.0, 90.0), seed=3)
    out = tmp_path / "jde"
    list_path = compose_reid(train, load_backgrounds([background]), out, config=config)
    images = read_list_file(list_path)
    assert len(images) == 5
    identities = identity_table(train)
    for image_path in images:
        image = cv2.imread(str(image_path))
        assert image.shape == (256, 320, 3)
        labels = read_labels(image_path.parents[2] / "labels_with_ids" / "reid" / f"{image_path.stem}.txt")
        assert 3 <= len(labels) <= 5
        ids = labels[:, 1].astype(int)
        assert len(set(ids)) == len(ids)  # one identity once per frame
        assert set(ids) <= set(identities.values())
        heights = labels[:, 5] * 256
        assert ((heights >= 39) & (heights <= 91)).all()
        # The crop's pixels are there: the box centre is no longer the plain green background.
        for _, _, cx, cy, _, _ in labels:
            assert not np.array_equal(image[int(cy * 256), int(cx * 320)], [40, 120, 40])
    again = compose_reid(train, load_backgrounds([background]), tmp_path / "again", config=config)
    first = (out / "labels_with_ids" / "reid" / "000003.txt").read_text()
    assert first == (again.parent / "labels_with_ids" / "reid" / "000003.txt").read_text()


def test_a_folder_background_is_the_median_of_its_frames(tmp_path: Path) -> None:
    folder = tmp_path / "seq" / "img1"
    folder.mkdir(parents=True)
    for k in range(5):
        frame = np.full((40, 60, 3), 100, dtype=np.uint8)
        frame[10:30, 10 * k : 10 * k + 10] = 250  # a walker, somewhere else in every frame
        cv2.imwrite(str(folder / f"{k + 1:06d}.png"), frame)
    (background,) = load_backgrounds([tmp_path / "seq"])
    assert (background == 100).all()
    assert len(load_backgrounds([tmp_path / "seq"], median=False)) == 5


def test_a_full_frame_leaves_crops_out_without_mixing_up_the_others() -> None:
    from cstrack.data.reid_compose import compose_frame

    # Crops of different shapes crowded into a small frame: some cannot be placed.
    shapes = [(20, 80), (60, 40), (20, 80), (60, 40), (30, 60), (20, 80), (60, 40), (30, 60)] * 2
    images = [np.full((h, w, 3), 10 * i, np.uint8) for i, (w, h) in enumerate(shapes)]
    config = ComposeConfig(size=(96, 96), frames=1, people=(1, 16), heights=(60.0, 60.0), seed=0)
    frame, placed = compose_frame(
        [None] * len(images), images, [np.full((96, 96, 3), 200, np.uint8)], config, np.random.default_rng(1)
    )  # type: ignore[list-item]
    assert 0 < len(placed) < len(images)
    for index, box in placed:
        w, h = shapes[index]
        assert box[3] - box[1] == 60 and box[2] - box[0] == max(2, round(60 * w / h))

"""The training data pipeline: geometry of the augmentation, determinism, collate, pairs, id offsets."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cstrack.data.jde import read_data_config
from cstrack.training.dataset import (
    AugmentConfig,
    DetectionDataset,
    Frame,
    PairDataset,
    collate_detection,
    collate_pairs,
    load_frames,
    target_boxes,
    worker_init,
)

NO_AUGMENT = AugmentConfig.none()


def write_box_dataset(root: Path) -> Path:
    """One 200x100 black image with a white box x 20..60, y 10..90 labelled with id 3."""
    image = np.zeros((100, 200, 3), np.uint8)
    image[10:90, 20:60] = 255
    (root / "images" / "seq").mkdir(parents=True)
    (root / "labels_with_ids" / "seq").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "seq" / "000001.png"), image)
    (root / "labels_with_ids" / "seq" / "000001.txt").write_text("0 3 0.2 0.5 0.2 0.8\n")
    (root / "box.train").write_text("images/seq/000001.png\n")
    (root / "data.yaml").write_text("train:\n  boxes: box.train\n")
    return root / "data.yaml"


def white_extent(image: torch.Tensor) -> list[float]:
    """x0, y0, x1, y1 of the bright pixels of a (3, H, W) image."""
    ys, xs = np.nonzero(image.numpy().min(0) > 0.7)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def box_xyxy(label: torch.Tensor) -> list[float]:
    cx, cy, w, h = label[2:].tolist()
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def test_letterbox_places_the_box_in_input_pixels(tmp_path: Path) -> None:
    frames = load_frames(read_data_config(write_box_dataset(tmp_path)).train)
    image, labels = DetectionDataset(frames, (160, 96), NO_AUGMENT, seed=0)[0]
    assert image.shape == (3, 96, 160) and image.dtype == torch.float32
    # Scale 0.8 (200x100 -> 160x80), 8 px of grey padding above and below; the file's only id (3)
    # is the dataset's identity 0.
    assert labels.tolist() == [pytest.approx([0, 0, 32, 48, 32, 64])]
    assert image[:, 0, 0].tolist() == pytest.approx([114 / 255] * 3)
    assert white_extent(image) == pytest.approx(box_xyxy(labels[0]), abs=1)


def test_flip_and_affine_move_boxes_with_the_pixels(tmp_path: Path) -> None:
    frames = load_frames(read_data_config(write_box_dataset(tmp_path)).train)
    augmentation = AugmentConfig(hsv_h=0, hsv_s=0, hsv_v=0, flip=0.5, scale=0.3, translate=0.1)
    dataset = DetectionDataset(frames, (160, 96), augmentation, seed=0)
    flipped = 0
    for epoch in range(8):
        dataset.set_epoch(epoch)
        image, labels = dataset[0]
        assert len(labels) == 1
        assert white_extent(image) == pytest.approx(box_xyxy(labels[0]), abs=1.5)
        flipped += labels[0, 2].item() > 80
    assert 0 < flipped < 8


def test_target_rule_drops_tiny_mostly_hidden_and_sliver_boxes() -> None:
    boxes = np.array(
        [
            [10, 10, 40, 90],  # a person: kept
            [150, 10, 190, 90],  # 10 of 40 px wide in view (25% of the area): kept, clipped
            [157, 10, 197, 90],  # 3 of 40 px in view (7.5% of the area): dropped
            [-2, 5, 4, 85],  # a 4 x 80 sliver (aspect 20) inside the image edge: dropped
            [50, 50, 51.5, 60],  # 1.5 px wide: dropped
        ],
        dtype=np.float64,
    )
    clipped, keep = target_boxes(boxes, (160, 96))
    assert keep.tolist() == [True, True, False, False, False]
    assert clipped[1].tolist() == [150, 10, 160, 90]


def test_augment_drops_people_walking_out_without_an_affine(tmp_path: Path) -> None:
    data = write_box_dataset(tmp_path)
    label = tmp_path / "labels_with_ids" / "seq" / "000001.txt"
    label.write_text("0 3 0.2 0.5 0.2 0.8\n0 4 0.01 0.5 0.02 0.8\n")  # 4 x 80 px at x 0: 3.2 x 64 input px
    frames = load_frames(read_data_config(data).train)
    _, labels = DetectionDataset(frames, (160, 96), NO_AUGMENT, seed=0)[0]
    assert labels[:, 1].tolist() == [0]  # the file's id 3 (ids 3, 4 are identities 0, 1)


def test_samples_depend_only_on_seed_epoch_and_index(tiny_data: Path) -> None:
    frames = load_frames(read_data_config(tiny_data).train)
    first = DetectionDataset(frames, (160, 96), AugmentConfig(scale=0.2, translate=0.1), seed=5)
    second = DetectionDataset(frames, (160, 96), AugmentConfig(scale=0.2, translate=0.1), seed=5)
    second[1]  # another sample loaded first changes nothing
    for dataset in (first, second):
        dataset.set_epoch(2)
    image_a, labels_a = first[3]
    image_b, labels_b = second[3]
    assert torch.equal(image_a, image_b) and torch.equal(labels_a, labels_b)
    first.set_epoch(3)
    assert not torch.equal(first[3][0], image_a)


def test_collate_prefixes_the_batch_index(tiny_data: Path) -> None:
    frames = load_frames(read_data_config(tiny_data).train)
    dataset = DetectionDataset(frames, (160, 96), NO_AUGMENT, seed=0)
    items = [dataset[i] for i in range(3)]
    images, targets = collate_detection(items)
    assert images.shape == (3, 3, 96, 160)
    assert targets.shape == (sum(len(labels) for _, labels in items), 7)
    assert targets[:, 0].tolist() == [i for i, (_, labels) in enumerate(items) for _ in range(len(labels))]
    assert torch.equal(targets[:, 1:], torch.cat([labels for _, labels in items]))


def test_identities_are_offset_per_dataset(tiny_data: Path, tmp_path: Path) -> None:
    twice = tmp_path / "twice.yaml"
    list_file = tiny_data.parent / "jde" / "train.train"
    twice.write_text(f"train:\n  a: {list_file}\n  b: {list_file}\n")
    split = read_data_config(twice).train
    frames = load_frames(split)
    half = len(frames) // 2
    first_ids = np.concatenate([f.labels[:, 1] for f in frames[:half]])
    second_ids = np.concatenate([f.labels[:, 1] for f in frames[half:]])
    assert split.num_ids == 2 * split.datasets["a"].num_ids
    assert np.array_equal(second_ids, first_ids + split.datasets["a"].num_ids)


def test_pairs_are_frames_of_one_sequence_at_most_five_apart(tiny_data: Path) -> None:
    frames = load_frames(read_data_config(tiny_data).train)
    dataset = PairDataset(frames, (160, 96), AugmentConfig(scale=0.1), seed=0)
    assert len(dataset) == len(frames) - 1  # every frame but the first has an earlier partner
    for index in range(len(dataset)):
        current, earlier = dataset.pairs[index]
        assert all(0 < frames[current].frame - frames[e].frame <= 5 for e in earlier)
    image, labels, template_image, template_labels = dataset[4]
    assert image.shape == template_image.shape == (3, 96, 160)
    assert 0 < len(labels) <= len(template_labels)
    assert set(labels[:, 1].tolist()) <= set(template_labels[:, 1].tolist())
    batch = collate_pairs([dataset[0], dataset[4]])
    assert batch[1][:, 0].unique().tolist() == batch[3][:, 0].unique().tolist() == [0, 1]


def test_pair_templates_include_people_who_left(tmp_path: Path) -> None:
    """Templates: every known id of the earlier frame; targets: those of them still in view."""
    image = tmp_path / "seq" / "000001.jpg"
    image.parent.mkdir()
    cv2.imwrite(str(image), np.full((96, 160, 3), 90, np.uint8))
    box = [0.5, 0.5, 0.2, 0.6]
    earlier = np.array([[0, 7, *box], [0, 3, *box], [0, -1, *box], [0, 5, *box]], dtype=np.float32)
    later = np.array([[0, 5, *box], [0, 9, *box], [0, 3, *box]], dtype=np.float32)  # 7 left, 9 arrived
    frames = [Frame(image, earlier, "seq", 1), Frame(image, later, "seq", 2)]
    _, labels, _, template_labels = PairDataset(frames, (160, 96), NO_AUGMENT, seed=0)[0]
    assert template_labels[:, 1].tolist() == [3, 5, 7]
    assert labels[:, 1].tolist() == [3, 5]


def test_loader_workers_do_not_change_the_batches(tiny_data: Path) -> None:
    frames = load_frames(read_data_config(tiny_data).train)
    dataset = DetectionDataset(frames, (160, 96), AugmentConfig(scale=0.2, translate=0.1), seed=3)
    dataset.set_epoch(1)

    def batches(workers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        loader = DataLoader(
            dataset,
            batch_size=3,
            num_workers=workers,
            collate_fn=collate_detection,
            worker_init_fn=worker_init,
        )
        return list(loader)

    for (images_a, targets_a), (images_b, targets_b) in zip(batches(0), batches(2), strict=True):
        assert torch.equal(images_a, images_b) and torch.equal(targets_a, targets_b)


def test_identities_are_dense_whatever_ids_the_files_hold(tmp_path: Path) -> None:
    """JDE sizes its classifier by max id + 1: an id of 99999999999 would ask for 200 TB."""
    data = write_box_dataset(tmp_path)
    label = tmp_path / "labels_with_ids" / "seq" / "000001.txt"
    label.write_text("0 99999999999 0.2 0.5 0.2 0.8\n0 -1 0.6 0.5 0.2 0.8\n0 7 0.8 0.5 0.1 0.8\n")
    split = read_data_config(data).train
    assert split.num_ids == 2
    (frame,) = load_frames(split)
    assert frame.labels[:, 1].tolist() == [1, -1, 0]

"""Training data: JDE-layout images and labels as torch Datasets, with the reference augmentation.

Targets leave the pipeline in network-input pixels: collate gives (n, 7) rows
[batch index, class, id, cx, cy, w, h], the centre and size in pixels of the W x H input (the
loss divides by each level's stride). Identities are offset per dataset (`read_data_config`)
so they are unique across the mix; -1 stays -1 (unknown).

Augmentation (REFERENCE "Training"), in this order: resize so the image fits W x H and letterbox
it (pad 114); an optional random affine (scale 1 +- `scale`, shift +- `translate` of the input
size, grey border); HSV jitter (gains h 0.015, s 0.5, v 0.4, YOLOv5's look-up tables);
horizontal flip with probability 0.5. Input RGB / 255. Boxes are clipped to the input and stop
being targets when under 2 px, when less than 10% of their area stays in view or when their
aspect ratio reaches 10 (the release's rule; the last drops people walking out of the image).

Determinism: the random draws of sample `index` in epoch `epoch` come from a generator seeded by
(seed, epoch, index), whatever worker loads it, so any number of workers gives the same batches.
The dataset's `epoch` is set before each epoch's iterator is made (workers are not persistent,
so they are forked with the current epoch).

Frame pairs (OMC stage 2): each frame is paired with an earlier frame of its sequence (the
image's folder) at most `max_gap` (5) frames before it, drawn at random; both frames get the same
augmentation. Every known identity of the earlier frame gives a template; the targets the re-check
network must find are those of them still in the later frame. Templates of people who have left
have no target, so the network learns to stay quiet for them (OMC's refinement module exists for
"objects disappearing in the current frame"); with only the shared identities as templates it
kept finding people at the image border for many frames after they had walked out.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from cstrack.data.jde import DataSplit, label_path_for, read_labels
from cstrack.errors import InputError
from cstrack.models.inference import letterbox
from cstrack.training.config import MAX_PAIR_GAP, AugmentConfig

TRAIN_PAD_VALUE = 114
MIN_BOX_PIXELS = 2.0
MIN_VISIBLE_AREA = 0.1
MAX_ASPECT = 10.0
_ID = 1  # the identity column of a label row


@dataclass(frozen=True)
class Frame:
    """One labelled image of the mix."""

    image: Path
    labels: np.ndarray  # (n, 6) class, id (offset, -1 unknown), cx, cy, w, h normalised
    sequence: str  # the image's folder: frames of one video share it
    frame: int  # frame number (the file name's digits, else the position in the list)


def load_frames(split: DataSplit) -> list[Frame]:
    """Every image of a split with its labels, identities made dense and offset per dataset."""
    frames = []
    for dataset in split.datasets.values():
        for position, image in enumerate(dataset.images, start=1):
            labels = read_labels(label_path_for(image)).copy()
            labels[:, _ID] = dataset.dense_ids(labels[:, _ID])
            stem = image.stem
            frame = int(stem) if stem.isdigit() else position
            frames.append(Frame(image, labels, str(image.parent), frame))
    return frames


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(path, "cannot read image")
    return image


@dataclass(frozen=True)
class _Draw:
    """The random choices of one sample, shared by both frames of a pair."""

    hsv_gains: np.ndarray  # (3,) multipliers of h, s, v
    flip: bool
    affine: np.ndarray | None  # (2, 3) on the letterboxed image


def _draw(rng: np.random.Generator, cfg: AugmentConfig, size: tuple[int, int]) -> _Draw:
    gains = rng.uniform(-1, 1, 3) * (cfg.hsv_h, cfg.hsv_s, cfg.hsv_v) + 1
    flip = bool(rng.random() < cfg.flip)
    affine = None
    if cfg.scale > 0 or cfg.translate > 0:
        width, height = size
        scale = rng.uniform(1 - cfg.scale, 1 + cfg.scale)
        shift = rng.uniform(-cfg.translate, cfg.translate, 2) * (width, height)
        # Scale about the input centre, then shift.
        affine = np.array(
            [
                [scale, 0, (1 - scale) * width / 2 + shift[0]],
                [0, scale, (1 - scale) * height / 2 + shift[1]],
            ]
        )
    return _Draw(gains, flip, affine)


def _hsv_jitter(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """YOLOv5's HSV augmentation by look-up tables on a uint8 BGR image."""
    if np.all(gains == 1):
        return image
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
    levels = np.arange(256, dtype=np.float64)
    lut_hue = ((levels * gains[0]) % 180).astype(np.uint8)
    lut_sat = np.clip(levels * gains[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(levels * gains[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def target_boxes(boxes: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (n, 4) xyxy clipped to the W x H input, and which of them stay targets.

    The release's rule: wider and taller than MIN_BOX_PIXELS, at least MIN_VISIBLE_AREA of the box
    in view, aspect ratio under MAX_ASPECT. The last drops the slivers of people walking out of
    the image, which no detector can see and which taught the re-check to fire at the border.
    """
    width, height = size
    clipped = np.clip(boxes, 0, [width, height, width, height])
    w, h = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    full_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    aspect = np.maximum(w / np.maximum(h, 1e-9), h / np.maximum(w, 1e-9))
    keep = (
        (w > MIN_BOX_PIXELS)
        & (h > MIN_BOX_PIXELS)
        & (w * h > MIN_VISIBLE_AREA * full_area)
        & (aspect < MAX_ASPECT)
    )
    return clipped, keep


def augment(
    image: np.ndarray, labels: np.ndarray, draw: _Draw, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Letterbox + draw -> (3, H, W) float32 RGB in [0, 1] and labels (m, 6) class, id, cx, cy, w, h pixels."""
    width, height = size
    padded, placement = letterbox(image, size, TRAIN_PAD_VALUE)
    canvas = padded.astype(np.uint8)
    h0, w0 = image.shape[:2]
    centre, wh = labels[:, 2:4] * (w0, h0), labels[:, 4:6] * (w0, h0)
    boxes = placement.to_input(np.concatenate((centre - wh / 2, centre + wh / 2), 1))
    if draw.affine is not None:
        canvas = cv2.warpAffine(
            canvas, draw.affine, (width, height), flags=cv2.INTER_LINEAR, borderValue=(TRAIN_PAD_VALUE,) * 3
        )
        boxes = boxes * draw.affine[0, 0] + np.tile(draw.affine[:, 2], 2)  # axis-aligned: scale, shift
    boxes, keep = target_boxes(boxes, size)
    canvas = _hsv_jitter(canvas, draw.hsv_gains)
    if draw.flip:
        canvas = canvas[:, ::-1]
        boxes = np.stack((width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]), 1)
    boxes, kept_labels = boxes[keep], labels[keep]
    out = np.empty((len(boxes), 6), dtype=np.float32)
    out[:, :2] = kept_labels[:, :2]
    out[:, 2:4] = (boxes[:, :2] + boxes[:, 2:]) / 2
    out[:, 4:6] = boxes[:, 2:] - boxes[:, :2]
    rgb = np.ascontiguousarray(canvas[..., ::-1].transpose(2, 0, 1), dtype=np.float32) / np.float32(255)
    return rgb, out


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample's random draws: fixed by (seed, epoch, index) alone."""
    return np.random.default_rng([seed, epoch, index])


class _EpochDataset(Dataset):
    def __init__(self, frames: list[Frame], size: tuple[int, int], augmentation: AugmentConfig, seed: int):
        if not frames:
            raise InputError(None, "no training images")
        self.frames = frames
        self.size = size
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class DetectionDataset(_EpochDataset):
    """Stage 1: one augmented image and its targets per item."""

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        frame = self.frames[index]
        draw = _draw(sample_rng(self.seed, self.epoch, index), self.augmentation, self.size)
        image, labels = augment(read_image(frame.image), frame.labels, draw, self.size)
        return torch.from_numpy(image), torch.from_numpy(labels)


def pair_partners(frames: list[Frame], max_gap: int = MAX_PAIR_GAP) -> list[tuple[int, list[int]]]:
    """(frame index, indices of the frames 1..max_gap frames before it in its sequence) where any exist."""
    by_sequence: dict[str, dict[int, int]] = defaultdict(dict)
    for index, frame in enumerate(frames):
        by_sequence[frame.sequence][frame.frame] = index
    pairs = []
    for index, frame in enumerate(frames):
        numbers = by_sequence[frame.sequence]
        earlier = [
            numbers[frame.frame - gap] for gap in range(1, max_gap + 1) if frame.frame - gap in numbers
        ]
        if earlier:
            pairs.append((index, earlier))
    return pairs


class PairDataset(_EpochDataset):
    """Stage 2: (later frame, earlier frame); templates are the earlier frame's known identities,
    targets those of them in the later frame (both in id order)."""

    def __init__(
        self,
        frames: list[Frame],
        size: tuple[int, int],
        augmentation: AugmentConfig,
        seed: int,
        max_gap: int = MAX_PAIR_GAP,
    ):
        super().__init__(frames, size, augmentation, seed)
        self.pairs = pair_partners(frames, max_gap)
        if not self.pairs:
            raise InputError(None, f"no two frames of one sequence are within {max_gap} frames of each other")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        current_index, candidates = self.pairs[index]
        rng = sample_rng(self.seed, self.epoch, index)
        earlier = self.frames[candidates[int(rng.integers(len(candidates)))]]
        current = self.frames[current_index]
        draw = _draw(rng, self.augmentation, self.size)
        image, labels = augment(read_image(current.image), current.labels, draw, self.size)
        template_image, template_labels = augment(read_image(earlier.image), earlier.labels, draw, self.size)
        template_labels = _rows_of(template_labels, template_labels[template_labels[:, _ID] >= 0, _ID])
        labels = _rows_of(labels, template_labels[:, _ID])
        return (
            torch.from_numpy(image),
            torch.from_numpy(labels),
            torch.from_numpy(template_image),
            torch.from_numpy(template_labels),
        )


def _rows_of(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The label rows of `ids` in sorted id order, the first row of an id seen twice."""
    rows = labels[np.isin(labels[:, _ID], ids)]
    _, first = np.unique(rows[:, _ID], return_index=True)
    return rows[first]


def _targets(labels: list[torch.Tensor]) -> torch.Tensor:
    """Per-image labels (n_i, 6) -> (n, 7) with the image's batch index in front."""
    return torch.cat(
        [torch.cat((label.new_full((len(label), 1), i), label), 1) for i, label in enumerate(labels)]
    )


def collate_detection(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack images (B, 3, H, W); targets (n, 7) [batch index, class, id, cx, cy, w, h] pixels."""
    images, labels = zip(*batch)
    return torch.stack(images), _targets(list(labels))


def collate_pairs(
    batch: list[tuple[torch.Tensor, ...]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images and targets of the later frames, then of the earlier (template) frames."""
    images, labels, template_images, template_labels = zip(*batch)
    return (
        torch.stack(images),
        _targets(list(labels)),
        torch.stack(template_images),
        _targets(list(template_labels)),
    )


def worker_init(worker_id: int) -> None:
    """Keep each loader worker to one thread: the workers already run in parallel."""
    del worker_id
    cv2.setNumThreads(0)
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"

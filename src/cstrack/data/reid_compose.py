"""ReID crops composed into full training frames, so the tracker's own embedding learns them.

A one-shot tracker reads its embedding from the stride-8 map of a whole frame, so crops must
reach it the way people do: as figures in a scene. Each frame here is a background (a real
empty scene, e.g. the per-pixel median of a static camera's frames, which removes the people,
or any image) with `people` crops pasted at pedestrian scale, far ones first, each crop one
identity, no identity twice in a frame. Per crop: height drawn log-uniformly in `heights`
pixels, horizontal flip, brightness and saturation jitter, optional Gaussian blur, and edges
feathered into the background so that the frame holds no hard rectangle. Crops are dealt from a
shuffled deck, so every crop is used about `frames * mean(people) / len(crops)` times, at
different places and scales. Boxes never hide another box's centre (where the ID loss reads the
embedding). Output: the JDE layout `from_mot` writes (`OUT/images/NAME/000001.jpg`,
`OUT/labels_with_ids/NAME/000001.txt` with `0 id cx cy w h`, `OUT/NAME.train`); identities are
numbered 0.. over the (dataset, identity) pairs of the crops given, in sorted order.
Deterministic: the same crops, backgrounds, config and seed give the same files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path

import cv2
import numpy as np

from cstrack.atomic import atomic_write, atomic_write_bytes
from cstrack.data.jde import IMAGES_FOLDER, label_path_for
from cstrack.data.reid import IMAGE_SUFFIXES, ComposeConfig, ReidCrop
from cstrack.data.sources import read_image
from cstrack.errors import InputError

MEDIAN_FRAMES = 50  # frames sampled evenly for a folder's median background
FEATHER = 0.12  # fraction of a crop's width (and half of it of its height) blended into the scene
PLACEMENT_TRIES = 30
JPEG_QUALITY = 90


def _images_of(folder: Path) -> list[Path]:
    """The images of a folder, or of its MOTChallenge `img1/` subfolder."""
    if (folder / "img1").is_dir():
        folder = folder / "img1"
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_bgr(path: Path) -> np.ndarray:
    """The BGR image at `path` (`cstrack.data.sources.read_image`: bounded, truncation checked),
    else InputError: a crop or background that cannot be read is a mistake in the input."""
    image = read_image(path)
    if image is None:
        raise InputError(path, "not a readable image")
    return image


def load_backgrounds(paths: Sequence[str | PathLike[str]], median: bool = True) -> list[np.ndarray]:
    """Background images: each image file as it is; each folder (or MOT sequence) as the per-pixel
    median of MEDIAN_FRAMES of its frames (an empty scene for a static camera) with `median`,
    else every image in it."""
    backgrounds = []
    for item in map(Path, paths):
        if item.is_file():
            backgrounds.append(read_bgr(item))
            continue
        if not item.is_dir():
            raise InputError(item, "no such image or folder")
        images = _images_of(item)
        if not images:
            raise InputError(item, "no images in this folder")
        if not median:
            backgrounds.extend(read_bgr(p) for p in images)
            continue
        picks = np.unique(np.linspace(0, len(images) - 1, min(MEDIAN_FRAMES, len(images))).round())
        stack = np.stack([read_bgr(images[int(i)]) for i in picks])
        backgrounds.append(np.median(stack, axis=0).astype(np.uint8))
    if not backgrounds:
        raise InputError(None, "no background images given")
    return backgrounds


def identity_table(crops: Sequence[ReidCrop]) -> dict[tuple[str, int], int]:
    """Label identity 0.. of each (dataset, identity) pair, in sorted order."""
    return {key: index for index, key in enumerate(sorted({(c.dataset, c.identity) for c in crops}))}


def _deck(count: int, rng: np.random.Generator) -> Iterator[int]:
    while True:
        yield from rng.permutation(count).tolist()


def _scene(background: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random zoomed, shifted, flipped and brightened view of `background` filling `size`."""
    width, height = size
    bh, bw = background.shape[:2]
    scale = max(width / bw, height / bh) * rng.uniform(1.0, 1.5)
    resized = cv2.resize(background, (max(width, round(bw * scale)), max(height, round(bh * scale))))
    top = int(rng.integers(0, resized.shape[0] - height + 1))
    left = int(rng.integers(0, resized.shape[1] - width + 1))
    view = resized[top : top + height, left : left + width]
    if rng.random() < 0.5:
        view = view[:, ::-1]
    return np.clip(view.astype(np.float32) * rng.uniform(0.8, 1.2), 0, 255)


def _covers(box: np.ndarray, point: np.ndarray) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


def _place(
    sizes: list[tuple[int, int]], frame_size: tuple[int, int], rng: np.random.Generator
) -> dict[int, np.ndarray]:
    """xyxy boxes by index of the (w, h) sizes (some left out when the frame is full): inside the
    frame, and no box covers another's centre."""
    width, height = frame_size
    boxes: dict[int, np.ndarray] = {}
    for index, (w, h) in enumerate(sizes):
        for _ in range(PLACEMENT_TRIES):
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            box = np.array([x, y, x + w, y + h])
            centre = (box[:2] + box[2:]) / 2
            if not any(_covers(box, (b[:2] + b[2:]) / 2) or _covers(b, centre) for b in boxes.values()):
                boxes[index] = box
                break
    return boxes


def _feather_mask(w: int, h: int) -> np.ndarray:
    """(h, w, 1) blending weights: 1 inside, ramping to 0 at the crop's edges."""
    ramp_x = np.minimum(np.arange(w) + 0.5, w - np.arange(w) - 0.5) / max(1.0, FEATHER * w)
    ramp_y = np.minimum(np.arange(h) + 0.5, h - np.arange(h) - 0.5) / max(1.0, FEATHER * h / 2)
    return np.clip(np.minimum(ramp_x[None, :], ramp_y[:, None]), 0, 1)[..., None].astype(np.float32)


def _styled(crop: np.ndarray, w: int, h: int, blur: float, rng: np.random.Generator) -> np.ndarray:
    """The crop resized to (w, h) with flip, saturation, brightness and blur jitter (float32 BGR)."""
    shrinking = w < crop.shape[1]
    image = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 1] *= rng.uniform(0.7, 1.3)
    hsv[..., 2] *= rng.uniform(0.7, 1.3)
    image = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    if rng.random() < blur:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    return image.astype(np.float32)


def compose_frame(
    crops: Sequence[ReidCrop],
    images: Sequence[np.ndarray],
    backgrounds: Sequence[np.ndarray],
    config: ComposeConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """One frame from the given crops (their pixels in `images`): the BGR image and, per pasted
    crop, (index into `crops`, xyxy box)."""
    frame = _scene(backgrounds[int(rng.integers(len(backgrounds)))], config.size, rng)
    low, high = np.log(config.heights)
    sizes = []
    for image in images:
        h = float(np.exp(rng.uniform(low, high)))
        sizes.append((max(2, round(h * image.shape[1] / image.shape[0])), round(h)))
    boxes = _place(sizes, config.size, rng)
    placed = sorted(boxes, key=lambda i: boxes[i][3])  # far (higher feet) first
    for i in placed:
        x1, y1 = (int(v) for v in boxes[i][:2])
        w, h = sizes[i]
        alpha = _feather_mask(w, h)
        region = frame[y1 : y1 + h, x1 : x1 + w]
        region[:] = region * (1 - alpha) + _styled(images[i], w, h, config.blur, rng) * alpha
        boxes[i] = np.array([x1, y1, x1 + w, y1 + h], dtype=np.float64)
    return frame.astype(np.uint8), [(i, boxes[i]) for i in placed]


def compose_reid(
    crops: Sequence[ReidCrop],
    backgrounds: Sequence[np.ndarray],
    out_dir: str | PathLike[str],
    name: str = "reid",
    config: ComposeConfig | None = None,
    progress: bool = False,
) -> Path:
    """Write `config.frames` composed frames in the JDE layout under `out_dir`; returns the list file."""
    from tqdm import tqdm

    config = config or ComposeConfig()
    if not crops:
        raise InputError(None, "no ReID crops to compose")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(config.seed)
    labels = identity_table(crops)
    deck = _deck(len(crops), rng)
    width, height = config.size
    lines = []
    for number in tqdm(range(1, config.frames + 1), disable=not progress, unit="frame"):
        count = int(rng.integers(config.people[0], config.people[1] + 1))
        chosen: list[int] = []
        seen: set[tuple[str, int]] = set()
        while len(chosen) < min(count, len(labels)):
            index = next(deck)
            key = (crops[index].dataset, crops[index].identity)
            if key not in seen:
                seen.add(key)
                chosen.append(index)
        images = [read_bgr(crops[i].path) for i in chosen]
        frame, placed = compose_frame([crops[i] for i in chosen], images, backgrounds, config, rng)
        relative = Path(IMAGES_FOLDER, name, f"{number:06d}.jpg")
        ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise InputError(out_dir / relative, "JPEG encoding failed")
        atomic_write_bytes(out_dir / relative, encoded.tobytes())
        with atomic_write(label_path_for(out_dir / relative)) as stream:
            for i, box in placed:
                crop = crops[chosen[i]]
                cx, cy = (box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height
                w, h = (box[2] - box[0]) / width, (box[3] - box[1]) / height
                stream.write(f"0 {labels[(crop.dataset, crop.identity)]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
        lines.append(relative.as_posix())
    list_path = out_dir / f"{name}.train"
    with atomic_write(list_path) as stream:
        stream.write("\n".join(lines) + "\n")
    return list_path

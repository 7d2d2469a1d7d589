"""Person re-identification crops: which identity and which camera each image shows, and the
identity split between training and the held-out retrieval check.

A one-shot tracker's embedding learns to tell people apart from identities it sees; the
sequences here hold a few dozen, ReID datasets thousands (`../shared/data/reid/`). This module
only reads what the file names say; `reid_compose` turns the crops into training frames and
`cstrack.pipeline.reid_eval` scores an embedding on the held-out identities.

Layouts read (a ReID root holds one folder per dataset):
    CUHK03/PPPP_NN.jpg    identity PPPP, image NN: 00-04 from one camera of the pair, 05-09 the other
    CUHK01/PPPPNNN.jpg    identity PPPP, image NNN: 001-002 camera A, 003-004 camera B
Identities are numbered per dataset in the files; `ReidCrop.identity` is the dataset's own number.

Split: within each dataset, identities are sorted and the last `holdout` fraction (rounded up)
is held out, so a held-out identity's crops never reach training and the split does not depend
on which other datasets are present.

`ComposeConfig` (how `reid_compose` makes frames) lives here, without OpenCV, so that the CLI
takes its defaults from it when it builds its options.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from cstrack.errors import InputError

DEFAULT_HOLDOUT = 0.1
CAMERA_A, CAMERA_B = 0, 1


@dataclass(frozen=True)
class ReidCrop:
    """One crop of one person."""

    path: Path
    dataset: str
    identity: int  # the dataset's own identity number
    camera: int  # CAMERA_A or CAMERA_B


def _cuhk03(name: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"(\d{4})_(\d{2})", name)
    if match is None:
        return None
    image = int(match[2])
    return (int(match[1]), CAMERA_A if image < 5 else CAMERA_B) if image < 10 else None


def _cuhk01(name: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"(\d{4})(\d{3})", name)
    if match is None or not 1 <= int(match[2]) <= 4:
        return None
    return int(match[1]), CAMERA_A if int(match[2]) <= 2 else CAMERA_B


# Each known dataset folder and how its file stems name (identity, camera).
LAYOUTS: dict[str, Callable[[str], tuple[int, int] | None]] = {"CUHK03": _cuhk03, "CUHK01": _cuhk01}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def read_reid_root(root: str | PathLike[str]) -> list[ReidCrop]:
    """Every crop of the known dataset folders under `root`, sorted by (dataset, identity, path).

    InputError when `root` is not a folder, holds none of the known datasets, or a dataset file
    does not follow its naming rule (named, so a stray file is not read as an identity)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a folder of ReID datasets")
    crops: list[ReidCrop] = []
    for dataset, parse in LAYOUTS.items():
        folder = root / dataset
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            parsed = parse(path.stem)
            if parsed is None:
                raise InputError(path, f"not a {dataset} crop name (see cstrack.data.reid)")
            crops.append(ReidCrop(path, dataset, *parsed))
    if not crops:
        raise InputError(root, f"no ReID crops: expected folders {', '.join(LAYOUTS)}")
    crops.sort(key=lambda c: (c.dataset, c.identity, c.path.name))
    return crops


def split_identities(
    crops: Sequence[ReidCrop], holdout: float = DEFAULT_HOLDOUT
) -> tuple[list[ReidCrop], list[ReidCrop]]:
    """(training crops, held-out crops): per dataset the last `holdout` of its sorted identities."""
    if not 0.0 <= holdout < 1.0:
        raise InputError(None, f"holdout must be in [0, 1), got {holdout}")
    held: set[tuple[str, int]] = set()
    for dataset in sorted({c.dataset for c in crops}):
        identities = sorted({c.identity for c in crops if c.dataset == dataset})
        count = math.ceil(len(identities) * holdout)
        held.update((dataset, identity) for identity in identities[len(identities) - count :])
    train = [c for c in crops if (c.dataset, c.identity) not in held]
    return train, [c for c in crops if (c.dataset, c.identity) in held]


@dataclass(frozen=True)
class ComposeConfig:
    """How many frames, of what size, with how many people of which heights."""

    size: tuple[int, int] = (768, 576)  # (W, H)
    frames: int = 2000
    people: tuple[int, int] = (8, 16)  # per frame, inclusive
    heights: tuple[float, float] = (56.0, 224.0)  # pixels, drawn log-uniformly
    blur: float = 0.3  # chance of a Gaussian blur of a crop
    seed: int = 0

    def __post_init__(self) -> None:
        width, height = self.size
        low, high = self.heights
        if width < 32 or height < 32:
            raise InputError(None, f"frame size {width}x{height} must be at least 32x32")
        if self.frames < 1 or not 1 <= self.people[0] <= self.people[1]:
            raise InputError(None, f"need frames >= 1 and 1 <= people min <= max, got {self}")
        if not 8 <= low <= high <= height:
            raise InputError(None, f"crop heights {low}-{high} must be within 8..{height} pixels")
        if not 0.0 <= self.blur <= 1.0:
            raise InputError(None, f"blur is a probability, got {self.blur}")

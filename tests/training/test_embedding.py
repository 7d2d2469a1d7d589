"""The embedding stage: paired compositions, the triplet loss, and training only the ID path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cstrack.data.reid import ComposeConfig, read_reid_root
from cstrack.errors import InputError
from cstrack.models.registry import create_model
from cstrack.training.config import FRAMES_PER_GROUP, EmbeddingConfig
from cstrack.training.embedding import (
    batch_hard_triplet,
    cache_round,
    compose_round,
    load_crop_images,
    target_embeddings,
    train_embedding,
    trunk_and_id_path,
)

SMALL = ComposeConfig(size=(160, 128), frames=8, people=(3, 4), heights=(40.0, 80.0), seed=3)


def test_batch_hard_triplet_takes_the_hardest_pair_per_anchor() -> None:
    # Unit vectors on a circle: identity 0 at 0 and 60 degrees, identity 1 at 90 and 180.
    angles = torch.tensor([0.0, 60.0, 90.0, 180.0]) * torch.pi / 180
    embeddings = torch.stack((angles.cos(), angles.sin()), 1)
    labels = torch.tensor([0, 0, 1, 1])
    chord = lambda degrees: 2 * np.sin(np.radians(degrees) / 2)  # noqa: E731
    # Anchor 0: positive 60, nearest negative 90; anchor 1: 60 / 30; anchor 2: 90 / 30; anchor 3: 90 / 120.
    expected = np.mean(
        [max(0, chord(a) - chord(b) + 0.3) for a, b in ((60, 90), (60, 30), (90, 30), (90, 120))]
    )
    assert float(batch_hard_triplet(embeddings, labels)) == pytest.approx(expected, rel=1e-5)
    assert float(batch_hard_triplet(embeddings, torch.tensor([0, 1, 2, 3]))) == 0.0


def test_frames_come_in_groups_showing_the_same_identities(reid_root: Path) -> None:
    crops = read_reid_root(reid_root)
    frames, rows = compose_round(
        crops, load_crop_images(crops), [np.full((96, 128, 3), 90, np.uint8)], SMALL, np.random.default_rng(0)
    )
    assert len(frames) == SMALL.frames and frames[0].shape == (128, 160, 3)
    for group in range(0, len(frames), FRAMES_PER_GROUP):
        shown = [set(rows[rows[:, 0] == group + view, 1].tolist()) for view in range(FRAMES_PER_GROUP)]
        assert shown[0] and all(s <= shown[0] | s for s in shown)
        assert len(shown[0] & shown[1]) >= 1
    boxes = rows[:, 2:]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 160).all() and (boxes[:, 3] <= 128).all()


def separation(model: torch.nn.Module, crops: list) -> float:
    """Mean cosine of one identity's two views minus that of different identities, on fresh frames."""
    base = trunk_and_id_path(model)
    frames, rows = compose_round(
        crops,
        load_crop_images(crops),
        [np.full((96, 128, 3), 90, np.uint8)],
        SMALL,
        np.random.default_rng(99),
    )
    cached = cache_round(base, frames, rows)
    with torch.no_grad():
        maps = base.embedding([ren(level.float())[1] for ren, level in zip(base.ren, cached.levels)])
        unit = target_embeddings(maps, cached.targets, "box")
    same = cached.targets[:, 2][:, None] == cached.targets[:, 2][None, :]
    other_frame = cached.targets[:, 0][:, None] != cached.targets[:, 0][None, :]
    cosine = unit @ unit.T
    return float(cosine[same & other_frame].mean() - cosine[~same].mean())


def test_training_changes_the_id_path_only(reid_root: Path) -> None:
    torch.manual_seed(0)
    crops = read_reid_root(reid_root)
    model = create_model("omc_yolox_nano.bytetrack_pets")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    separation_before = separation(model, crops)
    config = EmbeddingConfig(compose=SMALL, rounds=2, epochs=4, batch=4, lr=1e-3)
    rounds: list[int] = []
    history = train_embedding(
        model, crops, [np.full((96, 128, 3), 90, np.uint8)], config, lambda r, _: rounds.append(r)
    )
    assert rounds == [0, 1] and len(history) == 2
    assert separation(model, crops) > separation_before + 0.03  # measured: -0.030 -> 0.025
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith(("model.ren.", "model.embedding.")) for k in changed)
    assert not any(k.endswith("det_gate") for k in changed)
    assert all(p.requires_grad for p in model.parameters())


def test_a_network_without_yolox_trunk_is_refused(reid_root: Path) -> None:
    crops = read_reid_root(reid_root)
    with pytest.raises(InputError, match="YOLOX-based variant"):
        train_embedding(create_model("omc_mobilenetv2"), crops, [np.zeros((96, 128, 3), np.uint8)])

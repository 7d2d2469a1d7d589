"""The embedding stage: REN's ID path and SAAN trained on thousands of ReID identities, fast.

With the detector frozen (the pretrained YOLOX-Nano of the default model), the backbone and
neck give a composed frame the same features at every step, so they are computed once per frame
and kept (float16, in memory); only REN's ID path and SAAN, a third of the network's work, run
forward and backward. Each round composes fresh frames (`cstrack.data.reid_compose`: crops pasted
at pedestrian scale on real backgrounds) and trains a few epochs over their cached features.

Frames come in pairs showing the same identities, each through another crop (the other camera's
where there is one), so every batch holds positives for a batch-hard triplet loss on the unit
embeddings (margin `TRIPLET_MARGIN`), which ranks people across views as the tracker needs;
JDE's identity cross-entropy (`IdentityClassifier`) may be added for training from scratch.
The embedding is read as the tracker reads it (`readout`: the mean over each crop's box by
default, see `cstrack.models.readout`). What the stage changes: `ren.*` (not the detection
gates, which stay closed: detection features are untouched) and `embedding.*`; the re-check
network reads the embedding's similarity and may be fine-tuned after (`cstrack train --stage
recheck`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cstrack.data.reid import ComposeConfig, ReidCrop
from cstrack.data.reid_compose import compose_frame, identity_table, read_bgr
from cstrack.errors import InputError
from cstrack.models.network import ID, OMC, TrackingNetwork, YOLOXTrack
from cstrack.models.readout import Readout, read_embeddings
from cstrack.training.assign import T_BATCH, T_CX, T_CY, T_H, T_ID, T_W
from cstrack.training.config import FRAMES_PER_GROUP, EmbeddingConfig
from cstrack.training.losses import EMBEDDING_STRIDE, IdentityClassifier

logger = logging.getLogger(__name__)

TRIPLET_MARGIN = 0.3
CLASSIFIER_LR_SCALE = 10.0  # thousands of classes, each seen a few times an epoch


def trunk_and_id_path(model: TrackingNetwork) -> YOLOXTrack:
    """The YOLOX-based base network of `model` (the stage caches its trunk's features)."""
    base = model.model if isinstance(model, OMC) else model
    if not isinstance(base, YOLOXTrack):
        raise InputError(None, "the embedding stage needs a YOLOX-based variant (e.g. omc_yolox_nano)")
    return base


def id_path_parameters(base: YOLOXTrack) -> list[tuple[str, nn.Parameter]]:
    """What the stage trains: REN without its detection gates, and SAAN."""
    named = [(f"ren.{n}", p) for n, p in base.ren.named_parameters() if not n.endswith("det_gate")]
    return named + [(f"embedding.{n}", p) for n, p in base.embedding.named_parameters()]


@dataclass
class CachedRound:
    """One round's frames: the trunk's three pyramid levels (F, C, H, W) float16, and the crops'
    targets (T_BATCH = frame, T_ID = label, T_CX, T_CY input pixels; the other columns 0)."""

    levels: list[torch.Tensor]
    targets: torch.Tensor

    def batches(
        self, batch: int, rng: np.random.Generator
    ) -> Iterator[tuple[list[torch.Tensor], torch.Tensor]]:
        """Shuffled batches of whole frame groups, targets renumbered to the batch."""
        frames = self.levels[0].shape[0]
        groups = rng.permutation(frames // FRAMES_PER_GROUP)
        per_batch = batch // FRAMES_PER_GROUP
        frame_of_target = self.targets[:, T_BATCH].long()
        for start in range(0, len(groups), per_batch):
            chosen = torch.from_numpy(
                (
                    groups[start : start + per_batch, None] * FRAMES_PER_GROUP + np.arange(FRAMES_PER_GROUP)
                ).ravel()
            )
            position = torch.full((frames,), -1, dtype=torch.long)
            position[chosen] = torch.arange(len(chosen))
            keep = position[frame_of_target] >= 0
            targets = self.targets[keep].clone()
            targets[:, T_BATCH] = position[frame_of_target[keep]].to(targets.dtype)
            yield [level[chosen].float() for level in self.levels], targets


def _group_crops(
    by_identity: Sequence[Sequence[int]], crops: Sequence[ReidCrop], rng: np.random.Generator
) -> list[int]:
    """FRAMES_PER_GROUP crops of one identity: first from a random camera, then the other's."""
    members = list(by_identity)
    first = members[int(rng.integers(len(members)))]
    other = [i for i in members if crops[i].camera != crops[first].camera] or members
    picks = [first]
    while len(picks) < FRAMES_PER_GROUP:
        picks.append(other[int(rng.integers(len(other)))])
    return picks


def compose_round(
    crops: Sequence[ReidCrop],
    images: Sequence[np.ndarray],
    backgrounds: Sequence[np.ndarray],
    config: ComposeConfig,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], np.ndarray]:
    """`config.frames` BGR frames in groups of FRAMES_PER_GROUP over the same identities, and the
    rows (frame, label, x1, y1, x2, y2) of every pasted crop."""
    labels = identity_table(crops)
    by_label: list[list[int]] = [[] for _ in labels]
    for index, crop in enumerate(crops):
        by_label[labels[(crop.dataset, crop.identity)]].append(index)
    deck = iter(())  # type: Iterator[int]
    frames: list[np.ndarray] = []
    rows: list[tuple[int, int, float, float]] = []
    for _ in range(max(1, config.frames // FRAMES_PER_GROUP)):
        count = int(rng.integers(config.people[0], config.people[1] + 1))
        identities: list[int] = []
        while len(identities) < min(count, len(labels)):
            label = next(deck, None)
            if label is None:
                deck = iter(rng.permutation(len(labels)).tolist())
                continue
            if label not in identities:
                identities.append(label)
        picks = [_group_crops(by_label[label], crops, rng) for label in identities]
        for view in range(FRAMES_PER_GROUP):
            chosen = [p[view] for p in picks]
            frame, placed = compose_frame(
                [crops[i] for i in chosen], [images[i] for i in chosen], backgrounds, config, rng
            )
            for i, box in placed:
                rows.append((len(frames), identities[i], *box))
            frames.append(frame)
    return frames, np.array(rows, dtype=np.float64).reshape(-1, 6)


@torch.no_grad()
def cache_round(
    base: YOLOXTrack, frames: Sequence[np.ndarray], rows: np.ndarray, chunk: int = 16
) -> CachedRound:
    """The trunk's pyramid for each frame (float16) and the targets as training tensors."""
    base.eval()
    levels: list[list[torch.Tensor]] = [[], [], []]
    for start in range(0, len(frames), chunk):
        batch = np.stack([f[..., ::-1].transpose(2, 0, 1) for f in frames[start : start + chunk]])
        x = torch.from_numpy(np.ascontiguousarray(batch)).float() / 255
        for store, level in zip(levels, base.backbone(base.input(x))):
            store.append(level.half())
    targets = torch.zeros((len(rows), 7))
    targets[:, T_BATCH] = torch.from_numpy(rows[:, 0])
    targets[:, T_ID] = torch.from_numpy(rows[:, 1])
    targets[:, T_CX] = torch.from_numpy((rows[:, 2] + rows[:, 4]) / 2)
    targets[:, T_CY] = torch.from_numpy((rows[:, 3] + rows[:, 5]) / 2)
    targets[:, T_W] = torch.from_numpy(rows[:, 4] - rows[:, 2])
    targets[:, T_H] = torch.from_numpy(rows[:, 5] - rows[:, 3])
    return CachedRound([torch.cat(store) for store in levels], targets)


def batch_hard_triplet(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = TRIPLET_MARGIN
) -> torch.Tensor:
    """Mean over anchors with a positive of max(0, d(hardest positive) - d(hardest negative) + margin),
    on unit embeddings (Hermans et al. 2017); 0 when no anchor has a positive."""
    unit = F.normalize(embeddings, dim=1)
    distance = (2 - 2 * unit @ unit.T).clamp_min(1e-12).sqrt()
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    anchors = positive.any(1) & (~same).any(1)
    if not anchors.any():
        return distance.new_zeros(())
    hardest_positive = distance.masked_fill(~positive, 0).amax(1)
    hardest_negative = distance.masked_fill(same, math.inf).amin(1)
    return F.relu(hardest_positive - hardest_negative + margin)[anchors].mean()


def _id_embedding(base: YOLOXTrack, levels: list[torch.Tensor]) -> torch.Tensor:
    return base.embedding([ren(level)[ID] for ren, level in zip(base.ren, levels)])


def target_embeddings(embedding: torch.Tensor, targets: torch.Tensor, readout: Readout) -> torch.Tensor:
    """Unit embeddings of the targets' boxes, read from the (B, E, H, W) map as the tracker reads them."""
    half = targets[:, [T_W, T_H]] / 2
    centre = targets[:, [T_CX, T_CY]]
    boxes = torch.cat((centre - half, centre + half), 1)
    return read_embeddings(embedding, boxes, EMBEDDING_STRIDE, readout, targets[:, T_BATCH])


def load_crop_images(crops: Sequence[ReidCrop]) -> list[np.ndarray]:
    """Every crop's pixels, read once (CUHK crops are small: about 30 kB each in memory)."""
    return [read_bgr(c.path) for c in crops]


def train_embedding(
    model: TrackingNetwork,
    crops: Sequence[ReidCrop],
    backgrounds: Sequence[np.ndarray],
    config: EmbeddingConfig = EmbeddingConfig(),
    on_round_end: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train `model`'s ID path in place on `crops`; returns per-round mean losses (`id` 0 without
    the cross-entropy) and seconds.

    `on_round_end(round, row)` is called after each round (e.g. to score and save)."""
    if not crops:
        raise InputError(None, "no ReID crops to train on")
    base = trunk_and_id_path(model)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    named = id_path_parameters(base)
    for _, parameter in named:
        parameter.requires_grad_(True)
    groups_of_parameters: list[dict[str, Any]] = [{"params": [p for _, p in named]}]
    classifier = None
    if config.identity > 0:
        classifier = IdentityClassifier(base.emb_dim, len(identity_table(crops)))
        groups_of_parameters.append(
            {"params": list(classifier.parameters()), "lr": config.lr * CLASSIFIER_LR_SCALE}
        )
    optimizer = torch.optim.AdamW(groups_of_parameters, lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    images = load_crop_images(crops)
    groups = max(1, config.compose.frames // FRAMES_PER_GROUP)
    steps_per_epoch = math.ceil(groups / (config.batch // FRAMES_PER_GROUP))
    total_steps = config.rounds * config.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    history: list[dict[str, float]] = []
    for round_index in range(config.rounds):
        started = time.perf_counter()
        frames, rows = compose_round(crops, images, backgrounds, config.compose, rng)
        cached = cache_round(base, frames, rows)
        del frames
        base.ren.train()
        base.embedding.train()
        sums = {"id": 0.0, "triplet": 0.0}
        count = 0
        for _ in range(config.epochs):
            for levels, targets in cached.batches(config.batch, rng):
                readout = cast(Readout, config.readout)
                sampled = target_embeddings(_id_embedding(base, levels), targets, readout)
                labels = targets[:, T_ID].long()
                id_loss = (
                    F.cross_entropy(classifier.classifier(classifier.scale * sampled), labels)
                    if classifier is not None
                    else sampled.new_zeros(())
                )
                triplet = batch_hard_triplet(sampled, labels)
                loss = config.identity * id_loss + config.triplet * triplet
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                sums["id"] += float(id_loss.detach())
                sums["triplet"] += float(triplet.detach())
                count += 1
        row = {key: value / max(count, 1) for key, value in sums.items()}
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        logger.info(
            "embedding round %d/%d: id %.3f triplet %.3f (%.0f s)",
            round_index + 1,
            config.rounds,
            row["id"],
            row["triplet"],
            row["seconds"],
        )
        base.eval()
        if on_round_end is not None:
            on_round_end(round_index, row)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return history

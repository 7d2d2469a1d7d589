"""The training wrappers: a model plus what only training needs, whose forward returns the loss.

DDP wraps one of these (not the bare model), so the identity classifier is synchronised with
the network and every trained parameter takes part in each forward.

`DetectionObjective` (stage 1): detection + eta * identity + DenseMask losses of one batch
(detection: YOLOv5's anchor loss, or SimOTA's for a YOLOX head, `simota.py`).
`ReCheckObjective` (stage 2): the base network runs frozen (no gradients, BatchNorm in eval
mode) on the later and the earlier frames of each pair; the templates are the earlier frame's
embeddings at the centres of the identities seen in both; only the re-check heads learn.
Both return (loss, parts): the loss is this process's share of the global-batch loss (see
`losses.combine`), parts the same per logged part, in the order of `PARTS[stage]`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from cstrack.models.network import OMC, CSTrackOutput, TrackingNetwork
from cstrack.models.recheck import RECHECK_STRIDE
from cstrack.models.yolox import YOLOXHead
from cstrack.training.losses import (
    EMBEDDING_STRIDE,
    IdentityClassifier,
    LossResult,
    ReduceCounts,
    Term,
    centre_cells,
    combine,
    dense_mask_term,
    detection_terms,
    heat_target,
    heat_term,
    recheck_box_term,
)
from cstrack.training.simota import anchor_free_terms

PARTS: dict[str, tuple[str, ...]] = {
    "base": ("box", "obj", "cls", "id", "mask"),
    "recheck": ("heat", "rbox"),
}


def _autocast(device: torch.device, enabled: bool) -> AbstractContextManager[None]:
    return torch.autocast(device.type, dtype=torch.float16) if enabled else nullcontext()


def _as_float(output: CSTrackOutput) -> CSTrackOutput:
    """The forward output in float32, so the losses are computed outside mixed precision."""
    return CSTrackOutput(
        [h.float() for h in output.head],
        output.embedding.float(),
        None if output.dense_mask is None else output.dense_mask.float(),
        tuple(f.float() for f in output.features),
    )


def _parts_vector(result: LossResult, stage: str) -> torch.Tensor:
    zero = result.loss.detach().new_zeros(())
    return torch.stack([result.parts.get(name, zero) for name in PARTS[stage]])


class DetectionObjective(nn.Module):
    """Stage 1: the network and its identity classifier (absent without identities or with eta 0)."""

    stage = "base"

    def __init__(self, model: TrackingNetwork, num_ids: int, id_weight: float, amp: bool = False):
        super().__init__()
        self.model = model
        self.identity = IdentityClassifier(model.emb_dim, num_ids) if num_ids > 0 and id_weight > 0 else None
        self.id_weight = id_weight
        self.amp = amp

    @property
    def has_unused_parameters(self) -> bool:
        """Without the ID loss the embedding branch gets no gradient (DDP must be told)."""
        return self.identity is None

    def forward(
        self, images: torch.Tensor, targets: torch.Tensor, reduce_counts: ReduceCounts | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with _autocast(images.device, self.amp):
            output = self.model(images)
        output = _as_float(output)
        detect = self.model.detect
        if isinstance(detect, YOLOXHead):
            terms = anchor_free_terms(output.head, targets, detect)
        else:
            terms = detection_terms(output.head, targets, detect)
        if self.identity is not None:
            terms.append(self.identity.term(output.embedding, targets)._replace(gain=self.id_weight))
        if output.dense_mask is not None:
            terms.append(dense_mask_term(output.dense_mask, targets))
        result = combine(terms, reduce_counts)
        return result.loss, _parts_vector(result, self.stage)


def template_embeddings(
    embedding: torch.Tensor, template_targets: torch.Tensor, batch: int
) -> list[torch.Tensor]:
    """Per image, the raw embeddings (K_i, E) at the template targets' centre cells."""
    image, cell_y, cell_x = centre_cells(template_targets, tuple(embedding.shape[2:]), EMBEDDING_STRIDE)
    sampled = embedding[image, :, cell_y, cell_x]
    return [sampled[image == b] for b in range(batch)]


class ReCheckObjective(nn.Module):
    """Stage 2: OMC's re-check heads on frame pairs, the base network frozen."""

    stage = "recheck"
    has_unused_parameters = False

    def __init__(self, model: OMC, amp: bool = False):
        super().__init__()
        if not isinstance(model, OMC):
            raise TypeError("the re-check stage needs a model with the re-check network (an omc_* model)")
        self.model = model
        self.identity = None
        self.amp = amp
        model.model.requires_grad_(False)

    def train(self, mode: bool = True) -> ReCheckObjective:
        super().train(mode)
        self.model.model.eval()
        return self

    def forward(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        template_images: torch.Tensor,
        template_targets: torch.Tensor,
        reduce_counts: ReduceCounts | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch = images.shape[0]
        with torch.no_grad(), _autocast(images.device, self.amp):
            both = self.model(torch.cat((images, template_images)))
        both = _as_float(both)
        current = CSTrackOutput(
            [h[:batch] for h in both.head],
            both.embedding[:batch],
            None,
            tuple(f[:batch] for f in both.features),
        )
        templates = template_embeddings(both.embedding[batch:], template_targets, batch)
        with _autocast(images.device, self.amp):
            recheck = self.model.recheck(current, templates)
        heat = recheck.heat.float()
        target = heat_target(targets, batch, tuple(heat.shape[2:]), RECHECK_STRIDE)
        terms: list[Term] = [
            heat_term(heat, target),
            recheck_box_term(recheck.box.float(), targets, self.model.detect.k.detach()),
        ]
        result = combine(terms, reduce_counts)
        return result.loss, _parts_vector(result, self.stage)

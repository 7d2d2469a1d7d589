"""Where a person's embedding is read from the stride-8 embedding map: one cell, or the box.

JDE, CSTrack and OMC read the embedding at the cell holding the box centre. Averaging the unit
embeddings of every cell whose centre lies in the box (at least the centre cell) is what ReID
networks do with global pooling, and it sees the whole person rather than the middle of the
torso: on held-out ReID identities the bundled model's cross-camera rank-1 goes from 5.7 to
13.4 (CUHK01) and 3.1 to 9.5 (CUHK03) with no retraining (model card). The sums come from one
gather of just the covered cells (no pass over the whole map; vectorised over the boxes).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from cstrack.config import EMBEDDING_READOUTS

Readout = Literal["box", "centre"]  # EMBEDDING_READOUTS


def _cell_ranges(boxes: torch.Tensor, grid: tuple[int, int], stride: int) -> tuple[torch.Tensor, ...]:
    """Inclusive cell ranges (x0, x1, y0, y1) of the cells whose centres lie in each xyxy box,
    widened to the box centre's cell so that no range is empty."""
    height, width = grid
    scaled = boxes.float() / stride
    centre_x = ((scaled[:, 0] + scaled[:, 2]) / 2).floor().long().clamp(0, width - 1)
    centre_y = ((scaled[:, 1] + scaled[:, 3]) / 2).floor().long().clamp(0, height - 1)
    x0 = torch.minimum((scaled[:, 0] - 0.5).ceil().long().clamp(0, width - 1), centre_x)
    x1 = torch.maximum((scaled[:, 2] - 0.5).floor().long().clamp(0, width - 1), centre_x)
    y0 = torch.minimum((scaled[:, 1] - 0.5).ceil().long().clamp(0, height - 1), centre_y)
    y1 = torch.maximum((scaled[:, 3] - 0.5).floor().long().clamp(0, height - 1), centre_y)
    return x0, x1, y0, y1


def read_embeddings(
    embedding: torch.Tensor,
    boxes: torch.Tensor,
    stride: int,
    readout: Readout = "box",
    image: torch.Tensor | None = None,
) -> torch.Tensor:
    """Unit embeddings (N, E) of the xyxy `boxes` (N, 4, map input pixels) from an embedding map
    (E, H, W), or (B, E, H, W) with `image` (N,) naming each box's image. Differentiable."""
    maps = embedding if embedding.dim() == 4 else embedding[None]
    index = torch.zeros(len(boxes), dtype=torch.long) if image is None else image.long()
    grid = (maps.shape[2], maps.shape[3])
    if readout == "centre":
        height, width = grid
        scaled = boxes.float() / stride
        cx = ((scaled[:, 0] + scaled[:, 2]) / 2).floor().long().clamp(0, width - 1)
        cy = ((scaled[:, 1] + scaled[:, 3]) / 2).floor().long().clamp(0, height - 1)
        return F.normalize(maps[index, :, cy, cx].float(), dim=1)
    if readout != "box":
        raise ValueError(f"readout must be one of {EMBEDDING_READOUTS}, got {readout!r}")
    x0, x1, y0, y1 = _cell_ranges(boxes, grid, stride)
    widths = x1 - x0 + 1
    counts = widths * (y1 - y0 + 1)
    owner = torch.repeat_interleave(torch.arange(len(boxes)), counts)
    offset = torch.arange(int(counts.sum())) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
    rows = y0[owner] + torch.div(offset, widths[owner], rounding_mode="floor")
    columns = x0[owner] + offset % widths[owner]
    cells = F.normalize(maps[index[owner], :, rows, columns].float(), dim=1)  # (cells, E)
    sums = torch.zeros((len(boxes), maps.shape[1]), dtype=cells.dtype).index_add(0, owner, cells)
    return F.normalize(sums, dim=1)

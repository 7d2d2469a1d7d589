"""YOLOv5 target assignment: which (image, anchor, cell) of each level learns which ground-truth box.

A box is assigned on a level to every anchor whose shape is within a factor `anchor_t` (4) of it,
max(r, 1/r) < 4 per side with r = box wh / anchor wh, in the cell holding its centre and in the
(up to) two neighbouring cells nearest to the centre: the left (right) cell when the centre is in
the left (right) half of its cell, the upper (lower) cell likewise (the 0.5 offset rule). A box
can thus train several anchors on several levels, which is what makes YOLOv5 learn fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cstrack.models.detect import Detect

ANCHOR_T = 4.0
NEIGHBOUR_OFFSET = 0.5
# Target columns (collate's layout): batch index, class, identity, centre x, y, width, height (pixels).
T_BATCH, T_CLASS, T_ID, T_CX, T_CY, T_W, T_H = range(7)
# Cell offsets: the centre's cell, then left, up, right, down.
_OFFSETS = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float32) * NEIGHBOUR_OFFSET


@dataclass
class LevelTargets:
    """The positives of one pyramid level, one row per (box, anchor, cell) assignment."""

    image: torch.Tensor  # (P,) batch index
    anchor: torch.Tensor  # (P,) anchor index within the level
    cell_y: torch.Tensor  # (P,) grid row
    cell_x: torch.Tensor  # (P,) grid column
    box: torch.Tensor  # (P, 4) target centre relative to the cell corner, and size, in grid units
    anchor_wh: torch.Tensor  # (P, 2) anchor size in grid units
    cls: torch.Tensor  # (P,) class index
    target: torch.Tensor  # (P,) row of the targets tensor the assignment came from

    def __len__(self) -> int:
        return len(self.image)


def assign_targets(
    targets: torch.Tensor,
    detect: Detect,
    grid_shapes: list[tuple[int, int]],
    anchor_t: float = ANCHOR_T,
) -> list[LevelTargets]:
    """Assign targets (n, 7) in input pixels to the anchors of each level (grid_shapes (H, W))."""
    device = targets.device
    offsets = _OFFSETS.to(device)
    levels = []
    for level, (grid_h, grid_w) in enumerate(grid_shapes):
        stride = detect.strides[level]
        anchors = detect.anchors[level].to(device)  # (na, 2) grid units
        gxy = targets[:, [T_CX, T_CY]] / stride
        gwh = targets[:, [T_W, T_H]] / stride
        ratio = gwh[None] / anchors[:, None]  # (na, n, 2)
        matches = torch.max(ratio, 1 / ratio).amax(2) < anchor_t
        anchor_index, target_index = matches.nonzero(as_tuple=True)
        gxy, gwh = gxy[target_index], gwh[target_index]
        inverse = torch.tensor([grid_w, grid_h], device=device, dtype=gxy.dtype) - gxy
        left, up = ((gxy % 1 < NEIGHBOUR_OFFSET) & (gxy > 1)).T
        right, down = ((inverse % 1 < NEIGHBOUR_OFFSET) & (inverse > 1)).T
        use = torch.stack((torch.ones_like(left), left, up, right, down))  # (5, m)
        which, row = use.nonzero(as_tuple=True)
        centre = gxy[row]
        cell = (centre - offsets[which]).long()
        cell_x = cell[:, 0].clamp(0, grid_w - 1)
        cell_y = cell[:, 1].clamp(0, grid_h - 1)
        corner = torch.stack((cell_x, cell_y), 1).to(centre.dtype)
        rows = target_index[row]
        levels.append(
            LevelTargets(
                image=targets[rows, T_BATCH].long(),
                anchor=anchor_index[row],
                cell_y=cell_y,
                cell_x=cell_x,
                box=torch.cat((centre - corner, gwh[row]), 1),
                anchor_wh=anchors[anchor_index[row]],
                cls=targets[rows, T_CLASS].long(),
                target=rows,
            )
        )
    return levels

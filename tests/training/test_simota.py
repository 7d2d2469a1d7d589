"""SimOTA assignment and the YOLOX head's loss, checked on hand-made predictions."""

from __future__ import annotations

import torch

from cstrack.models import box_iou, create_model
from cstrack.training.simota import anchor_free_terms, simota_assign


def _grid(size: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centres = (torch.stack((xs, ys), -1).view(-1, 2).float() + 0.5) * stride
    return centres, torch.full((size * size,), float(stride))


def test_cells_predicting_the_box_win_and_far_cells_never_do() -> None:
    centres, strides = _grid(10, 8)  # 80 x 80 pixels
    gt = torch.tensor([[16.0, 16.0, 48.0, 56.0]])
    predictions = torch.tensor([[0.0, 0.0, 4.0, 4.0]]).repeat(100, 1)
    good = [3 * 10 + 3, 4 * 10 + 3, 4 * 10 + 4]  # cells inside the box and near its centre
    predictions[good] = gt
    logits = torch.zeros(100, 2)
    cells, gt_index, iou = simota_assign(gt, torch.tensor([0]), predictions, logits, centres, strides, 1)
    # dynamic k = floor(sum of the 10 best IoUs) = 3: exactly the three perfect cells
    assert sorted(cells.tolist()) == sorted(good)
    assert gt_index.tolist() == [0, 0, 0] and torch.allclose(iou, torch.ones(3))


def test_a_cell_claimed_by_two_boxes_goes_to_the_cheaper_one() -> None:
    centres, strides = _grid(10, 8)
    gt = torch.tensor([[20.0, 20.0, 44.0, 44.0], [24.0, 20.0, 48.0, 44.0]])
    predictions = gt[0].repeat(100, 1)  # every cell predicts box 0 exactly
    cells, gt_index, iou = simota_assign(
        gt, torch.tensor([0, 0]), predictions, torch.zeros(100, 2), centres, strides, 1
    )
    assert len(cells) == len(set(cells.tolist()))  # one box per cell
    ious = box_iou(gt, gt[:1])[:, 0]  # 1 for box 0, 5/7 for box 1
    # dynamic k: 10 for box 0 (ten IoUs of 1), floor(10 * 5/7) = 7 for box 1. Box 0 keeps all ten
    # of its cells; the cells both wanted went to box 0 (lower IoU cost), so box 1 has fewer than 7.
    assert int((gt_index == 0).sum()) == 10
    assert 0 < int((gt_index == 1).sum()) < 7
    assert torch.allclose(iou, ious[gt_index])


def test_loss_terms_fall_when_the_head_learns_one_image() -> None:
    torch.manual_seed(0)
    model = create_model("cstrack_yolox_nano", saan=False, ren=False)
    targets = torch.tensor([[0, 0, 0, 40.0, 48.0, 24.0, 60.0], [0, 0, 1, 100.0, 40.0, 20.0, 50.0]])
    image = torch.rand(1, 3, 96, 128)
    optimizer = torch.optim.Adam(model.head.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        out = model(image)
        terms = anchor_free_terms(out.head, targets, model.head)
        assert [t.part for t in terms] == ["box", "obj"] and all(t.count > 0 for t in terms)
        loss = sum(t.gain * t.total / t.count for t in terms)
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.7 * first  # measured 0.55

"""Target assignment and losses on small hand-checked cases."""

from __future__ import annotations

import math

import pytest
import torch

from cstrack.models.detect import ANCHORS, STRIDES, Detect
from cstrack.training.assign import assign_targets
from cstrack.training.losses import (
    IdentityClassifier,
    Term,
    bbox_ciou,
    box_union_mask,
    combine,
    detection_terms,
    embedding_scale,
    heat_sigma,
    heat_target,
    heat_term,
    recheck_box_term,
)

GRIDS_160x96 = [(12, 20), (6, 10), (3, 5)]


@pytest.fixture(scope="module")
def detect() -> Detect:
    return Detect((16, 32, 64), nc=1, anchors=ANCHORS, strides=STRIDES, bar=True)


def target(cx: float, cy: float, w: float, h: float, image: int = 0, identity: int = 0) -> torch.Tensor:
    return torch.tensor([[image, 0, identity, cx, cy, w, h]], dtype=torch.float32)


def assigned_cells(levels, level: int) -> set[tuple[int, int, int]]:
    positives = levels[level]
    return set(zip(positives.anchor.tolist(), positives.cell_x.tolist(), positives.cell_y.tolist()))


def test_assignment_of_one_box_with_two_neighbour_cells(detect: Detect) -> None:
    # 16x48 px box centred at (42, 26): stride 8 grid units centre (5.25, 3.25), size (2, 6).
    levels = assign_targets(target(42, 26, 16, 48), detect, GRIDS_160x96)
    # P3 anchors (1, 3), (1.375, 4.25), (2, 6) cells: ratios 2, 1.45, 1 -> all three match.
    # The centre is in the left and upper halves of cell (5, 3): cells (4, 3) and (5, 2) join.
    cells = {(5, 3), (4, 3), (5, 2)}
    assert assigned_cells(levels, 0) == {(a, x, y) for a in range(3) for x, y in cells}
    # P4 (stride 16): size (1, 3) vs anchors (2, 6), (2.81, 8.44), (4, 12): ratios 2, 2.81, 4 -> 0 and 1.
    # Centre (2.625, 1.625) lies in the right and lower halves: cells (3, 1) and (2, 2) join.
    p4_cells = {(2, 1), (3, 1), (2, 2)}
    assert assigned_cells(levels, 1) == {(a, x, y) for a in range(2) for x, y in p4_cells}
    # P5: ratio 8 to the smallest anchor, no match.
    assert len(levels[2]) == 0
    left = levels[0]
    row = ((left.cell_x == 4) & (left.cell_y == 3) & (left.anchor == 0)).nonzero()[0, 0]
    assert left.box[row].tolist() == pytest.approx([1.25, 0.25, 2.0, 6.0])


def test_assignment_at_the_cell_centre_has_no_neighbours(detect: Detect) -> None:
    levels = assign_targets(target(44, 28, 16, 48), detect, GRIDS_160x96)
    assert {(x, y) for _, x, y in assigned_cells(levels, 0)} == {(5, 3)}


def test_assignment_never_uses_a_neighbour_outside_the_grid(detect: Detect) -> None:
    levels = assign_targets(target(2, 2, 16, 48), detect, GRIDS_160x96)
    assert {(x, y) for _, x, y in assigned_cells(levels, 0)} == {(0, 0)}


def test_ciou_of_identical_boxes_is_one() -> None:
    box = torch.tensor([[10.0, 20.0, 4.0, 9.0]])
    assert bbox_ciou(box, box).item() == pytest.approx(1.0, abs=1e-6)


def test_ciou_of_known_boxes() -> None:
    # Same shape, shifted by 1: IoU 2/6, centre distance^2 1 over enclosing diagonal^2 13, v = 0.
    shifted = bbox_ciou(torch.tensor([[1.0, 1.0, 2.0, 2.0]]), torch.tensor([[2.0, 1.0, 2.0, 2.0]]))
    assert shifted.item() == pytest.approx(1 / 3 - 1 / 13, abs=1e-6)
    # Same centre, 2x2 vs 2x1: IoU 0.5, no distance, aspect term alpha * v.
    v = 4 / math.pi**2 * (math.atan(2) - math.atan(1)) ** 2
    alpha = v / (v - 0.5 + 1)
    flat = bbox_ciou(torch.tensor([[1.0, 1.0, 2.0, 2.0]]), torch.tensor([[1.0, 1.0, 2.0, 1.0]]))
    assert flat.item() == pytest.approx(0.5 - alpha * v, abs=1e-6)


def test_detection_loss_gives_the_bar_scale_a_gradient(detect: Detect) -> None:
    torch.manual_seed(0)
    head = [torch.randn(1, 3, h, w, 6, requires_grad=True) for h, w in GRIDS_160x96]
    terms = detection_terms(head, target(42, 26, 16, 48), detect)
    assert {term.part for term in terms} == {"box", "obj"}  # one class: no class loss
    combine(terms).loss.backward()
    assert detect.k.grad is not None and detect.k.grad.abs().item() > 0


def test_objectness_target_is_the_clamped_ciou(detect: Detect) -> None:
    head = [torch.zeros(1, 3, h, w, 6) for h, w in GRIDS_160x96]
    terms = detection_terms(head, target(44, 28, 16, 48), detect)
    obj_p3 = next(t for t in terms if t.part == "obj")
    # With all-zero logits every cell's BCE is ln 2, minus the target times the logit (0): sum = n ln 2.
    assert obj_p3.total.item() == pytest.approx(3 * 12 * 20 * math.log(2), rel=1e-5)
    assert obj_p3.count == 3 * 12 * 20


def test_identity_loss_ignores_unknown_ids() -> None:
    torch.manual_seed(0)
    classifier = IdentityClassifier(8, 5)
    embedding = torch.randn(2, 8, 12, 20)
    known = torch.cat([target(42, 26, 16, 48, 0, 3), target(100, 50, 16, 48, 1, 1)])
    unknown = target(70, 40, 16, 48, 1, -1)
    with_unknown = classifier.term(embedding, torch.cat([known, unknown]))
    without = classifier.term(embedding, known)
    assert with_unknown.count == without.count == 2
    assert with_unknown.total.item() == pytest.approx(without.total.item())
    only_unknown = classifier.term(embedding, unknown)
    assert only_unknown.count == 0 and only_unknown.total.item() == 0.0


def test_embedding_scale_is_jde_s() -> None:
    assert embedding_scale(101) == pytest.approx(math.sqrt(2) * math.log(100))


def test_combine_normalises_by_counts_reduced_over_processes() -> None:
    terms = [
        Term("box", torch.tensor(3.0), 2, 0.5),
        Term("box", torch.tensor(1.0), 1, 1.0),
    ]
    assert combine(terms).loss.item() == pytest.approx(0.5 * 3 / 2 + 1.0)
    assert combine([Term("id", torch.tensor(0.0), 0, 1.0)]).loss.item() == 0.0  # no samples: no loss
    doubled = combine(terms, reduce_counts=lambda counts: counts * 2)
    assert doubled.loss.item() == pytest.approx(0.5 * 3 / 4 + 1.0 / 2)


def test_box_union_mask_marks_cells_whose_centre_is_inside() -> None:
    mask = box_union_mask(torch.cat([target(20, 20, 16, 16), target(4, 4, 2, 2, image=1)]), 2, (4, 4), 8)
    assert mask[0, 0].nonzero().tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    assert mask[1, 0].nonzero().tolist() == [[0, 0]]  # covers no cell centre: its centre cell


def test_heat_target_peaks_at_one_on_the_centre_cell() -> None:
    heat = heat_target(torch.cat([target(45, 29, 80, 160), target(100, 70, 8, 16)]), 1, (12, 20), 8)
    assert heat.shape == (1, 1, 12, 20)
    assert heat[0, 0, 3, 5].item() == 1.0 and heat[0, 0, 8, 12].item() == 1.0
    assert int((heat == 1).sum()) == 2
    # The big box's sigma is capped at one cell: its neighbour is exp(-1/2).
    assert heat[0, 0, 3, 6].item() == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert heat_sigma(torch.tensor([10.0]), torch.tensor([20.0])).item() == 1.0
    assert heat_sigma(torch.tensor([1.0]), torch.tensor([2.0])).item() == pytest.approx(1 / 6)


def test_heat_loss_follows_eq_9() -> None:
    target_map = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]])
    prediction = torch.tensor([[[[0.8, 0.3], [0.1, 0.2]]]])
    term = heat_term(prediction, target_map)
    expected = (
        -(0.2 * math.log(0.8)) - (0.5 * 0.3 * math.log(0.7)) - (0.1 * math.log(0.9)) - (0.2 * math.log(0.8))
    )
    assert term.count == 1
    assert term.total.item() == pytest.approx(expected, rel=1e-5)


def test_recheck_box_loss_is_zero_for_an_exact_prediction() -> None:
    k = torch.tensor([10.0])
    box = torch.zeros(1, 4, 12, 20)
    # Centre (44, 28) is the middle of cell (5, 3): offset 0.5 = (sigmoid(r) - 0.5) * 10.
    raw_xy = math.log(0.55 / 0.45)
    box[0, :, 3, 5] = torch.tensor([raw_xy, raw_xy, 2.0, 6.0])
    term = recheck_box_term(box, target(44, 28, 16, 48), k)
    assert term.total.item() == pytest.approx(0.0, abs=1e-5)
    assert term.count == 1


def test_heat_loss_keeps_a_gradient_for_a_vanished_peak() -> None:
    logits = torch.full((1, 1, 2, 2), -18.0, requires_grad=True)  # probability 1.5e-8 everywhere
    target_map = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    heat_term(torch.sigmoid(logits), target_map).total.backward()
    assert logits.grad[0, 0, 0, 0].item() == pytest.approx(-1.0, abs=1e-3)

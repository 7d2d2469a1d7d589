"""NMS: the OpenCV path keeps exactly what the torch path keeps; `nms` dispatches between them."""

from __future__ import annotations

import cv2
import pytest
import torch

import cstrack.models.suppression as nms_module  # the module, for monkeypatching its names
from cstrack.models import nms
from cstrack.models.suppression import box_iou, nms_opencv, nms_torch

THRESHOLDS = (0.2, 0.3, 1 / 3, 0.45, 0.5, 0.6, 0.7)
KINDS = ("float", "grid", "crowd", "degenerate")


def random_case(kind: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 xyxy boxes and scores of one kind; grid and degenerate cases have tied scores."""
    g = torch.Generator().manual_seed(seed)
    if kind == "float":
        xy = torch.rand(300, 2, generator=g) * 200
        wh = torch.rand(300, 2, generator=g) * 60 + 2
    elif kind == "grid":  # multiples of a step: many IoUs exactly at or a rounding away from a threshold
        step = (1.0, 0.5, 0.1, 0.3, 0.7)[seed % 5]
        xy = torch.randint(0, 12, (150, 2), generator=g) * step
        wh = torch.randint(1, 12, (150, 2), generator=g) * step
    elif kind == "crowd":  # long suppression chains around a few centres
        centres = torch.rand(5, 2, generator=g) * 100
        xy = centres[torch.randint(0, 5, (300,), generator=g)] + torch.randn(300, 2, generator=g) * 3
        wh = 30 + torch.randn(300, 2, generator=g) * 3
    else:  # duplicates, flat boxes, negative coordinates
        xy = torch.randint(-20, 20, (120, 2), generator=g).float()
        wh = torch.randint(0, 15, (120, 2), generator=g).float()
        xy[60:], wh[60:] = xy[:60], wh[:60]
    boxes = torch.cat((xy, xy + wh), 1)
    scores = torch.rand(len(boxes), generator=g)
    if kind in ("grid", "degenerate"):
        scores = torch.randint(0, 6, (len(boxes),), generator=g) / 5
    return boxes, scores


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kind", KINDS)
def test_opencv_matches_torch(kind: str, seed: int) -> None:
    boxes, scores = random_case(kind, seed)
    labels = torch.randint(0, 3, (len(boxes),), generator=torch.Generator().manual_seed(seed))
    for thr in THRESHOLDS:
        for lab in (None, labels):
            expected = nms_torch(boxes, scores, thr, 1000, lab).tolist()
            assert nms_opencv(boxes, scores, thr, 1000, lab).tolist() == expected
            assert nms(boxes, scores, thr, 1000, lab).tolist() == expected


def test_hand_example() -> None:
    boxes = torch.tensor(
        [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]], dtype=torch.float32
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    labels = torch.tensor([0, 0, 0, 1])
    for path in (nms, nms_opencv, nms_torch):
        assert path(boxes, scores, 0.6).tolist() == [3, 2]  # box 0 duplicates 3; box 1 overlaps it 9/11
        assert path(boxes, scores, 0.6, labels=labels).tolist() == [3, 0, 2]  # 3 is another label
        assert path(boxes, scores, 0.9).tolist() == [3, 1, 2]
        assert path(boxes, scores, 0.6, max_det=1).tolist() == [3]


@pytest.mark.parametrize("path", [nms_opencv, nms_torch])
def test_iou_at_the_threshold_is_kept(path) -> None:
    scores = torch.tensor([0.9, 0.8])
    three_fifths = torch.tensor([[0, 0, 4, 1], [1, 0, 5, 1]], dtype=torch.float32)
    assert path(three_fifths, scores, 0.6).tolist() == [0, 1]
    assert path(three_fifths, scores, 0.59).tolist() == [0]
    half = torch.tensor([[0, 0, 3, 1], [1, 0, 4, 1]], dtype=torch.float32)
    assert path(half, scores, 0.5).tolist() == [0, 1]
    assert path(half, scores, 0.49).tolist() == [0]


def test_overlap_rounds_like_opencv() -> None:
    """IoU 1/5 in float64 that float32 arithmetic puts above 0.2: OpenCV keeps both, so must torch."""
    boxes = torch.tensor([[3.5, 0.0, 6.3, 2.1], [2.1, 0.0, 4.9, 4.2]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8])
    assert box_iou(boxes, boxes)[0, 1] > 0.2
    assert nms_opencv(boxes, scores, 0.2).tolist() == nms_torch(boxes, scores, 0.2).tolist() == [0, 1]


@pytest.mark.parametrize("path", [nms_opencv, nms_torch])
def test_zero_area_boxes_are_kept(path) -> None:
    """OpenCV alone would call two flat boxes identical and drop one; torch's IoU of them is 0."""
    boxes = torch.tensor([[5, 5, 5, 9], [5, 5, 5, 9], [0, 0, 10, 10], [3, 3, 3, 3]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert path(boxes, scores, 0.5).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("path", [nms_opencv, nms_torch])
def test_ties_keep_the_lower_index(path) -> None:
    boxes = torch.tensor([[0, 0, 10, 10]] * 4 + [[50, 50, 60, 60]] * 2, dtype=torch.float32)
    scores = torch.tensor([0.5, 0.7, 0.7, 0.7, 0.6, 0.6])
    assert path(boxes, scores, 0.5).tolist() == [1, 4]


@pytest.mark.parametrize("path", [nms_opencv, nms_torch])
def test_labels_with_negative_coordinates(path) -> None:
    """NMSBoxesBatched would let these suppress each other: it offsets classes from 0, not the minimum."""
    boxes = torch.tensor([[-100, -100, -50, -50], [-100, -100, -50, -50], [-99, -100, -50, -50]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert path(boxes.float(), scores, 0.5, labels=torch.tensor([0, 1, 1])).tolist() == [0, 1]


def test_candidate_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nms_module, "MAX_NMS_CANDIDATES", 50)
    boxes, scores = random_case("float", 3)
    best = set(scores.argsort(descending=True)[:50].tolist())
    kept = nms_opencv(boxes, scores, 0.5, 1000).tolist()
    assert kept == nms_torch(boxes, scores, 0.5, 1000).tolist()
    assert set(kept) <= best and len(kept) > 20


@pytest.mark.parametrize("path", [nms, nms_opencv, nms_torch])
def test_empty(path) -> None:
    keep = path(torch.zeros(0, 4), torch.zeros(0), 0.6, labels=torch.zeros(0, dtype=torch.long))
    assert keep.dtype == torch.long and keep.shape == (0,)
    assert path(torch.zeros(0, 4), torch.zeros(0), 0.6).shape == (0,)


def test_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU IoU-NMS goes through OpenCV; DIoU, which OpenCV lacks, stays in torch."""
    calls = []
    original = cv2.dnn.NMSBoxes

    def counting(*args, **kwargs):
        calls.append(len(args[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(cv2.dnn, "NMSBoxes", counting)
    boxes, scores = random_case("crowd", 0)
    nms(boxes, scores, 0.6)
    assert calls == [300]
    assert nms(boxes, scores, 0.5, diou=True).tolist() == nms_torch(boxes, scores, 0.5, diou=True).tolist()
    assert calls == [300]

"""The re-check network: similarity masks, heads with 0..K templates, box decode and peaks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cstrack.models import OMC, create_model, decode_recheck_boxes, heat_peaks, similarity_map
from cstrack.models.recheck import template_masks

H, W = 192, 320


@pytest.fixture(scope="module")
def output(omc_s: OMC):
    with torch.no_grad():
        return omc_s(torch.rand(2, 3, H, W, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("count", [0, 1, 5])
def test_recheck_shapes(omc_s: OMC, output, count: int) -> None:
    # Templates taken from the map itself, so every image has a positive similarity somewhere.
    templates = [e.flatten(1)[:, torch.arange(count) * 7].T for e in output.embedding]
    with torch.no_grad():
        result = omc_s.recheck(output, templates)
    for t in (result.heat, result.similarity):
        assert t.shape == (2, 1, H // 8, W // 8)
    assert result.box.shape == (2, 4, H // 8, W // 8)
    assert torch.all((result.heat > 0) & (result.heat < 1))
    if count == 0:
        assert torch.all(result.similarity == 0)
    else:
        assert torch.allclose(result.similarity.amax((1, 2, 3)), torch.ones(2))
        assert result.similarity.min() >= 0


def test_recheck_single_image_tensor(omc_s: OMC, output) -> None:
    single = type(output)(
        [h[:1] for h in output.head], output.embedding[:1], None, tuple(f[:1] for f in output.features)
    )
    with torch.no_grad():
        assert omc_s.recheck(single, torch.randn(3, 512)).heat.shape == (1, 1, H // 8, W // 8)
        with pytest.raises(ValueError, match="one templates tensor per image"):
            omc_s.recheck(output, torch.randn(3, 512))


def test_hard_mask_keeps_a_square_per_template() -> None:
    r = 3
    torch.manual_seed(0)
    embedding = torch.randn(16, 24, 40)
    templates = embedding[:, [5, 18], [7, 30]].T.clone()  # peaks at (x=7, y=5) and (x=30, y=18)
    masks = template_masks(
        torch.rand(2, 24, 40) + F.one_hot(torch.tensor([5 * 40 + 7, 18 * 40 + 30]), 960).view(2, 24, 40), r
    )
    for mask, (y, x) in zip(masks, [(5, 7), (18, 30)]):
        assert mask.sum() == (2 * r + 1) ** 2
        assert torch.all(mask[y - r : y + r + 1, x - r : x + r + 1] == 1)
    result = similarity_map(embedding, templates, r)[0]
    cosine = torch.relu(F.normalize(templates, dim=1) @ F.normalize(embedding.view(16, -1), dim=0)).view(
        2, 24, 40
    )
    expected = torch.zeros(24, 40)
    for c, (y, x) in zip(cosine, [(5, 7), (18, 30)]):
        expected[y - r : y + r + 1, x - r : x + r + 1] += c[y - r : y + r + 1, x - r : x + r + 1]
    torch.testing.assert_close(result, expected / expected.max())
    assert torch.count_nonzero(result) <= 2 * (2 * r + 1) ** 2


def test_hard_mask_is_clipped_at_the_border() -> None:
    sim = torch.zeros(1, 10, 12)
    sim[0, 0, 11] = 1.0
    assert template_masks(sim, 3)[0].sum() == 4 * 4


def test_soft_mask() -> None:
    sim = torch.zeros(1, 15, 15)
    sim[0, 7, 7] = 1.0
    mask = template_masks(sim, 3, "soft")[0]
    assert mask[7, 7] == 1.0 and mask.argmax() == 7 * 15 + 7
    assert mask[7, 10] < mask[7, 9] < mask[7, 8] < 1.0
    torch.testing.assert_close(mask, mask.T)
    model = create_model("omc_n", recheck_mask="soft")
    assert model.cfg.recheck_mask == "soft"


def test_decode_recheck_boxes() -> None:
    raw = torch.zeros(1, 4, 3, 5)
    raw[0, 2:, 1, 2] = torch.tensor([2.0, 4.0])
    k = torch.tensor([10.0])
    boxes = decode_recheck_boxes(raw, k)
    assert boxes.shape == (1, 3, 5, 4)
    torch.testing.assert_close(boxes[0, 1, 2], torch.tensor([16.0 - 8, 8.0 - 16, 16.0 + 8, 8.0 + 16]))
    raw[0, 0, 0, 0] = 20.0  # sigmoid ~ 1: BAR reaches (1 - 0.5) * k = 5 cells
    assert torch.isclose(decode_recheck_boxes(raw, k)[0, 0, 0, 0], torch.tensor(40.0))


def test_heat_peaks() -> None:
    heat = torch.zeros(10, 12)
    heat[2, 3], heat[2, 4], heat[7, 9], heat[5, 5] = 0.9, 0.8, 0.6, 0.2
    scores, cells = heat_peaks(heat, top_k=100, threshold=0.3)
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.6]))
    assert cells.tolist() == [2 * 12 + 3, 7 * 12 + 9]
    assert heat_peaks(heat, top_k=1, threshold=0.3)[1].tolist() == [27]

"""Embedding readout: the centre cell, or the mean of the unit cells a box covers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cstrack.models.readout import read_embeddings


def _map() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(5, 6, 7)  # (E, H, W) at stride 8: 56 x 48 pixels


def test_centre_reads_the_cell_holding_the_box_centre() -> None:
    embedding = _map()
    boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0], [30.0, 20.0, 50.0, 44.0]])  # centres (8, 8), (40, 32)
    got = read_embeddings(embedding, boxes, 8, "centre")
    expected = F.normalize(torch.stack([embedding[:, 1, 1], embedding[:, 4, 5]]), dim=1)
    torch.testing.assert_close(got, expected)


def test_box_is_the_mean_of_the_unit_cells_whose_centres_it_covers() -> None:
    embedding = _map()
    unit = F.normalize(embedding, dim=0)
    # Cell centres are at 4, 12, 20, ...: x 10..35 covers columns 1-3, y 2..29 rows 0-3 (centre 28).
    got = read_embeddings(embedding, torch.tensor([[10.0, 2.0, 35.0, 29.0]]), 8, "box")
    expected = F.normalize(unit[:, 0:4, 1:4].mean((1, 2)), dim=0)
    torch.testing.assert_close(got[0], expected)


def test_a_box_smaller_than_a_cell_reads_its_centre_cell() -> None:
    embedding = _map()
    got = read_embeddings(embedding, torch.tensor([[17.0, 9.0, 19.0, 11.0]]), 8, "box")
    torch.testing.assert_close(got[0], F.normalize(embedding[:, 1, 2], dim=0))


def test_boxes_past_the_border_read_the_cells_inside() -> None:
    embedding = _map()
    got = read_embeddings(embedding, torch.tensor([[-40.0, -40.0, 100.0, 100.0]]), 8, "box")
    torch.testing.assert_close(got[0], F.normalize(F.normalize(embedding, dim=0).mean((1, 2)), dim=0))


def test_a_batch_reads_each_box_in_its_own_image_and_is_differentiable() -> None:
    maps = torch.randn(2, 5, 6, 7, requires_grad=True)
    boxes = torch.tensor([[10.0, 2.0, 35.0, 29.0], [10.0, 2.0, 35.0, 29.0]])
    got = read_embeddings(maps, boxes, 8, "box", image=torch.tensor([1, 0]))
    single = read_embeddings(maps[1].detach(), boxes[:1], 8, "box")
    torch.testing.assert_close(got[0].detach(), single[0])
    got.sum().backward()
    assert maps.grad is not None and maps.grad[:, :, 0:4, 1:4].abs().sum() > 0
    assert maps.grad[:, :, 4:, :].abs().sum() == 0  # cells outside every box get no gradient


def test_an_unknown_readout_is_refused() -> None:
    with pytest.raises(ValueError, match="readout must be one of"):
        read_embeddings(_map(), torch.zeros((1, 4)), 8, "corner")  # type: ignore[arg-type]

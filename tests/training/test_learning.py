"""Proof that training learns: a few CPU minutes of the smallest CSTrack on synthetic people.

cstrack_n at 160x96 on 4 synthetic sequences of 40 frames (320x192, about 5 people), 30 epochs
of batch 8, lr 0.02 cosine, validated on a held-out sequence after epochs 15 and 30. It starts
from an untrained network, whose objectness prior keeps every score far below 0.5 (recall 0).
The spread, measured with training seeds 0-3 and 1 or 2 threads (which changes float summation
order as another CPU does): loss first -> last epoch 0.62-0.70 -> 0.26-0.28 (ratio 0.41-0.43);
recall at the tracking threshold (score > 0.5, IoU 0.5) after epoch 30 0.525, 0.577, 0.577,
0.670 (0.526 on an AMD EPYC machine; 0.64-0.65 with earlier model code). Between epochs it swings
(seed 0, every 5 epochs: 0.70, 0.53, 0.57, 0.63, 0.36, 0.53), as many scores of this undertrained
model sit near 0.5: the test asserts a floor well below every final value and no ordering
between the two validations (the AMD run had 0.567 after epoch 15, 0.526 after 30). AP50 is
logged, not asserted (0.05-0.50 between runs and epochs).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from cstrack.data.synth.scene import SynthConfig
from cstrack.training import TrainConfig, train

SCENE = SynthConfig(frames=40, width=320, height=192, people=5, person_height=0.7, far_scale=0.6)
EPOCHS = 30
MIN_LOSS_DROP = 0.5  # last epoch's loss at most half the first's
MIN_RECALL = 0.3  # at the tracking threshold (score > 0.5), IoU 0.5; untrained: 0


@pytest.mark.slow
def test_cstrack_n_learns_to_detect_synthetic_people(
    tmp_path: Path, make_synthetic_data: Callable[..., Path]
) -> None:
    data = make_synthetic_data(tmp_path / "data", SCENE, train_sequences=4, val_sequences=1)
    result = train(
        TrainConfig(
            model="cstrack_n",
            data=str(data),
            epochs=EPOCHS,
            batch=8,
            img_size=(160, 96),
            workers=0,
            lr=0.02,
            schedule="cosine",
            output=str(tmp_path / "runs"),
            val_every=EPOCHS // 2,
            quiet=True,
        )
    )
    with (result.run_dir / "results.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    losses = [float(row["loss"]) for row in rows]
    assert losses[-1] < MIN_LOSS_DROP * losses[0]
    first_val, last_val = (row for row in rows if row["AP50"])
    assert float(last_val["recall"]) > MIN_RECALL
    assert 0 <= float(last_val["AP50"]) <= 1
    assert result.best_fitness == pytest.approx(max(float(first_val["HOTA"]), float(last_val["HOTA"])))

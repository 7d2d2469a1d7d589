"""Tiny synthetic JDE datasets, rendered once per session by the synth module and `from_mot`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cstrack.data.mot_to_jde import from_mot
from cstrack.data.synth.scene import SynthConfig
from cstrack.data.synth.write import generate_dataset

# Large, close figures so a few minutes of CPU training can learn to find them at 160x96.
TINY_SCENE = SynthConfig(frames=8, width=320, height=192, people=4, person_height=0.7, far_scale=0.6)


def make_dataset(
    root: Path, scene: SynthConfig, train_sequences: int, val_sequences: int, seed: int = 1
) -> Path:
    """Render train and val sequences, convert them to the JDE layout, write ROOT/data.yaml."""
    generate_dataset(root / "mot_train", scene, sequences=train_sequences, seed=seed, prefix="TRAIN")
    from_mot(root / "mot_train", root / "jde", name="train")
    lines = ["train:", "  synth: jde/train.train"]
    if val_sequences:
        generate_dataset(root / "mot_val", scene, sequences=val_sequences, seed=seed + 1, prefix="VAL")
        from_mot(root / "mot_val", root / "jde", name="val")
        lines += ["val:", "  synth_val: jde/val.train"]
    config = root / "data.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


@pytest.fixture(scope="session")
def make_synthetic_data() -> Callable[..., Path]:
    """`make_dataset` for tests that need their own scene."""
    return make_dataset


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data.yaml of 8 training frames (one sequence) and 8 validation frames."""
    return make_dataset(tmp_path_factory.mktemp("tiny"), TINY_SCENE, train_sequences=1, val_sequences=1)

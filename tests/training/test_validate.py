"""Training's validation scores tracking as `cstrack track --eval` does: on the same frames and
ground truth, with the same model, its HOTA (and every tracking score) is the runner's."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from cstrack.config import DEFAULT_MODEL, RuntimeConfig
from cstrack.data.jde import read_data_config
from cstrack.data.mot import SequenceInfo, read_results, write_seqinfo
from cstrack.evaluation import SequenceTables, evaluate_tables
from cstrack.models import model_from_spec
from cstrack.pipeline import Tracker, track
from cstrack.pipeline.tracker_config import TrackerConfig
from cstrack.training.dataset import load_frames, read_image
from cstrack.training.validate import (
    TRACKING_METRICS,
    ValSequence,
    ground_truth_rows,
    val_sequences,
)

# The module, not the function `cstrack.training.validate` that the package exports under its name.
validation = importlib.import_module("cstrack.training.validate")
pytestmark = pytest.mark.usefixtures("single_thread")
SIZE, FPS = (320, 192), 30.0


def as_mot_sequence(sequence: ValSequence, folder: Path) -> Path:
    """The validation frames as a MOTChallenge sequence whose gt.txt holds exactly the ground truth
    that validation builds from their labels (written with every digit)."""
    (folder / "img1").mkdir(parents=True)
    (folder / "gt").mkdir()
    next_id = int(max((f.labels[:, 1].max() for f in sequence.frames if len(f.labels)), default=0)) + 1
    lines = []
    for position, frame in enumerate(sequence.frames, start=1):
        shutil.copyfile(frame.image, folder / "img1" / f"{position:06d}{frame.image.suffix}")
        height, width = read_image(frame.image).shape[:2]
        rows, next_id = ground_truth_rows(frame, position, (height, width), next_id)
        lines += [f"{int(r[0])},{int(r[1])}," + ",".join(repr(float(v)) for v in r[2:]) for r in rows]
    (folder / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
    info = SequenceInfo(folder.name, FPS, len(sequence.frames), width, height, "img1", frame.image.suffix)
    write_seqinfo(folder / "seqinfo.ini", info)
    return folder


@pytest.mark.parametrize("recheck", [False, True])
def test_validation_scores_what_track_eval_scores(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recheck: bool
) -> None:
    (sequence,) = val_sequences(load_frames(read_data_config(tiny_data).val))
    folder = as_mot_sequence(sequence, tmp_path / sequence.name)
    model = model_from_spec(DEFAULT_MODEL).model
    scored: dict[str, SequenceTables] = {}

    def evaluate(tables: dict[str, SequenceTables], benchmark: str) -> dict:
        scored.update(tables)
        return evaluate_tables(tables, benchmark)

    monkeypatch.setattr(validation, "evaluate_tables", evaluate)
    validated = validation.validate(model, [sequence], SIZE, recheck=recheck, frame_rate=FPS)
    # The runner's tracker as `cstrack track --eval --backend torch` builds it; its re-check covers
    # every active track, as validation's does (None: no cover selection).
    config = TrackerConfig().replace(img_size=SIZE, recheck_cover_iou=None)
    tracker = Tracker(model, config, RuntimeConfig(backend="torch", device="cpu"), recheck=recheck)
    run = track(folder, tracker, tmp_path / "out", evaluate=True, progress=False)[sequence.name]
    # Validation scores the rows the MOT file holds, so the scores are the runner's.
    np.testing.assert_array_equal(scored[sequence.name].results, read_results(run.files["mot"])[:, :7])
    assert run.scores["benchmark"] == "MOT17"
    assert validated["HOTA"] > 0.3  # the bundled model tracks the synthetic people
    assert {key: validated[key] for key in TRACKING_METRICS} == {
        key: float(run.scores[key]) for key in TRACKING_METRICS
    }

"""`cstrack data from-reid` and `cstrack eval-reid` on a small ReID root."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.cli.main import main
from cstrack.data.jde import read_data_config, read_list_file


def test_from_reid_writes_a_training_set_without_the_held_out_identities(
    reid_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    background = tmp_path / "scene.jpg"
    cv2.imwrite(str(background), np.full((200, 300, 3), 120, np.uint8))
    out = tmp_path / "jde"
    code = main(
        ["data", "from-reid", str(reid_root), str(out), "--backgrounds", str(background), "--frames", "4",
         "--size", "256", "192", "--people", "2", "4", "--heights", "40", "80", "--holdout", "0.2"]
    )  # fmt: skip
    assert code == 0
    assert "4 frames from 32 crops of 16 identities (4 identities held out)" in capsys.readouterr().out
    assert len(read_list_file(out / "reid.train")) == 4
    (out / "data.yaml").write_text("train:\n  reid: reid.train\n")
    assert read_data_config(out / "data.yaml").train.num_ids <= 16


def test_from_reid_refuses_a_missing_background_in_one_line(
    reid_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["data", "from-reid", str(reid_root), str(tmp_path / "o"), "--backgrounds", str(tmp_path / "no")]
    )
    assert code == 2
    assert capsys.readouterr().err.strip().endswith("no such image or folder")


def test_eval_reid_scores_the_held_out_identities(
    reid_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "scores.json"
    code = main(
        ["eval-reid", str(reid_root), "--model", "omc_yolox_nano_lite", "--img-size", "288", "160",
         "--holdout", "0.3", "--json", str(report)]
    )  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["set", "queries", "rank-1", "mAP"]
    scores = json.loads(report.read_text())
    # 3 held-out identities per dataset, one crop per camera: 6 queries each (both directions).
    assert scores["CUHK03"]["queries"] == 6 and scores["all"]["queries"] == 12
    for value in scores.values():
        assert 0 <= value["rank1"] <= 1 and 1 / 3 <= value["mean_ap"] <= 1


def test_train_embedding_writes_loadable_weights_after_each_round(
    reid_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cstrack.models.registry import model_from_weights
    from cstrack.models.weights import weights_metadata

    background = tmp_path / "scene.jpg"
    cv2.imwrite(str(background), np.full((200, 300, 3), 120, np.uint8))
    out = tmp_path / "reid.safetensors"
    code = main(
        ["train-embedding", str(reid_root), str(out), "--model", "omc_yolox_nano_lite", "--backgrounds",
         str(background), "--rounds", "2", "--epochs", "1", "--frames", "4", "--id-weight", "1"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed] == ["round 1/2", "round 2/2"]
    assert model_from_weights(out).emb_dim == 128
    assert weights_metadata(out) == {"arch": "omc_yolox_nano_lite"}


def test_train_embedding_refuses_an_output_it_could_not_load_in_one_line(
    reid_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["train-embedding", str(reid_root), str(tmp_path / "out.pt"), "--model", "omc_yolox_nano_lite",
         "--backgrounds", str(tmp_path)]
    )  # fmt: skip
    assert code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("the output must end in .safetensors (the only weights format loaded)")
    )

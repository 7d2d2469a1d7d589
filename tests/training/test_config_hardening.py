"""`cstrack train` options that would write outside --output or train on nonsense (issue 23):
refused by `TrainConfig`, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from cstrack.cli.main import main
from cstrack.errors import InputError
from cstrack.training.config import AugmentConfig, TrainConfig


@pytest.mark.parametrize("name", ["../../ESCAPE", "/tmp/absolute", "a/b", "..", "."])
def test_a_run_name_that_leaves_the_output_folder_is_refused(name: str):
    with pytest.raises(InputError, match=r"name=.* \(must be one folder name, without / or \.\.\)"):
        TrainConfig(model="omc_n", data="d.yaml", name=name)


def test_the_empty_output_path_and_bad_augmentation_are_refused():
    with pytest.raises(InputError, match=r"output='' \(must be a folder, not the empty path\)"):
        TrainConfig(model="omc_n", data="d.yaml", output="")
    with pytest.raises(InputError, match=r"must be scale and translate in \[0, 1\)"):
        TrainConfig(model="omc_n", data="d.yaml", augment=AugmentConfig(scale=-2))


def test_the_command_refuses_them_before_reading_the_data(capsys, tmp_path: Path):
    code = main(["train", "--model", "omc_n", "--data", str(tmp_path / "missing.yaml"), "--scale", "-2"])
    err = capsys.readouterr().err
    assert code == 2 and "scale and translate in [0, 1)" in err and len(err.splitlines()) == 1
    assert TrainConfig(model="omc_n", data="d.yaml", name="run-1").name == "run-1"

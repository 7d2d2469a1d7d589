"""The trainer end to end on tiny synthetic data: run folder, exact resume, DDP = one process, CLI."""

from __future__ import annotations

import csv
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cstrack.models import create_model
from cstrack.models.registry import model_from_weights
from cstrack.training import TrainConfig, load_checkpoint, train
from cstrack.training.checkpoint import read_weights

LOSS_COLUMNS = ("box", "obj", "cls", "id", "mask", "loss")
VAL_COLUMNS = ("AP50", "recall", "HOTA", "MOTA", "IDF1")


def tiny_config(data: Path, runs: Path, **changes: object) -> TrainConfig:
    values: dict[str, object] = {
        "model": "omc_n",
        "data": str(data),
        "epochs": 3,
        "batch": 4,
        "img_size": (160, 96),
        "workers": 0,
        "lr": 0.01,
        "warmup_epochs": 1.0,
        "output": str(runs),
        "quiet": True,
    }
    return TrainConfig(**{**values, **changes})


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


class Interrupted(Exception):
    pass


def test_run_folder_and_exact_resume(tiny_data: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    full = train(tiny_config(tiny_data, runs, name="full"))
    assert full.run_dir == runs / "full"
    assert sorted(p.name for p in full.run_dir.iterdir()) == [
        "best.safetensors",
        "config.yaml",
        "last.safetensors",
        "results.csv",
        "weights.safetensors",
    ]
    deployed = model_from_weights(full.run_dir / "weights.safetensors")
    for key, value in read_weights(full.best, ema=True).items():
        assert torch.equal(deployed.state_dict()[key], value)
    saved = yaml.safe_load((full.run_dir / "config.yaml").read_text())
    assert saved["model"] == "omc_n" and saved["img_size"] == [160, 96]

    def stop_after_second_epoch(epoch: int, row: dict[str, float]) -> None:
        if epoch == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(tiny_config(tiny_data, runs, name="cut"), on_epoch_end=stop_after_second_epoch)
    assert len(read_csv(runs / "cut" / "results.csv")) == 2
    resumed = train(resume=runs / "cut")
    assert [row["epoch"] for row in resumed.history] == [3]

    full_rows, cut_rows = read_csv(full.run_dir / "results.csv"), read_csv(runs / "cut" / "results.csv")
    assert [row["epoch"] for row in cut_rows] == ["1", "2", "3"]
    for full_row, cut_row in zip(full_rows, cut_rows):
        for column in (*LOSS_COLUMNS, *VAL_COLUMNS, "lr"):
            assert float(cut_row[column]) == pytest.approx(float(full_row[column]), abs=1e-6), column
    assert float(full_rows[-1]["loss"]) < float(full_rows[0]["loss"])
    full_state, cut_state = load_checkpoint(full.last), load_checkpoint(runs / "cut" / "last.safetensors")
    assert full_state.meta["epoch"] == cut_state.meta["epoch"] == 2
    for key, value in full_state.ema.items():
        torch.testing.assert_close(cut_state.ema[key], value, rtol=0, atol=1e-6)


def test_recheck_stage_trains_only_the_recheck_heads(tiny_data: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    base = train(tiny_config(tiny_data, runs, name="base", epochs=1, val_every=0))
    recheck = train(
        tiny_config(
            tiny_data, runs, name="recheck", epochs=1, stage="recheck", weights=str(base.last), val_every=0
        )
    )
    rows = read_csv(recheck.run_dir / "results.csv")
    assert float(rows[0]["heat"]) > 0 and float(rows[0]["rbox"]) > 0
    before, after = read_weights(base.last, ema=True), read_weights(recheck.last)
    for key, value in after.items():
        if key.startswith(("siambox.", "siamheatmap.")):
            continue
        assert torch.equal(value, before[key]), key
    assert any(
        not torch.equal(value, before[key]) for key, value in after.items() if key.startswith("siamheatmap.")
    )


def test_ddp_two_processes_step_like_one(tiny_data: Path, tmp_path: Path) -> None:
    """Two gloo processes of global batch 4 take the same steps as one process of batch 4.

    BatchNorm statistics are per process without SyncBN, so both runs keep them fixed (--freeze-bn).
    """
    runs = tmp_path / "runs"
    options = shlex.split(
        "--model omc_n --epochs 1 --batch 4 --img-size 160 96 --workers 0 --lr 0.01 --freeze-bn"
    )
    options += ["--val-every", "0", "--quiet", "--data", str(tiny_data), "--output", str(runs)]
    single = train(tiny_config(tiny_data, runs, name="single", epochs=1, freeze_bn=True, val_every=0))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    completed = subprocess.run(
        [*launch, "-m", "cstrack", "train", *options, "--name", "ddp"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    single_rows, ddp_rows = read_csv(single.run_dir / "results.csv"), read_csv(runs / "ddp" / "results.csv")
    for column in LOSS_COLUMNS:
        assert float(ddp_rows[0][column]) == pytest.approx(float(single_rows[0][column]), rel=1e-4), column
    single_weights, ddp_weights = read_weights(single.last), read_weights(runs / "ddp" / "last.safetensors")
    assert load_checkpoint(single.last).meta["ema_updates"] == 2
    for key, value in single_weights.items():
        torch.testing.assert_close(ddp_weights[key], value, rtol=0, atol=1e-5, msg=key)
    torch.manual_seed(0)  # the trainer's initialisation
    initial = create_model("omc_n").state_dict()
    moved = max((single_weights[key] - value).abs().max().item() for key, value in initial.items())
    assert moved > 1e-3  # the two steps changed the weights far beyond the tolerance


def test_cli_needs_model_and_data() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "cstrack", "train", "--epochs", "1"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2
    assert "cstrack train: error: --model and --data are required" in completed.stderr


def test_cli_names_each_invalid_option_and_its_rule(tiny_data: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "cstrack", "train", "--model", "omc_n", "--data", str(tiny_data)]
        + ["--img-size", "100", "96", "--epochs", "0"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        "cstrack train: error: invalid training options: epochs=0 (must be >= 1); "
        "img_size=(100, 96) (must be width and height, positive multiples of 32)"
    )


def test_recheck_stage_takes_only_the_base_from_weights(tmp_path: Path) -> None:
    from cstrack.models import create_model, save_weights
    from cstrack.training.trainer import _load_initial_weights

    source = create_model("omc_n")
    with torch.no_grad():
        for tensor in source.state_dict().values():
            if tensor.is_floating_point():
                tensor.fill_(7.0)
    path = save_weights(source, tmp_path / "stage1.safetensors")
    torch.manual_seed(0)
    model = create_model("omc_n")
    fresh = model.siamheatmap.conv2[-1].bias.clone()
    report = _load_initial_weights(model, str(path), "recheck")
    assert torch.equal(model.siamheatmap.conv2[-1].bias, fresh)  # the heat-map prior, not the file's 7
    assert torch.all(model.model.model[0].conv.conv.weight == 7.0)
    assert "model tensors not in the file" in report


def test_freeze_prefixes_stop_training_and_unknown_ones_are_refused() -> None:
    from cstrack.errors import InputError
    from cstrack.training.trainer import _freeze

    model = create_model("omc_yolox_nano")
    report = _freeze(model, ("backbone", "head"))
    assert "889,059 parameters" in report  # YOLOX-Nano's 889,058 and BAR's k
    base = model.model
    assert not any(p.requires_grad for p in base.backbone.parameters())
    assert all(p.requires_grad for p in base.embedding.parameters())
    with pytest.raises(InputError, match="--freeze nothing_here"):
        _freeze(model, ("nothing_here",))


def test_a_kill_between_checkpoint_and_csv_loses_no_row(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows live in last.safetensors; results.csv is derived and rewritten on --resume."""
    from cstrack.training import trainer

    runs = tmp_path / "runs"
    write_rows = trainer._write_rows

    def killed_on_second_epoch(path: Path, rows: list) -> None:
        if len(rows) == 2:
            raise Interrupted  # as a SIGKILL right after last.safetensors was replaced
        write_rows(path, rows)

    monkeypatch.setattr(trainer, "_write_rows", killed_on_second_epoch)
    with pytest.raises(Interrupted):
        train(tiny_config(tiny_data, runs, name="cut", val_every=0))
    monkeypatch.setattr(trainer, "_write_rows", write_rows)
    assert [row["epoch"] for row in read_csv(runs / "cut" / "results.csv")] == ["1"]
    assert load_checkpoint(runs / "cut" / "last.safetensors").meta["epoch"] == 1

    resumed = train(resume=runs / "cut")
    assert [row["epoch"] for row in resumed.history] == [3]
    rows = read_csv(runs / "cut" / "results.csv")
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert all(float(row["loss"]) > 0 for row in rows)


def test_output_that_is_a_file_is_refused_before_training(tiny_data: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    completed = subprocess.run(
        [sys.executable, "-m", "cstrack", "train", "--model", "omc_n", "--data", str(tiny_data)]
        + ["--output", str(taken), "--epochs", "1"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2
    assert (
        completed.stderr.strip() == f"cstrack train: error: {taken}: is a file: --output must name a folder"
    )
    assert taken.read_text() == "keep me"


@pytest.mark.parametrize(
    ("option", "value", "rule"),
    [("momentum", "2", "in [0, 1)"), ("lr", "inf", "> 0, finite"), ("weight-decay", "nan", ">= 0, finite")],
)
def test_cli_refuses_out_of_range_optimiser_options(
    tiny_data: Path, option: str, value: str, rule: str
) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "cstrack", "train", "--model", "omc_n", "--data", str(tiny_data)]
        + [f"--{option}", value],
        check=False,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2
    name = option.replace("-", "_")
    assert completed.stderr.strip() == (
        f"cstrack train: error: invalid training options: {name}={float(value)!r} (must be {rule})"
    )


def test_label_class_beyond_the_model_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    from cstrack.data.jde import label_path_for, read_data_config
    from cstrack.errors import InputError

    copy = tmp_path / "data"
    shutil.copytree(tiny_data.parent, copy)
    data = copy / tiny_data.name
    label = label_path_for(read_data_config(data).train.images[3])
    rows = label.read_text().splitlines()
    label.write_text("\n".join(["3" + rows[0][1:], *rows[1:]]) + "\n")
    with pytest.raises(InputError, match=r"class 3 but the model has 1 class\(es\) \(0\.\.0\)") as error:
        train(tiny_config(data, tmp_path / "runs", epochs=1, val_every=0))
    assert error.value.path == str(label)

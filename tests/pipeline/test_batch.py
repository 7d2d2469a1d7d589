"""Batches of sources (`track_many`): worker processes and Ray tasks write the bytes a sequential run
writes, combined scores included; resume, a failing source, a killed worker, options checked first."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cstrack.data.synth.scene import SynthConfig
from cstrack.data.synth.write import generate_dataset
from cstrack.errors import InputError
from cstrack.evaluation import evaluate
from cstrack.pipeline.batch import DONE, FAILED, SKIPPED, BatchResult, track_many

# A worker's MOT file while it tracks: .SYNTH-01.txt.PID.1a2b3c4d.tmp (`temporary_path`).
WRITING = re.compile(r"^\.SYNTH-\d+\.txt\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three rendered sequences of 12 frames at 320 x 192, with ground truth."""
    root = tmp_path_factory.mktemp("batch") / "data"
    generate_dataset(root, SynthConfig(frames=12, width=320, height=192, people=4), sequences=3, seed=5)
    return root


@pytest.fixture(scope="module")
def sequential(
    dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[BatchResult, dict[str, bytes]]:
    """The batch tracked one source after another in this process, and its MOT files."""
    out = tmp_path_factory.mktemp("sequential")
    batch = track_many([dataset], output=out, workers=1, evaluate=True, progress=False)
    return batch, mot_files(out)


def mot_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.txt"))}


def leftovers(folder: Path) -> list[str]:
    """Temporaries and partial files: what a half-done source would leave."""
    return sorted(
        path.name for path in folder.iterdir() if path.name.startswith(".") or ".partial." in path.name
    )


@contextmanager
def killing_first_writer(folder: Path) -> Iterator[list[int]]:
    """SIGKILL the first worker process seen writing a MOT file into `folder` (its PID is in the
    temporary's name); yields the list that gets the killed PID."""
    killed: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set() and not killed:
            for path in folder.glob(".*.tmp") if folder.is_dir() else ():
                match = WRITING.match(path.name)
                if match and int(match["pid"]) != os.getpid():
                    os.kill(int(match["pid"]), signal.SIGKILL)
                    killed.append(int(match["pid"]))
                    break
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield killed
    finally:
        done.set()
        watcher.join()


def test_two_worker_processes_write_the_bytes_of_a_sequential_run(dataset: Path, sequential, tmp_path: Path):
    reference, files = sequential
    batch = track_many([dataset], output=tmp_path, workers=2, evaluate=True, progress=False)
    assert [result.status for result in batch.sources] == [DONE] * 3 and batch.workers == 2
    assert mot_files(tmp_path) == files and len(files) == 3
    assert [result.scores for result in batch.sources] == [result.scores for result in reference.sources]
    assert batch.combined is not None and batch.combined == reference.combined
    rules = batch.sources[0].scores["benchmark"]
    assert batch.combined == evaluate(dataset, tmp_path, rules)["combined"]  # as `cstrack eval` scores
    assert leftovers(tmp_path) == []
    assert "COMBINED" in batch.summary() and "3 sources (3 done): 36 frames" in batch.summary()


def test_a_rerun_skips_complete_results_and_force_tracks_them_again(
    dataset: Path, sequential, tmp_path: Path
):
    track_many([dataset], output=tmp_path, workers=1, progress=False)
    before = {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("*.txt")}
    (tmp_path / "SYNTH-02.txt").unlink()  # as if the batch was killed before it
    again = track_many([dataset], output=tmp_path, workers=1, progress=False)
    assert [result.status for result in again.sources] == [SKIPPED, DONE, SKIPPED]
    assert (tmp_path / "SYNTH-01.txt").stat().st_mtime_ns == before["SYNTH-01.txt"]
    assert mot_files(tmp_path) == sequential[1]
    forced = track_many([dataset], output=tmp_path, workers=1, force=True, progress=False)
    assert [result.status for result in forced.sources] == [DONE] * 3


def test_a_failing_source_is_reported_and_the_others_finish(dataset: Path, sequential, tmp_path: Path):
    inputs = tmp_path / "in"
    shutil.copytree(dataset / "SYNTH-01", inputs / "SYNTH-01")
    (inputs / "broken.mp4").write_bytes(b"\x00" * 512)
    out = tmp_path / "out"
    batch = track_many([inputs], output=out, workers=2, progress=False)
    assert [(result.name, result.status) for result in batch.sources] == [
        ("broken", FAILED),
        ("SYNTH-01", DONE),
    ]
    assert "cannot decode this video" in str(batch.failed[0].error)
    assert "failed: broken: " in batch.summary()
    assert mot_files(out) == {"SYNTH-01.txt": sequential[1]["SYNTH-01.txt"]} and leftovers(out) == []


@pytest.mark.slow
def test_a_killed_worker_process_is_replaced_and_its_sources_tracked_again(
    dataset: Path, sequential, tmp_path: Path
):
    with killing_first_writer(tmp_path) as killed:
        batch = track_many([dataset], output=tmp_path, workers=2, progress=False)
    assert killed, "no worker was seen writing"
    assert [result.status for result in batch.sources] == [DONE] * 3
    assert mot_files(tmp_path) == sequential[1] and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "options, message",
    [
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"threads": 1.5}, "threads must be an integer >= 1"),
        ({"gpus_per_task": float("nan")}, "gpus_per_task must be >= 0"),
        ({"viewer": None}, "unknown option 'viewer'"),
        ({"benchmark": "MOT17"}, "it needs evaluate=True"),
        ({"formats": ("csv",)}, "unknown output formats"),
        ({"model": "omc_n", "workers": 2}, "each worker would draw its own random weights"),
    ],
)
def test_options_are_refused_before_any_worker_starts(dataset: Path, tmp_path: Path, options, message):
    with pytest.raises(InputError, match=re.escape(message)):
        track_many([dataset], output=tmp_path / "out", progress=False, **options)
    assert not (tmp_path / "out").exists()


# Ray: a local cluster on 127.0.0.1 with 2 CPUs, for this module.


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """Ray's sessions in a short temporary folder (its sockets' paths must fit 107 bytes), removed after."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    sessions = tempfile.mkdtemp(prefix="cstrack-ray-")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=sessions,
        log_to_driver=False,
    )
    yield
    ray.shutdown()
    shutil.rmtree(sessions, ignore_errors=True)


@pytest.mark.slow
def test_ray_tasks_write_the_bytes_of_a_sequential_run(local_ray, dataset: Path, sequential, tmp_path: Path):
    reference, files = sequential
    batch = track_many([dataset], output=tmp_path, ray=True, evaluate=True, progress=False)
    assert [result.status for result in batch.sources] == [DONE] * 3 and batch.workers == 2
    assert mot_files(tmp_path) == files and batch.combined == reference.combined
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_a_killed_ray_worker_is_retried_by_ray(local_ray, dataset: Path, sequential, tmp_path: Path):
    with killing_first_writer(tmp_path) as killed:
        batch = track_many([dataset], output=tmp_path, ray=True, progress=False)
    assert killed, "no Ray worker was seen writing"
    assert [result.status for result in batch.sources] == [DONE] * 3
    assert mot_files(tmp_path) == sequential[1] and leftovers(tmp_path) == []

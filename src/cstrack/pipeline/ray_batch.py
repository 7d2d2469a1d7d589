"""The sources of a batch as Ray tasks: `track_many(..., ray=...)` and `cstrack track --ray`.

Ray Core tasks, one per source: the driver puts the model's weights into Ray's object store once,
each task declares what it needs (`threads` CPUs, a GPU fraction) so Ray packs them onto the
cluster's nodes, each worker process builds its tracker once (Ray reuses processes between tasks)
and writes its source's files itself, atomically, into the output path (which every node must
see, as it must see the sources). The driver gathers the results as they come, for the progress
bar and the summary; a task whose worker dies is retried by Ray (`max_retries`), then reported
failed. Ray is imported only here, when a batch asks for it (the `ray` extra).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cstrack.atomic import atomic_write_bytes
from cstrack.data.source_list import SourceItem
from cstrack.optional import require
from cstrack.pipeline.batch import FAILED, BatchJob, SourceResult
from cstrack.pipeline.end_to_end import Tracker
from cstrack.user_cache import cache_dir

LOCAL_HOST = "127.0.0.1"
RAY_FOLDER = "ray"  # under the cstrack cache folder: the weights that Ray tasks got, one file each

# The tracker of this Ray worker process, with the job and weights it was built for.
_built: tuple[BatchJob, str, Tracker] | None = None


def run_on_ray(
    todo: list[SourceItem],
    job: BatchJob,
    address: str | bool,
    cpus: int | None,
    gpus_per_task: float,
    retries: int,
    report: Callable[[SourceResult], None],
) -> tuple[list[SourceResult], int]:
    """Track `todo` as Ray tasks on the cluster at `address` (True: a local one of `cpus` CPUs,
    all when None, started and stopped here; "auto": the cluster this machine is in); a Ray
    already initialised in this process is used as it is. `report` sees each result as it comes.
    Returns the results and how many tasks the cluster's CPUs run at once."""
    ray = require("ray", "ray", feature="--ray")
    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, address, cpus)
    try:
        weights = Path(job.model).read_bytes()
        shared = ray.put(weights)
        digest = hashlib.sha256(weights).hexdigest()
        task = ray.remote(_track_task).options(
            num_cpus=job.threads or 1, num_gpus=gpus_per_task, max_retries=retries, retry_exceptions=False
        )
        pending = {task.remote(item, job, shared, digest, Path(job.model).name): item for item in todo}
        done = []
        while pending:
            finished, _ = ray.wait(list(pending), num_returns=1)
            for reference in finished:
                item = pending.pop(reference)
                try:
                    result = ray.get(reference)
                except ray.exceptions.RayError as error:  # the worker died `retries` + 1 times
                    problem = str(error).strip().splitlines()[0]
                    result = SourceResult(item.name, str(item.spec), FAILED, error=f"Ray: {problem}")
                report(result)
                done.append(result)
        return done, int(ray.cluster_resources().get("CPU", 0) // (job.threads or 1))
    finally:
        if started_here:
            ray.shutdown()


def _connect(ray: Any, address: str | bool, cpus: int | None) -> None:
    """Join the cluster at `address`, or start a local one that listens on 127.0.0.1 only and
    sends no usage statistics (it lives for this call)."""
    if address is True:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address=LOCAL_HOST, log_to_driver=False)
    else:
        ray.init(address=str(address), log_to_driver=False)


def _track_task(item: SourceItem, job: BatchJob, weights: bytes, digest: str, name: str) -> SourceResult:
    """One source in a Ray worker: the weights from the object store into a file of the node's
    cstrack cache (once per node and weights), the tracker built once per worker process, then
    `BatchJob.run`."""
    global _built
    if _built is None or _built[:2] != (job, digest):
        path = cache_dir() / RAY_FOLDER / f"{digest[:16]}-{name}"
        if not path.is_file():
            atomic_write_bytes(path, weights)
        local = replace(job, model=str(path))
        _built = (job, digest, local.build_tracker())
    return job.run(item, _built[2])

"""`cstrack track` on many sources: the options that spread them over processes or a Ray cluster,
and the call of `cstrack.pipeline.batch.track_many` with the summary it prints.

Nothing heavy is imported until a batch runs, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cstrack.errors import InputError


def add_batch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="track N sources at once, each process with its own tracker (default: one per core, up to "
        "one per source, with several sources; a single source runs here); with --ray and no ADDRESS, "
        "the CPUs of the local Ray cluster",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="intra-op threads of each worker, and the CPUs each Ray task asks for (default: the cores "
        "shared out among the workers; 1 per Ray task)",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const=True,
        metavar="ADDRESS",
        help="send each source to a Ray task (pip install 'cstrack[ray]'): no ADDRESS starts a local "
        "cluster on 127.0.0.1, auto joins the cluster this machine is in (ray start), or a cluster's "
        "address (ray://HOST:10001); workers must see the sources and the output folder",
    )
    parser.add_argument(
        "--gpus-per-task",
        type=float,
        default=0.0,
        metavar="F",
        help="with --ray: the GPUs each task asks for, a fraction to share one (e.g. 0.25 with --device "
        "cuda) (default: %(default)g)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="several sources: track again those whose complete results are already in the output "
        "folder (default: skip them, so a rerun resumes a killed batch)",
    )


def is_batch(args: argparse.Namespace) -> bool:
    """Whether the command names several sources (or asks for workers or Ray): a batch."""
    from cstrack.data.source_list import names_many

    spread = args.workers is not None or args.ray is not None or args.threads is not None
    return spread or len(args.source) > 1 or names_many(args.source[0])


def run_batch(
    args: argparse.Namespace,
    output: Path,
    config: Any,
    runtime: Any,
    tracker_options: dict[str, Any],
    track_options: dict[str, Any],
) -> int:
    """Track the sources with `track_many` and print its summary; exit 1 when a source failed."""
    from cstrack.pipeline.batch import SKIPPED, track_many

    if args.show:
        raise InputError(None, "--show shows one source: name a single video, folder or camera")
    batch = track_many(
        args.source,
        args.model,
        output,
        config=config,
        runtime=runtime,
        tracker_options=tracker_options,
        workers=args.workers,
        threads=args.threads,
        ray=args.ray,
        gpus_per_task=args.gpus_per_task,
        force=args.force,
        progress=not args.quiet,
        **track_options,
    )
    print(batch.summary())
    print(f"results in {output}")
    skipped = sum(result.status == SKIPPED for result in batch.sources)
    if skipped:
        print(f"skipped {skipped} source(s) whose complete results were there (--force tracks them again)")
    if batch.interrupted:
        print("cstrack track: interrupted; a rerun resumes with the sources not complete", file=sys.stderr)
        return 130
    if batch.failed:
        print(f"cstrack track: {len(batch.failed)} source(s) failed (listed above)", file=sys.stderr)
        return 1
    return 0

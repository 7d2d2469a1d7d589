"""`cstrack eval-reid`: the embedding's cross-camera retrieval on held-out ReID identities.

The model and the data readers are imported only when the command runs, so `--help` starts fast.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from cstrack.cli.options import add_device_option, add_img_size_option, add_model_options
from cstrack.config import EMBEDDING_READOUTS
from cstrack.data.reid import DEFAULT_HOLDOUT


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval-reid",
        help="score a model's embedding: cross-camera rank-1 and mAP on held-out ReID identities",
        description="Embed the held-out identities of REID_ROOT (the last --holdout of each dataset's "
        "identities, never used by `cstrack data from-reid`) as the tracker reads embeddings "
        "(crops at pedestrian height in a frame of the input size), then rank each camera's crops "
        "against the other camera's: rank-1 and mAP per dataset and pooled.",
    )
    parser.add_argument("reid_root", type=Path, metavar="REID_ROOT", help="folder holding CUHK03/, CUHK01/")
    add_model_options(parser, default="the bundled default")
    add_img_size_option(parser)
    add_device_option(parser)
    parser.add_argument(
        "--holdout",
        type=float,
        default=DEFAULT_HOLDOUT,
        help="fraction of each dataset's identities (the last ones) scored (default: %(default)s)",
    )
    parser.add_argument(
        "--embedding-readout",
        choices=EMBEDDING_READOUTS,
        default="box",
        help="where each crop's embedding is read, as `cstrack track` reads it (default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the scores to this JSON file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cstrack.atomic import atomic_write
    from cstrack.backends.choice import build_detector
    from cstrack.config import DEFAULT_MODEL, DetectorConfig, RuntimeConfig
    from cstrack.data.reid import read_reid_root, split_identities
    from cstrack.pipeline.reid_eval import reid_scores

    # A bad size fails before anything is read.
    settings = DetectorConfig(img_size=args.img_size, embedding_readout=args.embedding_readout)
    _, held_out = split_identities(read_reid_root(args.reid_root), args.holdout)
    model = DEFAULT_MODEL if args.model in (None, "the bundled default") else args.model
    runtime = RuntimeConfig(backend="torch", device=args.device)
    detector = build_detector(model, settings, runtime=runtime, arch=args.arch)
    scores = reid_scores(detector, held_out)
    rows = {**scores.per_dataset, "all": scores.overall}
    print(f"{'set':10s} {'queries':>8s} {'rank-1':>7s} {'mAP':>6s}")
    for name, value in rows.items():
        print(f"{name:10s} {value.queries:8d} {100 * value.rank1:7.1f} {100 * value.mean_ap:6.1f}")
    if args.json is not None:
        with atomic_write(args.json) as stream:
            json.dump({name: asdict(value) for name, value in rows.items()}, stream, indent=2)
            stream.write("\n")
    return 0

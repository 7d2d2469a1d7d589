"""`cstrack train-embedding`: the embedding stage on ReID identities (`cstrack.training.embedding`).

The model and the data readers are imported only when the command runs, so `--help` starts fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cstrack.cli.options import add_model_options
from cstrack.data.reid import DEFAULT_HOLDOUT
from cstrack.training.config import EmbeddingConfig

DEFAULTS = EmbeddingConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-embedding",
        help="train a YOLOX-based model's embedding on ReID identities (detector frozen)",
        description="Compose the training identities of REID_ROOT (all but the last --holdout of each "
        "dataset's, which `cstrack eval-reid` scores) into frames on the --backgrounds, cache the "
        "frozen detector's features once per round, and train REN's ID path and SAAN on them. "
        "Writes OUT after every round (a complete file each time); score it with `cstrack eval-reid`.",
    )
    parser.add_argument("reid_root", type=Path, metavar="REID_ROOT", help="folder holding CUHK03/, CUHK01/")
    parser.add_argument("output", type=Path, metavar="OUT", help="the trained weights (.safetensors)")
    add_model_options(parser, default="the bundled default")
    parser.add_argument(
        "--backgrounds",
        nargs="+",
        required=True,
        metavar="PATH",
        help="background images, or folders (a static camera's sequence gives its median frame)",
    )
    parser.add_argument(
        "--holdout", type=float, default=DEFAULT_HOLDOUT, help="identities held out (default: %(default)s)"
    )
    parser.add_argument(
        "--rounds", type=int, default=DEFAULTS.rounds, help="fresh compositions (default: %(default)s)"
    )
    parser.add_argument(
        "--epochs", type=int, default=DEFAULTS.epochs, help="epochs per round (default: %(default)s)"
    )
    parser.add_argument(
        "--frames", type=int, default=DEFAULTS.compose.frames, help="frames per round (default: %(default)s)"
    )
    parser.add_argument(
        "--lr", type=float, default=DEFAULTS.lr, help="AdamW learning rate (default: %(default)s)"
    )
    parser.add_argument(
        "--id-weight",
        type=float,
        default=DEFAULTS.identity,
        help="weight of JDE's identity cross-entropy, for an embedding trained from scratch (default: "
        "%(default)s: triplet loss only, which fine-tunes a trained one without a new classifier)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULTS.seed,
        help="composition and shuffling seed (default: %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from cstrack.config import DEFAULT_MODEL
    from cstrack.data.reid import read_reid_root, split_identities
    from cstrack.data.reid_compose import load_backgrounds
    from cstrack.models.registry import model_from_spec
    from cstrack.models.weights import check_weights_output, save_weights, weights_metadata
    from cstrack.training.config import default_compose
    from cstrack.training.embedding import train_embedding

    spec = DEFAULT_MODEL if args.model in (None, "the bundled default") else args.model
    config = EmbeddingConfig(
        compose=default_compose(args.frames, args.seed),
        rounds=args.rounds,
        epochs=args.epochs,
        lr=args.lr,
        identity=args.id_weight,
        seed=args.seed,
    )
    loaded = model_from_spec(spec, args.arch)
    check_weights_output(args.output, loaded.weights or spec)
    metadata = weights_metadata(loaded.weights) if loaded.weights is not None else {}
    metadata.setdefault("arch", args.arch or str(spec))  # a registered variant's name
    train, _ = split_identities(read_reid_root(args.reid_root), args.holdout)
    backgrounds = load_backgrounds(args.backgrounds)
    torch.manual_seed(args.seed)

    def save(round_index: int, row: dict[str, float]) -> None:
        save_weights(loaded.model, args.output, metadata)
        print(
            f"round {round_index + 1}/{config.rounds}: id {row['id']:.3f} triplet {row['triplet']:.3f} "
            f"({row['seconds']:.0f} s) -> {args.output}",
            flush=True,
        )

    train_embedding(loaded.model, train, backgrounds, config, save)
    return 0

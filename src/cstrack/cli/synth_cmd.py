"""`cstrack synth`: render synthetic MOTChallenge sequences (test and training data).

cv2 and the renderer are imported only when the command runs, so `--help` starts fast.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from cstrack.data.synth.scene import CAMERA_MOTIONS, SynthConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="render synthetic MOTChallenge sequences with exact ground truth",
        description="Render OUT_DIR/SYNTH-01 ... : walking figures (and, with --vehicles, cars) on a "
        "ground plane (perspective, mutual occlusion, entries and exits) with img1/, gt/gt.txt (MOT17 "
        "format: class 1 pedestrian, 3 car; visibility from the rendered masks) and seqinfo.ini. The "
        "same seed gives identical files.",
    )
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder to write the sequences into")
    parser.add_argument(
        "--sequences", type=int, default=1, metavar="N", help="number of sequences (default: 1)"
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=SynthConfig.frames,
        metavar="F",
        help="frames per sequence (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: %(default)s)")
    parser.add_argument(
        "--width", type=int, default=SynthConfig.width, help="image width (default: %(default)s)"
    )
    parser.add_argument(
        "--height", type=int, default=SynthConfig.height, help="image height (default: %(default)s)"
    )
    parser.add_argument(
        "--fps", type=float, default=SynthConfig.fps, help="frame rate (default: %(default)s)"
    )
    parser.add_argument(
        "--people",
        type=float,
        default=SynthConfig.people,
        metavar="P",
        help="mean number of people in view (default: %(default)s)",
    )
    parser.add_argument(
        "--occlusion",
        type=float,
        default=SynthConfig.occlusion,
        metavar="P",
        help="chance that an arriving walker crosses someone at the same depth (default: %(default)s)",
    )
    parser.add_argument(
        "--blur",
        type=float,
        default=SynthConfig.blur,
        metavar="X",
        help="motion-blur streak as a multiple of the displacement per frame; 0 = sharp (default: %(default)s)",
    )
    parser.add_argument(
        "--drop-frames",
        type=float,
        default=SynthConfig.drop_frames,
        metavar="P",
        help="chance that a capture is lost before a frame, so motion jumps two steps (default: %(default)s)",
    )
    parser.add_argument(
        "--fake-background",
        type=int,
        default=SynthConfig.fake_background,
        metavar="N",
        help="unannotated person-like posters, boards and statues per sequence (default: %(default)s)",
    )
    parser.add_argument(
        "--vehicles",
        type=float,
        default=SynthConfig.vehicles,
        metavar="V",
        help="mean number of cars in view, annotated as MOT class 3 (default: %(default)s: people only)",
    )
    parser.add_argument(
        "--camera-motion",
        choices=CAMERA_MOTIONS,
        default=SynthConfig.camera_motion,
        help="a moving camera: pan across a wider scene and back, zoom in and out, shake, or walk "
        "(zoom, bob and sway); writes camera.txt, each frame's exact camera map (default: %(default)s)",
    )
    parser.add_argument(
        "--camera-period",
        type=float,
        default=SynthConfig.camera_period,
        metavar="SECONDS",
        help="seconds of one cycle of the camera's motion; shorter is faster (default: %(default)s)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace sequences that already exist")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cstrack.data.synth.scene import SynthConfig
    from cstrack.data.synth.write import generate_dataset

    config = SynthConfig(
        frames=args.frames,
        width=args.width,
        height=args.height,
        fps=args.fps,
        people=args.people,
        occlusion=args.occlusion,
        blur=args.blur,
        drop_frames=args.drop_frames,
        fake_background=args.fake_background,
        vehicles=args.vehicles,
        camera_motion=args.camera_motion,
        camera_period=args.camera_period,
    )
    paths = generate_dataset(
        args.out_dir,
        config,
        args.sequences,
        args.seed,
        overwrite=args.overwrite,
        progress=partial(tqdm, unit="frame", leave=False),
    )
    for path in paths:
        print(path)
    return 0

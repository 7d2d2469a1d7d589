"""`cstrack data`: prepare training data in the JDE layout (`from-mot`: MOTChallenge sequences;
`from-reid`: ReID crops composed into frames).

cv2 and the converters are imported only when the command runs, so `--help` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from cstrack.data.reid import DEFAULT_HOLDOUT, ComposeConfig

COMPOSE = ComposeConfig()


def frame_range(text: str) -> tuple[int, int]:
    """Parse `A-B` (1-based, inclusive) for argparse."""
    first, separator, last = text.partition("-")
    try:
        bounds = (int(first), int(last)) if separator else None
    except ValueError:
        bounds = None
    if bounds is None or not 1 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"expected A-B with 1 <= A <= B, got {text!r}")
    return bounds


def class_list(text: str) -> tuple[int, ...]:
    """Parse `1,3` (MOT class ids, comma-separated) for argparse; the converter checks the ids."""
    try:
        classes = tuple(int(value) for value in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MOT class ids like 1,3, got {text!r}") from None
    return classes


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data", help="prepare training data", description="Prepare training data in the JDE layout."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    convert = actions.add_parser(
        "from-mot",
        help="MOTChallenge sequences to JDE images/, labels_with_ids/ and a list file",
        description="Write OUT_DIR/images/SEQ/*.jpg (hard links or copies), "
        "OUT_DIR/labels_with_ids/SEQ/*.txt (`class id cx cy w h`, normalised, ids 0.. unique across "
        "sequences) and OUT_DIR/NAME.train. MOT16/17/20 gt keeps mark 1, class 1 rows (or the "
        "--classes); MOT15 gt drops conf 0 rows.",
    )
    convert.add_argument(
        "source", type=Path, metavar="SEQ_OR_ROOT", help="a sequence folder or a dataset root"
    )
    convert.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="root of the JDE layout")
    convert.add_argument(
        "--frames",
        type=frame_range,
        metavar="A-B",
        help="only frames A to B (1-based, inclusive; default: all)",
    )
    convert.add_argument(
        "--min-visibility",
        type=float,
        default=0.0,
        metavar="V",
        help="drop MOT16/17/20 boxes less visible than V (default: %(default)s)",
    )
    convert.add_argument("--name", help="list file OUT_DIR/NAME.train (default: the name of SEQ_OR_ROOT)")
    convert.add_argument("--detector", help="MOT17: convert only the *-DETECTOR copies, e.g. FRCNN")
    convert.add_argument(
        "--classes",
        type=class_list,
        metavar="C1,C2,...",
        help="MOT class ids to keep, as label classes 0, 1, ... in this order, e.g. 1,3 (pedestrian, "
        "car); also writes OUT_DIR/NAME.yaml, a data config with their names (default: 1 only, no "
        "data config)",
    )
    convert.set_defaults(func=run_from_mot)
    reid = actions.add_parser(
        "from-reid",
        help="ReID crops composed into JDE training frames (held-out identities left out)",
        description="Paste the crops of REID_ROOT's datasets (CUHK03/, CUHK01/; see cstrack.data.reid) "
        "at pedestrian scale on background scenes, one identity per crop, and write the JDE layout: "
        "OUT_DIR/images/NAME/*.jpg, OUT_DIR/labels_with_ids/NAME/*.txt, OUT_DIR/NAME.train. The last "
        "--holdout of each dataset's identities is never used (cstrack eval-reid scores them).",
    )
    reid.add_argument("reid_root", type=Path, metavar="REID_ROOT", help="folder holding CUHK03/, CUHK01/")
    reid.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="root of the JDE layout")
    reid.add_argument(
        "--backgrounds",
        type=Path,
        nargs="+",
        required=True,
        metavar="PATH",
        help="background images, or folders (MOT sequences too) taken as the per-pixel median of "
        "their frames: an empty scene for a static camera (see --no-median)",
    )
    reid.add_argument(
        "--no-median", action="store_true", help="use every image of a background folder as it is"
    )
    reid.add_argument("--name", default="reid", help="list file OUT_DIR/NAME.train (default: %(default)s)")
    reid.add_argument(
        "--frames", type=int, default=COMPOSE.frames, help="frames to write (default: %(default)s)"
    )
    reid.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=COMPOSE.size,
        metavar=("W", "H"),
        help="frame size (default: {} {})".format(*COMPOSE.size),
    )
    reid.add_argument(
        "--people",
        type=int,
        nargs=2,
        default=COMPOSE.people,
        metavar=("MIN", "MAX"),
        help="crops per frame (default: {} {})".format(*COMPOSE.people),
    )
    reid.add_argument(
        "--heights",
        type=float,
        nargs=2,
        default=COMPOSE.heights,
        metavar=("MIN", "MAX"),
        help="crop heights in pixels, drawn log-uniformly (default: {:g} {:g})".format(*COMPOSE.heights),
    )
    reid.add_argument(
        "--holdout",
        type=float,
        default=DEFAULT_HOLDOUT,
        help="fraction of each dataset's identities (the last ones) kept out (default: %(default)s)",
    )
    reid.add_argument("--seed", type=int, default=COMPOSE.seed, help="random seed (default: %(default)s)")
    reid.set_defaults(func=run_from_reid)


def run_from_mot(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cstrack.data.mot_to_jde import from_mot

    summary = from_mot(
        args.source,
        args.out_dir,
        frames=args.frames,
        min_visibility=args.min_visibility,
        name=args.name,
        detector=args.detector,
        classes=args.classes,
        progress=partial(tqdm, unit="frame", leave=False),
    )
    for name in summary.skipped:
        print(f"cstrack data from-mot: skipped {name} (no gt/gt.txt)", file=sys.stderr)
    print(
        f"{summary.list_path}: {summary.images} images, {summary.boxes} boxes, {summary.identities} identities "
        f"from {len(summary.sequences)} sequence(s)"
    )
    if summary.data_config is not None:
        print(f"{summary.data_config}: data config, classes {', '.join(summary.class_names)}")
    return 0


def run_from_reid(args: argparse.Namespace) -> int:
    from cstrack.data.reid import read_reid_root, split_identities
    from cstrack.data.reid_compose import compose_reid, identity_table, load_backgrounds

    config = ComposeConfig(
        size=tuple(args.size),
        frames=args.frames,
        people=tuple(args.people),
        heights=tuple(args.heights),
        seed=args.seed,
    )
    train, held_out = split_identities(read_reid_root(args.reid_root), args.holdout)
    backgrounds = load_backgrounds(args.backgrounds, median=not args.no_median)
    list_path = compose_reid(train, backgrounds, args.out_dir, args.name, config, progress=True)
    print(
        f"{list_path}: {config.frames} frames from {len(train)} crops of {len(identity_table(train))} identities "
        f"({len(identity_table(held_out))} identities held out)"
    )
    return 0

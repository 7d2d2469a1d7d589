"""`cstrack data`: prepare training data (`from-mot`: MOTChallenge to the JDE layout).

cv2 and the converters are imported only when the command runs, so `--help` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path


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


def run_from_mot(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cstrack.data.jde import from_mot

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

"""The options of `cstrack track` for sources (--fps, --vid-stride, --reconnect), where results go
(--output, --exist-ok) and what follows the tracks (--save-crops, --count-line, --count-zone),
turned into the arguments of `open_sources`, `track` and its observers.

Their defaults come from `cstrack.config`, which imports nothing heavy, so --help stays fast.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from cstrack.config import CROP_EVERY, DEFAULT_FRAME_RATE, RECONNECT_SECONDS, RUN_NAME, RUNS_ROOT

FOREVER = "forever"


def seconds_or_forever(text: str) -> float:
    """--reconnect's value: seconds, or 'forever' (math.inf)."""
    return math.inf if text.strip().lower() == FOREVER else float(text)


seconds_or_forever.__name__ = "seconds or 'forever'"  # what argparse names in its error message


def add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fps",
        type=float,
        metavar="RATE",
        help="the source's frame rate, for image folders and videos whose metadata is wrong (default: "
        f"what the source reports; image folders {DEFAULT_FRAME_RATE:g})",
    )
    parser.add_argument(
        "--vid-stride",
        type=int,
        default=1,
        metavar="N",
        help="track every Nth frame only (frame numbers stay the source's) (default: %(default)s)",
    )
    parser.add_argument(
        "--reconnect",
        type=seconds_or_forever,
        default=RECONNECT_SECONDS,
        metavar="SECONDS|forever",
        help="webcams and streams: how long to keep reconnecting, with growing waits, once the stream "
        "drops before tracking ends; outages are counted and logged (default: %(default)g)",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    root, name = RUNS_ROOT, RUN_NAME
    parser.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help=f"results folder, used as it is (default: a new numbered folder {root}/{name}, "
        f"{root}/{name}2 ...)",
    )
    parser.add_argument(
        "--exist-ok",
        action="store_true",
        help="without --output: write into the last numbered folder instead of a new one",
    )
    parser.add_argument(
        "--save-crops",
        action="store_true",
        help="save an image of each track every --crop-every frames to OUTPUT/crops/NAME/ID/FRAME.jpg",
    )
    parser.add_argument(
        "--crop-every",
        type=int,
        default=CROP_EVERY,
        metavar="N",
        help="with --save-crops: frames between two crops of one track (default: %(default)s)",
    )
    parser.add_argument(
        "--count-line",
        action="append",
        metavar="X1,Y1,X2,Y2",
        help="count tracks crossing this line (pixels; in: from its left to its right, looking from "
        "X1,Y1 to X2,Y2) into NAME.counts.csv, drawn on the video; repeat for more lines",
    )
    parser.add_argument(
        "--count-zone",
        action="append",
        metavar="X1,Y1,X2,Y2,X3,Y3,...",
        help="count tracks inside this polygon (pixels) in each frame into NAME.counts.csv, drawn on "
        "the video; repeat for more zones",
    )


def source_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of `open_sources` that these options set (checked there)."""
    return {"fps": args.fps, "vid_stride": args.vid_stride, "reconnect": args.reconnect}


def output_folder(args: argparse.Namespace) -> Path:
    """--output as given, else the next numbered run folder (the last one with --exist-ok)."""
    from cstrack.pipeline.run_folder import next_run_folder

    return args.output if args.output is not None else next_run_folder(exist_ok=args.exist_ok)


def observers(args: argparse.Namespace) -> tuple[Any, ...]:
    """The crop saver and counter these options ask for (each checks its values when built)."""
    found: list[Any] = []
    if args.save_crops:
        from cstrack.pipeline.crops import CropSaver

        found.append(CropSaver(args.crop_every))
    if args.count_line or args.count_zone:
        from cstrack.pipeline.counting import Counter, parse_points

        lines = [parse_points(text, "--count-line", 2, most=2) for text in args.count_line or ()]
        zones = [parse_points(text, "--count-zone", 3) for text in args.count_zone or ()]
        found.append(Counter([(a, b) for a, b in lines], zones))
    return tuple(found)

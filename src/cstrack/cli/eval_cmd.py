"""`cstrack eval`: score MOTChallenge results with TrackEval's metrics and benchmark rules.

TrackEval and SciPy are imported only when the command runs, so `--help` starts fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate tracking results against MOTChallenge ground truth (HOTA, MOTA, IDF1 ...)",
        description="Evaluate MOTChallenge results (RES_DIR/SEQ.txt) against ground truth "
        "(GT_ROOT/SEQ/gt/gt.txt with SEQ/seqinfo.ini), exactly as TrackEval scores them.",
    )
    parser.add_argument(
        "--gt",
        required=True,
        type=Path,
        metavar="GT_ROOT",
        help="a sequence folder or a dataset root holding sequence folders",
    )
    parser.add_argument(
        "--results", required=True, type=Path, metavar="RES_DIR", help="folder with one SEQ.txt per sequence"
    )
    parser.add_argument(
        "--benchmark",
        metavar="NAME",
        help="benchmark rules: MOT16/17/20 drop distractors and non-pedestrians, MOT15 takes ground "
        "truth as is (default: those the ground truth asks for, as track --eval: MOT17 for gt with "
        "class ids, else MOT15)",
    )
    parser.add_argument(
        "--sequences",
        nargs="+",
        metavar="SEQ",
        help="evaluate only these sequences (default: every sequence with gt)",
    )
    parser.add_argument(
        "--frames",
        metavar="A-B",
        help="score only frames A-B (1-based, inclusive; A- to the end) of every sequence, as "
        "cstrack track --frames A-B --eval does: gt outside them is not counted as missed",
    )
    parser.add_argument(
        "--per-class",
        metavar="NAMES",
        help="multi-class results (class ids in column 8): score each of these MOTChallenge classes "
        "on its own, e.g. pedestrian,car (MOT15 rules per class; --benchmark is not used)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="OUT",
        help='also write {"sequences": ..., "combined": ...} to this JSON file',
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cstrack.atomic import atomic_write
    from cstrack.evaluation import evaluate, evaluate_classes, format_table

    if args.per_class:
        names = [name.strip() for name in args.per_class.split(",")]
        scores = evaluate_classes(args.gt, args.results, names, args.sequences, args.frames)
        print("\n\n".join(f"{name}:\n{format_table(report)}" for name, report in scores.items()))
    else:
        scores = evaluate(
            args.gt, args.results, benchmark=args.benchmark, sequences=args.sequences, frames=args.frames
        )
        print(format_table(scores))
    if args.json is not None:
        with atomic_write(args.json) as stream:
            json.dump(scores, stream, indent=2)
            stream.write("\n")
    return 0

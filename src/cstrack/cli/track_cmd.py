"""`cstrack track`: track people in a video, image folder, MOTChallenge data, webcam or stream.

torch, cv2 and the tracker are imported only when the command runs, so `--help` starts fast.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from cstrack.cli.defaults import source_value
from cstrack.cli.options import add_device_option, add_img_size_option, add_model_options, check_img_size
from cstrack.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    default_model = source_value("cstrack.pipeline.end_to_end", "DEFAULT_MODEL")
    parser = subparsers.add_parser(
        "track",
        help="track people in a video, folder, MOTChallenge sequence/dataset, webcam or stream",
        description=(
            "Track every sequence of SOURCE and write a MOTChallenge result file per sequence "
            "(plus JSON lines, a rendered video and scores on request) under --output."
        ),
    )
    parser.add_argument(
        "source",
        help="video file, image folder, MOTChallenge sequence folder, dataset root, webcam index, or rtsp/http URL",
    )
    add_model_options(parser, default=default_model)
    parser.add_argument(
        "--output", default="runs/track", type=Path, help="output folder (default runs/track)"
    )
    parser.add_argument("--save-video", action="store_true", help="write NAME.mp4 with boxes, ids and trails")
    parser.add_argument(
        "--trails", type=int, default=30, metavar="N", help="trail length in frames (0: none)"
    )
    parser.add_argument(
        "--format", default="mot", help="comma-separated outputs: mot (NAME.txt), json (NAME.jsonl)"
    )
    add_device_option(parser)
    parser.add_argument("--half", action="store_true", help="FP16 inference (CUDA only)")
    add_img_size_option(parser)
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="inference backend")
    parser.add_argument("--no-recheck", action="store_true", help="disable OMC's re-check network")
    parser.add_argument(
        "--recheck-starts-tracks",
        action="store_true",
        help="let re-check candidates start new tracks, as the released OMC does (default: they only "
        "continue existing tracks)",
    )
    parser.add_argument("--conf", type=float, default=0.5, help="detection score threshold (default 0.5)")
    parser.add_argument(
        "--byte-low",
        type=float,
        metavar="LOW",
        help="BYTE second stage: also match tracked tracks to detections scoring in [LOW, det threshold) "
        "by IoU (ByteTrack); off by default",
    )
    parser.add_argument("--frames", help="frame range A-B (1-based, inclusive), e.g. 601-795")
    parser.add_argument(
        "--eval", action="store_true", help="score against each sequence's gt/gt.txt (refused without one)"
    )
    parser.add_argument("--min-area", type=float, help="MOT file filter: drop boxes with w*h <= this")
    parser.add_argument("--max-aspect", type=float, help="MOT file filter: drop boxes with w/h above this")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def parse_formats(text: str) -> tuple[str, ...]:
    """`--format mot,json` as a tuple without repeats; an empty or unknown item is an error."""
    from cstrack.pipeline.runner import FORMATS

    items = [item.strip() for item in text.split(",")]
    choices = ", ".join(FORMATS)
    if not all(items):
        raise InputError(None, f"--format {text!r} has an empty item; give one or more of {choices}")
    unknown = [item for item in items if item not in FORMATS]
    if unknown:
        raise InputError(None, f"--format: unknown output {unknown[0]!r}; choose from {choices}")
    return tuple(dict.fromkeys(items))


def check_numbers(args: argparse.Namespace) -> None:
    """Refuse a numeric option out of its range (nan and inf included) before anything is read."""
    if not 0 < args.conf < 1:
        raise InputError(None, f"--conf must be in (0, 1), got {args.conf}")
    if args.byte_low is not None and not (0 < args.byte_low < 1 and args.byte_low < args.conf):
        raise InputError(
            None, f"--byte-low must be in (0, 1) and below --conf ({args.conf}), got {args.byte_low}"
        )
    if args.min_area is not None and not (math.isfinite(args.min_area) and args.min_area >= 0):
        raise InputError(None, f"--min-area must be a finite number >= 0, got {args.min_area}")
    if args.max_aspect is not None and not (math.isfinite(args.max_aspect) and args.max_aspect > 0):
        raise InputError(None, f"--max-aspect must be a finite number > 0, got {args.max_aspect}")
    if args.trails < 0:
        raise InputError(None, f"--trails must be >= 0, got {args.trails}")
    check_img_size(args)


def run(args: argparse.Namespace) -> int:
    from cstrack.data.sources import ALL_FRAMES, FrameRange, open_sources
    from cstrack.pipeline.end_to_end import Tracker
    from cstrack.pipeline.runner import check_evaluable, check_output_folder, track

    check_numbers(args)
    formats = parse_formats(args.format)
    frames = FrameRange.parse(args.frames) if args.frames else ALL_FRAMES
    # Bad input fails before a model is loaded: sources, frame range, gt, output folder.
    sources = open_sources(args.source, frames)
    if args.eval:
        check_evaluable(sources)
    check_output_folder(args.output)
    tracker = Tracker(
        args.model,
        arch=args.arch,
        img_size=tuple(args.img_size) if args.img_size else None,
        device=args.device,
        half=args.half,
        backend=args.backend,
        conf=args.conf,
        recheck=not args.no_recheck,
        recheck_starts_tracks=args.recheck_starts_tracks,
        byte_low_threshold=args.byte_low,
    )
    runs = track(
        sources,
        tracker,
        output=args.output,
        formats=formats,
        save_video=args.save_video,
        trails=args.trails,
        frames=frames,
        evaluate=args.eval,
        min_area=args.min_area,
        max_aspect=args.max_aspect,
        progress=not args.quiet,
    )
    model_ms, association_ms = tracker.timing.ms_per_frame()
    frames_done = tracker.timing.frames
    print(
        f"tracked {frames_done} frames of {len(runs)} sequence(s): model {model_ms:.1f} ms/frame, "
        f"association {association_ms:.2f} ms/frame"
    )
    for run_result in runs.values():
        for kind, path in run_result.files.items():
            print(f"  {run_result.name} {kind}: {path}")
        if run_result.scores:
            s = run_result.scores
            print(
                f"  {run_result.name} ({s['benchmark']} rules, frames {s['frames'][0]}-{s['frames'][1]}): "
                f"HOTA {100 * s['HOTA']:.1f}  MOTA {100 * s['MOTA']:.1f}  IDF1 {100 * s['IDF1']:.1f}  "
                f"IDSW {s['IDSW']}"
            )
    interrupted = any(r.interrupted for r in runs.values())
    if interrupted:
        print(
            "cstrack track: interrupted; the frames tracked so far are in the *.partial.* files above",
            file=sys.stderr,
        )
        return 130
    return 0

"""`cstrack track`: track people in a video, image folder, MOTChallenge data, webcam or stream.

torch, cv2 and the tracker are imported only when the command runs, so `--help` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cstrack.cli.options import (
    add_model_options,
    add_runtime_options,
    add_tracker_options,
    runtime_config,
    tracker_overrides,
)
from cstrack.cli.track_batch import add_batch_options, is_batch, run_batch
from cstrack.cli.track_options import (
    add_output_options,
    add_source_options,
    observers,
    output_folder,
    source_options,
)
from cstrack.config import DEFAULT_MODEL
from cstrack.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
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
        metavar="SOURCE",
        nargs="+",
        help="video file, image folder, MOTChallenge sequence folder, dataset root, webcam index, or rtsp/http "
        "URL; several, folders of videos, globs ('videos/**/*.mp4') and @LIST.txt (one a line) track a "
        "batch: see --workers and --ray",
    )
    add_model_options(parser, default=DEFAULT_MODEL)
    parser.add_argument("--save-video", action="store_true", help=SAVE_VIDEO_HELP)
    parser.add_argument(
        "--show",
        action="store_true",
        help="show the rendered tracks in a window while tracking (q or Esc stops)",
    )
    parser.add_argument(
        "--trails",
        type=int,
        default=30,
        metavar="N",
        help="trail length in frames, 0: none (default: %(default)s)",
    )
    parser.add_argument(
        "--format",
        default="mot",
        metavar="LIST",
        help="comma-separated outputs: mot (NAME.txt), json (NAME.jsonl) (default: %(default)s)",
    )
    add_output_options(parser)
    add_runtime_options(parser)
    parser.add_argument("--no-recheck", action="store_true", help="disable OMC's re-check network")
    parser.add_argument(
        "--classes",
        metavar="LIST",
        help="multi-class models: track only these classes, comma-separated names or indices "
        "(e.g. pedestrian,car or 0,2); default: all",
    )
    parser.add_argument("--frames", metavar="A-B", help="frame range A-B (1-based, inclusive), e.g. 601-795")
    add_source_options(parser)
    parser.add_argument(
        "--all-frames",
        action="store_true",
        help="webcams and streams: track every frame, however late (default: only the newest, dropping "
        "and counting those the tracker is too slow for); files never drop frames",
    )
    parser.add_argument(
        "--eval", action="store_true", help="score against each sequence's gt/gt.txt (refused without one)"
    )
    parser.add_argument(
        "--benchmark",
        metavar="NAME",
        help="--eval rules (as for cstrack eval, e.g. MOT17); default: MOT17 when gt has class ids, "
        "else MOT15",
    )
    parser.add_argument("--min-area", type=float, help="MOT file filter: drop boxes with w*h <= this")
    parser.add_argument("--max-aspect", type=float, help="MOT file filter: drop boxes with w/h above this")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_tracker_options(parser)
    add_batch_options(parser)
    parser.set_defaults(func=run)


def score_line(s: dict) -> str:
    return f"HOTA {100 * s['HOTA']:.1f}  MOTA {100 * s['MOTA']:.1f}  IDF1 {100 * s['IDF1']:.1f}  IDSW {s['IDSW']}"


def parse_classes(text: str | None) -> list[str] | None:
    """`--classes pedestrian,2` as its items; the tracker resolves names and indices."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise InputError(None, f"--classes {text!r} has an empty item")
    return items


SAVE_VIDEO_HELP = (
    "write NAME.mp4 with boxes, ids and trails: H.264 (plays in browsers) with the video extra "
    "(pip install 'cstrack[video]'), else mp4v (plays in VLC, not in most browsers); the run's summary "
    "names the codec written"
)


def describe_file(kind: str, codec: str | None) -> str:
    """How the summary names an output: a video by its codec, saying when browsers will not play it."""
    if kind != "video":
        return kind
    if codec == "h264":
        return "video (H.264)"
    return f"video ({codec}: not played by most browsers; pip install 'cstrack[video]' for H.264)"


def parse_formats(text: str) -> tuple[str, ...]:
    """`--format mot,json` as a tuple without repeats (`track` checks the names); an empty item is
    an error."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise InputError(None, f"--format {text!r} has an empty item")
    return tuple(dict.fromkeys(items))


def tracker_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of `Tracker` (besides the model and its settings) that the options set."""
    return dict(arch=args.arch, recheck=not args.no_recheck, classes=parse_classes(args.classes))


def run(args: argparse.Namespace) -> int:
    from cstrack.atomic import check_not_input
    from cstrack.data.sources import ALL_FRAMES, FrameRange, open_sources
    from cstrack.pipeline.end_to_end import Tracker
    from cstrack.pipeline.outputs import check_output_folder
    from cstrack.pipeline.runner import check_evaluable, check_track_options, track
    from cstrack.pipeline.tracker_config import TRACKER_CONFIG_FILE, resolve
    from cstrack.pipeline.viewer import Viewer

    formats = parse_formats(args.format)
    # Bad options fail before anything is read (the checks are the library's).
    check_track_options(formats, args.trails, args.min_area, args.max_aspect, args.eval, args.benchmark)
    # The settings: defaults, then --tracker-config FILE, then their options (--conf ...).
    config = resolve(args.tracker_config, tracker_overrides(args))
    runtime = runtime_config(args)
    frames = FrameRange.parse(args.frames) if args.frames else ALL_FRAMES
    outputs = dict(
        formats=formats,
        save_video=args.save_video,
        trails=args.trails,
        evaluate=args.eval,
        benchmark=args.benchmark,
        min_area=args.min_area,
        max_aspect=args.max_aspect,
    )
    if is_batch(args):
        output = output_folder(args)
        check_not_input(output / TRACKER_CONFIG_FILE, [args.tracker_config])
        opening = dict(frames=frames, latest=not args.all_frames, **source_options(args))
        opening["observers"] = observers(args)
        return run_batch(args, output, config, runtime, tracker_keywords(args), {**outputs, **opening})
    (source,) = args.source
    viewer = Viewer(f"cstrack track {source}") if args.show else None  # no display: refused now
    # Bad input fails before a model is loaded: sources, frame range, gt, output folder.
    sources = open_sources(source, frames, latest=not args.all_frames, **source_options(args))
    if args.eval:
        check_evaluable(sources, args.benchmark)
    output = output_folder(args)
    check_output_folder(output, sources)
    check_not_input(output / TRACKER_CONFIG_FILE, [args.tracker_config])
    followers = observers(args)
    tracker = Tracker(args.model, config, runtime, **tracker_keywords(args))
    runs = track(
        sources,
        tracker,
        output=output,
        frames=frames,
        progress=not args.quiet,
        viewer=viewer,
        observers=followers,
        **outputs,
    )
    model_ms, association_ms = tracker.timing.ms_per_frame()
    frames_done = tracker.timing.frames
    cmc = config.association.cmc
    camera = (
        f", camera motion ({cmc}) {tracker.timing.cmc_ms_per_frame():.2f} ms/frame" if cmc != "none" else ""
    )
    print(
        f"tracked {frames_done} frames of {len(runs)} sequence(s): model {model_ms:.1f} ms/frame, "
        f"association {association_ms:.2f} ms/frame{camera}"
    )
    print(f"results in {output}")
    for run_result in runs.values():
        for kind, path in run_result.files.items():
            print(f"  {run_result.name} {describe_file(kind, run_result.video_codec)}: {path}")
        if run_result.scores:
            s = run_result.scores
            span = f"frames {s['frames'][0]}-{s['frames'][1]}"
            if "classes" in s:  # a multi-class model: one line per class
                for name, scores in s["classes"].items():
                    print(f"  {run_result.name} {name} ({s['benchmark']}, {span}): {score_line(scores)}")
            else:
                print(f"  {run_result.name} ({s['benchmark']} rules, {span}): {score_line(s)}")
    interrupted = any(r.interrupted for r in runs.values())
    if interrupted:
        print(
            "cstrack track: interrupted; the frames tracked so far are in the *.partial.* files above",
            file=sys.stderr,
        )
        return 130
    return 0

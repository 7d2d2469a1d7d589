"""`cstrack tune`: search the tracker's thresholds with Optuna on sequences with ground truth.

torch, Optuna and the tracker are imported only when the command runs, so `--help` starts fast.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from pathlib import Path
from typing import Any

from cstrack.cli.options import (
    add_model_options,
    add_runtime_options,
    add_tracker_options,
    runtime_config,
    tracker_overrides,
)
from cstrack.config import CMC_METHODS, DEFAULT_MODEL, search_space
from cstrack.errors import InputError

SHOWN = ("HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN")
BEST_FILE, TRIALS_FILE = "best.yaml", "trials.csv"
SEEDS = range(2**32)  # what Optuna's sampler (numpy's RandomState) takes


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="search the tracker's thresholds with Optuna on sequences with ground truth",
        description=(
            "Run the detector once over every frame of SOURCE (at the lowest thresholds of the search), "
            "then let Optuna's TPE sampler try --trials configurations of the tracker's thresholds, each "
            "costing only association and scoring (cstrack.evaluation, MOTChallenge rules). The base "
            "configuration (defaults, --tracker-config, options) is trial 0, so the best is never worse "
            "than it on these frames. Prints a table of the trials and writes the best configuration "
            "to OUTPUT/best.yaml (for cstrack track --tracker-config) and every trial to "
            "OUTPUT/trials.csv. Re-check: OMC's re-check candidates depend on the live tracks' "
            "templates, which differ between trials, so they are cached from a reference run (the "
            "base configuration's tracking during the detection pass): trial 0 is exact, the others "
            "see the reference run's re-check candidates, not their own; confirm the best with "
            "cstrack track --eval. --no-recheck tunes without re-check, exactly. The detector's "
            "settings but its score threshold are fixed (they change which boxes it keeps). Needs Optuna: "
            "pip install 'cstrack[tune]'."
        ),
    )
    parser.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="MOTChallenge sequence folders or dataset roots, every sequence with gt/gt.txt",
    )
    parser.add_argument("--frames", help="frame range A-B of every sequence (1-based, inclusive), e.g. 1-600")
    parser.add_argument(
        "--trials",
        type=int,
        default=50,
        metavar="N",
        help="trials, the base one included (default: %(default)s)",
    )
    parser.add_argument(
        "--metric",
        default="HOTA",
        metavar="NAME",
        help="the score to optimise over all sequences combined: HOTA, MOTA, IDF1, AssA, DetA ... "
        "(IDSW, FP, FN, IDFP, IDFN, ML, Frag are minimised; default: %(default)s)",
    )
    parser.add_argument(
        "--params",
        metavar="LIST",
        help="the fields to search, comma-separated, each optionally with a range NAME=LOW:HIGH "
        "(e.g. conf,track_buffer=10:90); default: " + ", ".join(f"{name} {low}:{high}" for name, (low, high) in search_space().items())
        + ", cmc " + "|".join(CMC_METHODS)
        + " (byte_low_threshold: off or in its range; cmc=none:sof searches those names; without "
        "re-check, its fields are left out)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler (default: %(default)s)")
    parser.add_argument(
        "--benchmark",
        metavar="NAME",
        help="scoring rules (e.g. MOT17); default: MOT17 when the gt has class ids, else MOT15",
    )
    parser.add_argument(
        "--output",
        default="runs/tune",
        type=Path,
        help="folder for best.yaml and trials.csv (default runs/tune)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        metavar="FILE.npz",
        help="keep the detections in this numpy file and reuse them when the sources, model and NMS "
        "are the same and it was made at thresholds no higher (default: in memory only)",
    )
    add_model_options(parser, default=DEFAULT_MODEL)
    add_runtime_options(parser)
    parser.add_argument(
        "--no-recheck",
        action="store_true",
        help="tune without OMC's re-check network (exact; its fields left out)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_tracker_options(
        parser, title="base configuration (trial 0, the reference run, the fields not searched)"
    )
    parser.set_defaults(func=run)


def _percent(value: Any, name: str) -> str:
    from cstrack.evaluation.metrics import COUNT_KEYS

    return f"{value:d}" if name in COUNT_KEYS else f"{100 * value:.1f}"


def trial_table(result: Any, columns: tuple[str, ...]) -> str:
    """One line per trial: number, scores (ratios in %), seconds; * marks the best, (base) trial 0."""
    widths = [max(len(name), 6) for name in columns]
    lines = ["trial  " + "  ".join(f"{name:>{width}}" for name, width in zip(columns, widths)) + "       s"]
    for trial in result.trials:
        mark = "*" if trial.number == result.best.number else " "
        if trial.scores is None:
            cells = "  ".join(f"{'-':>{width}}" for width in widths)
            note = "  pruned (inconsistent values)"
        else:
            cells = "  ".join(f"{_percent(trial.scores[n], n):>{w}}" for n, w in zip(columns, widths))
            note = "  (base)" if trial.number == 0 else ""
        lines.append(f"{trial.number:>4}{mark}  {cells}  {trial.seconds:6.2f}{note}")
    return "\n".join(lines)


def _summary(label: str, scores: dict[str, Any], columns: tuple[str, ...]) -> str:
    return f"{label}: " + "  ".join(f"{name} {_percent(scores[name], name)}" for name in columns)


def write_trials(path: Path, result: Any) -> None:
    from cstrack.atomic import atomic_write
    from cstrack.evaluation import SCORE_FIELDS
    from cstrack.pipeline.tracker_config import RULES

    with atomic_write(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["trial", "state", "seconds", *SCORE_FIELDS, *RULES])
        for trial in result.trials:
            scores = [trial.scores[name] if trial.scores else "" for name in SCORE_FIELDS]
            values = [trial.config.value(name) if trial.config else "" for name in RULES]
            writer.writerow([trial.number, trial.state, f"{trial.seconds:.3f}", *scores, *values])


def check_options(args: argparse.Namespace) -> None:
    """The options checked before any work: a --cache that is a folder failed only after the
    detection pass, a bad --seed or an unwritable best.yaml only after the search."""
    from cstrack.atomic import check_not_input, check_writable
    from cstrack.pipeline.outputs import check_output_folder

    if args.seed not in SEEDS:
        raise InputError(None, f"--seed must be in {SEEDS.start}..{SEEDS.stop - 1}, got {args.seed}")
    check_output_folder(args.output)
    for name in (BEST_FILE, TRIALS_FILE):
        check_writable(args.output / name, name, file=True)
    if args.cache is not None:
        check_writable(args.cache, "the detection cache", file=True)
        check_not_input(args.cache, [args.tracker_config, args.model], "detection cache")


def run(args: argparse.Namespace) -> int:
    from cstrack.backends.choice import build_detector
    from cstrack.data.sources import ALL_FRAMES, FrameRange, check_unique_names, open_sources
    from cstrack.pipeline.runner import check_evaluable
    from cstrack.pipeline.tracker_config import resolve
    from cstrack.pipeline.tuning import (
        RECHECK_FIELDS,
        cache_detections,
        check_search,
        detection_floor,
        load_cache,
        parse_space,
        require_optuna,
        save_cache,
        tune,
    )

    check_options(args)
    check_search(args.metric, args.trials)  # tune() checks them too, after the detection pass
    require_optuna()  # not installed: say so before the detection pass
    base = resolve(args.tracker_config, tracker_overrides(args))
    runtime = runtime_config(args)
    recheck = not args.no_recheck
    space = parse_space(args.params, recheck)
    frames = FrameRange.parse(args.frames) if args.frames else ALL_FRAMES
    sources = [source for spec in args.sources for source in open_sources(spec, frames)]
    check_unique_names(sources)
    names = [source.name for source in sources]
    check_evaluable(sources, args.benchmark)
    floor, heat_floor = detection_floor(space, base)
    # Camera-motion warps need the frames: estimated in the detection pass for every method searched.
    searched = [name for param in space if param.kind == "choice" for name in param.choices]
    cmc_methods = sorted({base.association.cmc, *searched} - {"none"})
    # What the detections depend on: the detector's settings, its score threshold at the floor.
    detector = dataclasses.replace(base.detector, conf=floor)
    key = {
        "sequences": [str(Path(source.origin).resolve()) for source in sources],
        "frames": str(frames),
        "model": str(args.model),
        "arch": args.arch,
        "backend": runtime.backend,
        "half": runtime.half,
        **{name: list(value) if isinstance(value, tuple) else value for name, value in detector.items()},
        "cmc": cmc_methods,
    }
    recheck_key = {"recheck_threshold": heat_floor, "reference": base.as_dict()} if recheck else None
    cache = None
    if args.cache is not None and args.cache.is_file():
        cache = load_cache(args.cache, sources, key, recheck_key)
    if cache is None:
        searcher = dataclasses.replace(base.recheck, recheck_threshold=heat_floor)
        cache = cache_detections(
            sources,
            build_detector(args.model, detector, searcher, runtime, arch=args.arch),
            base,
            recheck,
            not args.quiet,
            key,
            recheck_key,
            cmc_methods,
        )
        frames_done = sum(len(sequence.results) for sequence in cache.sequences)
        print(
            f"detected {frames_done} frames of {len(sources)} sequence(s) once, at score > {floor:g}"
            + (f" and re-check heat > {heat_floor:g}" if cache.recheck else "")
            + f": {cache.seconds:.0f} s"
        )
        if args.cache is not None:
            print(f"  detections cached in {save_cache(cache, args.cache)}")
    else:
        print(f"detections read from {args.cache}")
    if not cache.recheck:  # --no-recheck, or a model without re-check: its fields change nothing
        space = [param for param in space if param.name not in RECHECK_FIELDS]
    mode = "re-check candidates of the reference run" if cache.recheck else "no re-check"
    print(
        f"searching {', '.join(param.name for param in space)} ({mode}), {args.metric} over {', '.join(names)}"
    )
    result = tune(
        cache, space, args.trials, args.metric, args.seed, base, args.benchmark, progress=not args.quiet
    )
    assert result.best.scores is not None  # the best is a completed trial
    columns = SHOWN if args.metric in SHOWN else (args.metric, *SHOWN)
    print(trial_table(result, columns))
    print(_summary("base (trial 0)", result.base_scores, columns))
    print(_summary(f"best (trial {result.best.number})", result.best.scores, columns))
    changes = result.best_config.changes(base)
    print("best against base:" + ("" if changes else " the same (no trial scored better)"))
    for name, value in changes.items():
        print(f"  {name}: {base.value(name)} -> {value}")
    args.output.mkdir(parents=True, exist_ok=True)
    header = (
        f"cstrack tune: the best of {len(result.trials)} trials by {args.metric} on {', '.join(names)}"
        f" (frames {frames}): {result.best.scores[args.metric]:.4g} (trial {result.best.number}); "
        f"the base configuration (trial 0): {result.base_scores[args.metric]:.4g}.\n"
        + (
            "Tuned with the re-check candidates of a reference run (see cstrack tune --help)."
            if cache.recheck
            else "Tuned without re-check: track with cstrack track --no-recheck --tracker-config FILE."
        )
    )
    best_path = result.best_config.save(args.output / BEST_FILE, header)
    trials_path = args.output / TRIALS_FILE
    write_trials(trials_path, result)
    print(f"wrote {best_path} and {trials_path}")
    return 0

"""The study of `cstrack tune`: Optuna's TPE sampler searching the space for the configuration
that scores best on the detection cache.

The base configuration is enqueued as trial 0, so the best trial scores at least as well as it
does by construction (ties keep the base).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from cstrack.errors import InputError
from cstrack.evaluation import SCORE_FIELDS
from cstrack.pipeline.tracker_config import TrackerConfig
from cstrack.pipeline.tuning.cache import DetectionCache, score_config
from cstrack.pipeline.tuning.space import NEEDS, Param

#: Metrics where lower is better; every other key of SCORE_FIELDS is maximised.
LOWER_IS_BETTER = frozenset({"IDSW", "FP", "FN", "IDFP", "IDFN", "ML", "Frag"})
METRICS = tuple(name for name in SCORE_FIELDS if name != "PT")
#: The suffix of the on/off switch of a `float?` field among a trial's parameters.
ON = ".on"


@dataclass
class Trial:
    """One trial: its number, configuration, scores (combined) and state ('COMPLETE', 'PRUNED')."""

    number: int
    config: TrackerConfig | None
    scores: dict[str, Any] | None
    state: str
    seconds: float = 0.0


@dataclass
class TuneResult:
    """What `tune` found: the base configuration (trial 0) and its scores, the best trial by
    `metric`, and every trial."""

    metric: str
    base: TrackerConfig
    base_scores: dict[str, Any]
    best: Trial
    trials: list[Trial]

    @property
    def best_config(self) -> TrackerConfig:
        assert self.best.config is not None
        return self.best.config


def direction(metric: str) -> str:
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"


def _suggest(trial: Any, space: Sequence[Param], base: TrackerConfig) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for param in space:
        needed = NEEDS.get(param.name)
        if needed is not None and not values.get(needed, base.value(needed)):
            continue  # e.g. BYTE's IoU limit while BYTE is off
        if param.kind == "choice":
            values[param.name] = trial.suggest_categorical(param.name, list(param.choices))
        elif param.kind == "bool":
            values[param.name] = trial.suggest_categorical(param.name, [False, True])
        elif param.kind == "float?":
            on = trial.suggest_categorical(param.name + ON, [False, True])
            values[param.name] = trial.suggest_float(param.name, param.low, param.high) if on else None
        elif param.kind == "int":
            values[param.name] = trial.suggest_int(param.name, int(param.low), int(param.high))
        else:
            values[param.name] = trial.suggest_float(param.name, param.low, param.high, log=param.log)
    return values


def _rounded(values: dict[str, Any], base: TrackerConfig) -> dict[str, Any]:
    """Floats to 3 significant digits, for configurations that read well; the base's own values
    (trial 0) as they are. Trials are scored with the rounded values."""
    return {
        name: float(f"{value:.3g}") if isinstance(value, float) and value != base.value(name) else value
        for name, value in values.items()
    }


def _base_params(space: Sequence[Param], base: TrackerConfig) -> dict[str, Any]:
    """The trial parameters that give `base` (enqueued as trial 0)."""
    params: dict[str, Any] = {}
    for param in space:
        value = base.value(param.name)
        if param.kind == "float?":
            params[param.name + ON] = value is not None
            if value is None:
                continue
        params[param.name] = value
    return params


def check_search(metric: str, trials: int) -> None:
    """Refuse an unknown `metric` or fewer than one trial (`tune` does; `cstrack tune` asks
    before its detection pass)."""
    if metric not in METRICS:
        raise InputError(None, f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    if trials < 1:
        raise InputError(None, f"--trials must be >= 1, got {trials}")


def tune(
    cache: DetectionCache,
    space: Sequence[Param],
    trials: int = 50,
    metric: str = "HOTA",
    seed: int = 0,
    base: TrackerConfig | None = None,
    benchmark: str | None = None,
    progress: bool = True,
    on_trial: Callable[[Trial], None] | None = None,
) -> TuneResult:
    """Search `space` with Optuna's TPE sampler (seeded) for the best `metric` on `cache`.

    Trial 0 is `base` (default: the cache's reference configuration), so the best is never worse
    than it. A trial whose values are inconsistent (BYTE's low threshold not below conf) is pruned.
    """
    optuna = require_optuna()
    check_search(metric, trials)
    base = cache.reference if base is None else base
    benchmark = cache.benchmark(benchmark)
    done: list[Trial] = []

    def objective(trial: Any) -> float:
        started = time.perf_counter()
        try:
            config = base.replace(**_rounded(_suggest(trial, space, base), base))
        except InputError as error:
            done.append(Trial(trial.number, None, None, "PRUNED", time.perf_counter() - started))
            raise optuna.TrialPruned(error.problem) from None
        scores = score_config(cache, config, benchmark)["combined"]
        record = Trial(trial.number, config, scores, "COMPLETE", time.perf_counter() - started)
        done.append(record)
        if on_trial is not None:
            on_trial(record)
        return float(scores[metric])

    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction=direction(metric), sampler=sampler)
    study.enqueue_trial(_base_params(space, base))
    with tqdm(total=trials, desc="tune", unit="trial", disable=not progress) as bar:

        def advance(_study: Any, frozen: Any) -> None:
            bar.update(1)
            if frozen.value is not None:
                bar.set_postfix(
                    {metric: f"{frozen.value:.4g}", "best": f"{_study.best_value:.4g}"}, refresh=False
                )

        study.optimize(objective, n_trials=trials, callbacks=[advance])
    complete = [trial for trial in done if trial.scores is not None]
    sign = -1 if direction(metric) == "minimize" else 1
    best = max(complete, key=lambda trial: sign * float(trial.scores[metric]))  # type: ignore[index]
    assert done[0].scores is not None, "the base trial is never pruned"
    return TuneResult(metric, base, done[0].scores, best, done)


def require_optuna() -> Any:
    from cstrack.optional import require

    optuna = require("optuna", "tune", feature="cstrack tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna

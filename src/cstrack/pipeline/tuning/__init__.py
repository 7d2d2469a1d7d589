"""Tuning the tracker's thresholds on sequences with ground truth: detect once, associate per trial.

    cache = cache_detections(open_sources("data/PETS09-S2L1", FrameRange(1, 600)), detector)
    result = tune(cache, parse_space("conf,track_buffer"), trials=50, metric="HOTA")
    result.best_config.save("best.yaml")

- `space`: the fields searched and their ranges (`parse_space`), and the lowest thresholds any
  trial uses (`detection_floor`), at which the detector runs;
- `cache`: the network run once over every sequence (`cache_detections`), a configuration scored
  on the cached detections (`score_config`), the cache on disk (`save_cache`, `load_cache`);
- `study`: Optuna's search over the space, the base configuration as trial 0 (`tune`).
"""

from cstrack.pipeline.tuning.cache import (
    CachedSequence,
    DetectionCache,
    add_camera_motion,
    cache_detections,
    load_cache,
    save_cache,
    score_config,
)
from cstrack.pipeline.tuning.space import RECHECK_FIELDS, Param, detection_floor, parse_space
from cstrack.pipeline.tuning.study import METRICS, Trial, TuneResult, check_search, require_optuna, tune

__all__ = [
    "METRICS",
    "RECHECK_FIELDS",
    "CachedSequence",
    "DetectionCache",
    "Param",
    "Trial",
    "TuneResult",
    "add_camera_motion",
    "cache_detections",
    "check_search",
    "detection_floor",
    "load_cache",
    "parse_space",
    "require_optuna",
    "save_cache",
    "score_config",
    "tune",
]

"""The application: a model and the association as one tracker, run over videos, folders and
MOTChallenge data, writing result files, rendered videos and scores.

    from cstrack.pipeline import Tracker, track

It sits above `models`, `export`, `tracking`, `evaluation` and `data`, and is the only package that
chooses a backend, opens sources or writes outputs.
"""

from cstrack.pipeline.backends import BACKENDS, build_backend, build_detector, load_model
from cstrack.pipeline.batch import BatchResult, SourceResult, track_many
from cstrack.pipeline.end_to_end import DEFAULT_MODEL, Timing, Tracker
from cstrack.pipeline.render import TrackRenderer
from cstrack.pipeline.runner import FORMATS, SequenceRun, track

__all__ = [
    "BACKENDS",
    "BatchResult",
    "DEFAULT_MODEL",
    "FORMATS",
    "SequenceRun",
    "SourceResult",
    "Timing",
    "TrackRenderer",
    "Tracker",
    "build_backend",
    "build_detector",
    "load_model",
    "track",
    "track_many",
]

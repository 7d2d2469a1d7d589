"""The application: a model and the association as one tracker, run over videos, folders and
MOTChallenge data, writing result files, rendered videos and scores.

    from cstrack.pipeline import Tracker, track

It sits above `backends` (which runs the network), `models`, `export`, `tracking`, `evaluation`
and `data`, and is the only package that opens sources or writes outputs.
"""

from cstrack.pipeline.batch import BatchResult, SourceResult, track_many
from cstrack.pipeline.end_to_end import Timing, Tracker
from cstrack.pipeline.outputs import FORMATS
from cstrack.pipeline.render import TrackRenderer
from cstrack.pipeline.runner import SequenceRun, track

__all__ = [
    "BatchResult",
    "FORMATS",
    "SequenceRun",
    "SourceResult",
    "Timing",
    "TrackRenderer",
    "Tracker",
    "track",
    "track_many",
]

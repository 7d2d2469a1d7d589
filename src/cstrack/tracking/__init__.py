"""Association of detections into tracks: Kalman filter, matching steps and the JDE cascade.

A library on the ground floor, pure numpy (with `lap` and scipy): it knows nothing of models,
files or video and imports only the ground floor of cstrack (its settings, `cstrack.config`'s
`AssociationConfig`), so importing it does not import torch.

What tracks what, from the bottom up:
- `Associator` (a Protocol): one frame's `DetectionResult` in, the frame's tracks out;
- `JDETracker`: the `Associator` of this package, the JDE cascade of CSTrack and OMC;
- `replay_detections`: an `Associator` over detections computed beforehand, to the rows a
  results file holds;
- `cstrack.Tracker` (`cstrack.pipeline`): frames in, tracks out, a `FrameDetector` (the network,
  or any detector) and a `JDETracker` as one object;
- `cstrack.track` / `cstrack.track_many`: a `Tracker` over whole sources (videos, folders,
  cameras), writing result files, videos and scores.
"""

from cstrack.tracking.detections import DetectionResult, Templates, fuse_candidates
from cstrack.tracking.jde_tracker import JDETracker
from cstrack.tracking.kalman import KalmanFilter
from cstrack.tracking.protocols import Associator, FrameDetector
from cstrack.tracking.replay import replay_detections
from cstrack.tracking.rows import results_rows, written_rows
from cstrack.tracking.track_state import Track, TrackState

__all__ = [
    "Associator",
    "DetectionResult",
    "FrameDetector",
    "JDETracker",
    "KalmanFilter",
    "Templates",
    "Track",
    "TrackState",
    "fuse_candidates",
    "replay_detections",
    "results_rows",
    "written_rows",
]

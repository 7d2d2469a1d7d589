"""Association of detections into tracks: Kalman filter, matching steps and the JDE cascade.

A ground-floor library, pure numpy (with `lap` and scipy): it knows nothing of models, files or
video and imports nothing else of cstrack, so importing it does not import torch.
"""

from cstrack.tracking.candidates import Candidates, fuse_candidates
from cstrack.tracking.jde_tracker import JDETracker
from cstrack.tracking.kalman import CHI2_95_4DOF, KalmanFilter
from cstrack.tracking.protocols import DetectionTracker
from cstrack.tracking.replay import track_detections
from cstrack.tracking.track_state import Track, TrackState

__all__ = [
    "CHI2_95_4DOF",
    "Candidates",
    "DetectionTracker",
    "JDETracker",
    "KalmanFilter",
    "Track",
    "TrackState",
    "fuse_candidates",
    "track_detections",
]

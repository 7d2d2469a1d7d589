"""Association of detections into tracks: Kalman filter, matching steps and the JDE cascade.

Pure numpy: importing it does not import torch.
"""

from cstrack.tracking.fusion import Candidates, fuse_candidates
from cstrack.tracking.kalman import CHI2_95_4DOF, KalmanFilter
from cstrack.tracking.protocols import DetectionTracker
from cstrack.tracking.track import Track, TrackState
from cstrack.tracking.tracker import JDETracker

__all__ = [
    "CHI2_95_4DOF",
    "Candidates",
    "DetectionTracker",
    "JDETracker",
    "KalmanFilter",
    "Track",
    "TrackState",
    "fuse_candidates",
]

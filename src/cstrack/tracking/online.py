"""Frames in, tracks out: the CSTrack/OMC network and the JDE cascade as one object.

    from cstrack import Tracker
    tracker = Tracker(model)            # a CSTrack / OMC module (see cstrack.models)
    tracks = tracker.update(frame_bgr)  # list of Track
    tracker.reset()

With an OMC model each frame's active track templates go to the re-check network, and its
transductive detections join the candidates through OMC's fusion (paper eq. 10) before
association. The model and the association are timed separately.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from cstrack.tracking.fusion import Candidates, fuse_candidates
from cstrack.tracking.track import Track
from cstrack.tracking.tracker import JDETracker


@dataclass
class Timing:
    """Seconds spent in the network and in association, and the frames they cover."""

    model: float = 0.0
    association: float = 0.0
    frames: int = 0

    def ms_per_frame(self) -> tuple[float, float]:
        count = max(self.frames, 1)
        return 1000 * self.model / count, 1000 * self.association / count


class Tracker:
    """The end-to-end one-shot tracker over a `cstrack.models.Detector`.

    `recheck` enables OMC's re-check when the model has the network; `fusion_eps` is eq. 10's
    epsilon. Keyword arguments not used here go to `JDETracker` (thresholds).
    """

    def __init__(
        self,
        detector,
        frame_rate: float = 30.0,
        recheck: bool = True,
        fusion_eps: float = 0.5,
        **tracker_options: float,
    ):
        self.detector = detector
        self.recheck = recheck and detector.has_recheck
        self.fusion_eps = fusion_eps
        self._tracker_options = tracker_options
        self.association = JDETracker(frame_rate=frame_rate, **tracker_options)
        self.timing = Timing()

    def reset(self, frame_rate: float | None = None) -> None:
        """Start a new sequence: no tracks, ids from 1, timing kept."""
        if frame_rate is not None and frame_rate != self.association.frame_rate:
            self.association = JDETracker(frame_rate=frame_rate, **self._tracker_options)
        else:
            self.association.reset()

    def update(self, frame_bgr: np.ndarray) -> list[Track]:
        """Detect, re-check and associate one BGR frame; returns the confirmed tracked tracks."""
        start = time.perf_counter()
        templates = None
        if self.recheck:
            active = self.association.active_templates()
            templates = active if len(active) else None
        result = self.detector(frame_bgr, templates)
        middle = time.perf_counter()
        candidates = Candidates(result.boxes_xyxy, result.scores, result.embeddings)
        if templates is not None:
            transductive = Candidates(result.trans_boxes_xyxy, result.trans_scores, result.trans_embeddings)
            candidates = fuse_candidates(candidates, transductive, self.fusion_eps)
        tracks = self.association.update(*candidates)
        end = time.perf_counter()
        self.timing.model += middle - start
        self.timing.association += end - middle
        self.timing.frames += 1
        return tracks

"""The JDE/CSTrack association cascade (CSTrack paper Fig. 5), vectorised over tracks.

Live tracks are held as a structure of arrays so that every stage is a handful of numpy calls,
whatever the number of tracks; `Track` records are made only for what `update()` returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NoReturn, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cstrack.config import DEFAULT_FRAME_RATE, AssociationConfig
from cstrack.tracking.detections import DetectionResult
from cstrack.tracking.kalman import KalmanFilter, warp_states
from cstrack.tracking.matching import (
    Assignment,
    Pairs,
    assign,
    cosine_distance_pairs,
    gate_pairs,
    iou_matrix,
    iou_pairs,
    paired_iou,
    same_class_pairs,
    xyah_to_xyxy,
    xyxy_to_xyah,
)
from cstrack.tracking.track_state import Track, TrackState

_TRACKED = np.int8(TrackState.TRACKED)
_LOST = np.int8(TrackState.LOST)
_STATES = {int(state): state for state in TrackState}
#: Below this norm an embedding's float32 squares are subnormal or zero, so it has no direction
#: to trust: it counts as no appearance at all.
_MIN_NORM = math.sqrt(np.finfo(np.float32).tiny)
#: The least width and height of a box: a zero width is fine, a height must be positive.
_LEAST_SIZE = np.array([0.0, np.finfo(np.float64).smallest_subnormal])

_Float = TypeVar("_Float", np.float32, np.float64)
#: Long re-identification's loose spatial prior: a returning track's cost grows by this weight
#: times its distance from where the remembered one was last seen, in the remembered box heights
#: over `_REID_SPATIAL_SCALE` and capped at 1, so that it only breaks near-ties of appearance.
_REID_SPATIAL_WEIGHT = 0.05
_REID_SPATIAL_SCALE = 20.0


@dataclass
class _TrackArrays:
    """Every live track's state, one row per track, in creation order."""

    ids: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    mean: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 8)))
    covariance: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 3, 4)))
    score: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    state: NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    confirmed: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    start_frame: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    last_frame: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cls: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: The detection index matched in the latest update (`Track.detection_index`), -1: none.
    detection: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: (T, D) unit appearance templates, from the first frame that brings embeddings.
    templates: NDArray[np.float32] | None = None

    _FIELDS = (
        "ids",
        "mean",
        "covariance",
        "score",
        "state",
        "confirmed",
        "start_frame",
        "last_frame",
        "cls",
        "detection",
    )

    def __len__(self) -> int:
        return len(self.ids)

    def keep(self, mask: NDArray[np.bool_]) -> None:
        """Drop the rows where mask is False."""
        for name in self._FIELDS:
            setattr(self, name, getattr(self, name)[mask])
        if self.templates is not None:
            self.templates = self.templates[mask]

    def extend(self, other: _TrackArrays) -> None:
        for name in self._FIELDS:
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))
        if other.templates is not None:
            assert self.templates is not None, "templates are added to tracks that have them"
            self.templates = np.concatenate([self.templates, other.templates])


@dataclass
class _Memory:
    """Tracks lost for longer than the buffer, kept for long re-identification: one row per track,
    oldest first. Boxes are the last Kalman boxes (xyah), moved with the camera like live tracks."""

    ids: NDArray[np.int64]
    boxes: NDArray[np.float64]
    templates: NDArray[np.float32]
    start_frame: NDArray[np.int64]
    last_frame: NDArray[np.int64]
    cls: NDArray[np.int64]

    _FIELDS = ("ids", "boxes", "templates", "start_frame", "last_frame", "cls")

    @classmethod
    def empty(cls, dim: int) -> _Memory:
        int64 = np.zeros(0, dtype=np.int64)
        return cls(int64, np.zeros((0, 4)), np.zeros((0, dim), np.float32), int64, int64, int64)

    def __len__(self) -> int:
        return len(self.ids)

    def keep(self, mask: NDArray[np.bool_] | NDArray[np.intp]) -> None:
        """Keep the rows that `mask` selects (a boolean mask or row indices, in order)."""
        for name in self._FIELDS:
            setattr(self, name, getattr(self, name)[mask])

    def add(self, tracks: _TrackArrays, rows: NDArray[np.intp]) -> None:
        assert tracks.templates is not None, "only tracks with templates are remembered"
        added = (
            tracks.ids[rows],
            tracks.mean[rows, :4],
            tracks.templates[rows],
            tracks.start_frame[rows],
            tracks.last_frame[rows],
            tracks.cls[rows],
        )
        for name, values in zip(self._FIELDS, added):
            setattr(self, name, np.concatenate([getattr(self, name), values]))


class _Detections(NamedTuple):
    """A `DetectionResult` as the cascade reads it, its values checked: boxes and scores in
    float64, embeddings in float32 with their inverse norms (normalising lazily saves a pass), and
    every default filled in."""

    boxes: NDArray[np.float64]
    scores: NDArray[np.float64]
    embeddings: NDArray[np.float32] | None
    inverse_norm: NDArray[np.float32] | None
    may_start: NDArray[np.bool_]
    low_score: NDArray[np.bool_] | None
    classes: NDArray[np.int64]
    detection: NDArray[np.int64]

    def take(self, rows: NDArray[np.intp]) -> _Detections:
        """The detections at `rows`, every field alike."""
        embeddings, inverse_norm, low_score = self.embeddings, self.inverse_norm, self.low_score
        return _Detections(
            self.boxes[rows],
            self.scores[rows],
            None if embeddings is None else embeddings[rows],
            None if inverse_norm is None else inverse_norm[rows],
            self.may_start[rows],
            None if low_score is None else low_score[rows],
            self.classes[rows],
            self.detection[rows],
        )

    def unit(self, rows: NDArray[np.intp]) -> NDArray[np.float32]:
        """Unit embeddings of the detections at `rows` (zero where an embedding has no direction)."""
        assert self.embeddings is not None and self.inverse_norm is not None
        unit: NDArray[np.float32] = self.embeddings[rows] * self.inverse_norm[rows, None]
        return unit


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _as_float(name: str, values: object, dtype: type[_Float]) -> NDArray[_Float]:
    """`values` as a float array, or a ValueError naming the input (strings, None, ragged lists)."""
    try:
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric array, got {type(values).__name__}: {error}") from None


def _refuse_rows(
    name: str, bad: ArrayLike, problem: str, values: NDArray[np.float64] | None = None
) -> NoReturn:
    """ValueError naming the input, its first bad row, the problem and (when short) the row's values."""
    rows = np.flatnonzero(bad)
    shown = "" if values is None else f": {values[rows[0]].tolist()}"
    more = f" (and {len(rows) - 1} more rows)" if len(rows) > 1 else ""
    raise ValueError(f"{name} row {rows[0]} {problem}{shown}{more}")


def _find_bad_values(
    boxes: NDArray[np.float64], scores: NDArray[np.float64], sizes: NDArray[np.float64]
) -> None:
    """ValueError for the first of these problems a box or score has, in this order; else nothing."""
    problems = (
        ("boxes_xyxy", ~np.isfinite(boxes).all(axis=1), "is not finite"),
        ("boxes_xyxy", boxes[:, 2] < boxes[:, 0], "has x2 < x1 (boxes are x1, y1, x2, y2)"),
        ("boxes_xyxy", boxes[:, 3] <= boxes[:, 1], "has y2 <= y1: a box needs a positive height"),
        (
            "boxes_xyxy",
            ~np.isfinite(sizes).all(axis=1),
            "is too large: its size overflows",
        ),
        ("scores", ~np.isfinite(scores), "is not finite"),
    )
    for name, bad, problem in problems:
        if bad.any():
            _refuse_rows(name, bad, problem, boxes if name == "boxes_xyxy" else scores)


def _exact_norms(embeddings: NDArray[np.float32], norms: NDArray[np.float32]) -> NDArray[np.float64]:
    """`norms` with the rows whose float32 squares overflowed redone in float64; NaN or inf refused."""
    bad = ~np.isfinite(norms)
    finite = np.isfinite(embeddings[bad]).all(axis=1)
    if not finite.all():
        rows = np.zeros(len(norms), dtype=bool)
        rows[np.flatnonzero(bad)[~finite]] = True
        _refuse_rows("embeddings", rows, "has a NaN or inf (embeddings are taken as float32)")
    redone = norms.astype(np.float64)
    redone[bad] = np.sqrt(np.einsum("nd,nd->n", embeddings[bad], embeddings[bad], dtype=np.float64))
    return redone


def _check_byte_thresholds(low: float | None, high: float) -> None:
    """BYTE's thresholds when it is on (low not None, checked by its config): low < high <= 1."""
    if low is None:
        return
    if not _is_number(high) or not 0 < high <= 1:
        raise ValueError(f"byte_high_threshold must be a number in (0, 1], got {high!r}")
    if low >= high:
        raise ValueError(f"byte_low_threshold ({low}) must be below the high (detection) threshold ({high})")


class JDETracker:
    """Online multi-object tracker: the JDE cascade that CSTrack and OMC use.

    Each `update()` takes one frame's detections (boxes, scores and optional re-ID embeddings)
    and returns the confirmed, currently tracked tracks. Stage 1 matches tracked and lost tracks
    on appearance (cosine distance to the track template) gated and fused with the Kalman
    Mahalanobis distance; stage 2 matches the remaining tracked tracks by IoU; stage 3 matches
    unconfirmed tracks by IoU; unmatched confident detections start new tracks. Without
    embeddings, stage 1 uses IoU in place of appearance. Every threshold is a field of `config`
    (`cstrack.config.AssociationConfig`, checked there), defaulting to the reference
    implementation's value; `config.cmc` is read by `cstrack.Tracker`, not here.

    `byte_low_threshold` (off by default) adds ByteTrack's BYTE second association (Zhang et al.
    2022): detections scoring below `byte_high_threshold` (default `new_track_thresh`) are kept
    out of the cascade, and those scoring at least `byte_low_threshold` are matched by IoU
    (cost limit `byte_match_thresh`) to the tracked tracks that stage 2 left unmatched, before
    those become lost. A low-score match corrects the Kalman state and keeps the track tracked
    but leaves its appearance template as it was (low-score boxes are mostly occluded people,
    whose embedding shows the occluder); low-score detections never reach lost or unconfirmed
    tracks and never start tracks. Detections below `byte_low_threshold` are dropped.

    With a multi-class detector, `update()` takes each detection's class; a track keeps the class
    of the detection that started it and only ever matches detections of that class (and only
    same-class tracks count as duplicates). `class_aware=False` associates across classes: a
    track then takes the class of its latest matched detection.

    Long re-identification (`reid_seconds` > 0, off by default): a track lost for longer than the
    buffer is remembered (its appearance template and last box) for `reid_seconds`, at most
    `reid_capacity` of them (the oldest are forgotten first). When a new track is confirmed (its
    second matched detection), it is matched to the remembered tracks by appearance alone (cosine
    distance of the templates below `reid_match_thresh`, plus a loose spatial prior that only breaks
    near-ties, since a person may come back anywhere) and takes the identity it matches.

    `compensate_camera(warp)` moves every track by the camera's motion since the last frame,
    before `update()` predicts and associates (BoT-SORT's global motion compensation).
    """

    def __init__(
        self,
        config: AssociationConfig = AssociationConfig(),
        *,
        frame_rate: float = DEFAULT_FRAME_RATE,
        byte_high_threshold: float | None = None,
        kalman: KalmanFilter | None = None,
    ):
        if not (_is_number(frame_rate) and math.isfinite(frame_rate) and frame_rate > 0):
            raise ValueError(f"frame_rate must be a finite positive number, got {frame_rate!r}")
        self.byte_high_threshold = (
            config.new_track_thresh if byte_high_threshold is None else byte_high_threshold
        )
        self.byte_low_threshold = config.byte_low_threshold
        _check_byte_thresholds(config.byte_low_threshold, self.byte_high_threshold)
        self.byte_match_thresh = config.byte_match_thresh
        self.frame_rate = frame_rate
        self.embedding_match_thresh = config.embedding_match_thresh
        self.iou_match_thresh = config.iou_match_thresh
        self.unconfirmed_match_thresh = config.unconfirmed_match_thresh
        self.new_track_thresh = config.new_track_thresh
        self.appearance_weight = config.appearance_weight
        self.gate_thresh = config.gate_thresh
        self.duplicate_iou = config.duplicate_iou
        self.template_momentum = config.template_momentum
        self.class_aware = config.class_aware
        self._split_classes = False  # per update: class_aware and more than class 0 in play
        self.kalman = kalman or KalmanFilter()
        #: Frames a lost track is kept for re-identification; the buffer is given at 30 fps.
        self.max_time_lost = int(frame_rate / 30.0 * config.track_buffer)
        self.reid_seconds = config.reid_seconds
        self.reid_match_thresh = config.reid_match_thresh
        self.reid_capacity = config.reid_capacity
        #: Frames a track stays remembered after it was last seen (0: long re-identification off).
        self.reid_frames = int(round(config.reid_seconds * frame_rate))
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
        self.frame_id = 0
        self._next_id = 1
        self._tracks = _TrackArrays()
        self._memory: _Memory | None = None  # made with the first track remembered

    @property
    def remembered(self) -> int:
        """Number of tracks kept for long re-identification (lost for longer than the buffer)."""
        return 0 if self._memory is None else len(self._memory)

    def compensate_camera(self, warp: ArrayLike) -> None:
        """Move every track (and remembered box) by `warp`, the 2x3 affine map from the previous
        frame's pixels to the next frame's: call it before that frame's `update()`."""
        matrix = _as_float("warp", warp, np.float64)
        if matrix.shape != (2, 3) or not np.isfinite(matrix).all():
            raise ValueError(f"warp must be a finite 2x3 affine matrix, got shape {matrix.shape}")
        if np.linalg.det(matrix[:, :2]) <= 0:
            raise ValueError("warp must keep orientation (its 2x2 part needs a positive determinant)")
        warp_states(matrix, self._tracks.mean, self._tracks.covariance)
        if self._memory is not None:
            warp_states(matrix, self._memory.boxes)

    def __len__(self) -> int:
        """Number of live tracks (tracked, unconfirmed and lost)."""
        return len(self._tracks)

    def update(self, detections: DetectionResult) -> list[Track]:
        """Associate one frame's detections; returns the confirmed tracked tracks.

        Of `detections` the cascade reads the boxes, scores, embeddings (None: IoU in place of
        appearance), classes (None: all 0), `may_start` (None: every unmatched detection may
        start a track; OMC's re-check candidates may be barred from it), `low_score` (with BYTE
        on, the detections for the low-score stage; None: those scoring below
        `byte_high_threshold`; unmarked ones go through the cascade whatever their score) and
        `detection_index` (what a track reports as `Track.detection_index`; None: the position).
        Re-check candidates must have been made detections (`fuse_candidates`) first.
        """
        if len(detections.trans_scores):
            raise ValueError("detections hold re-check candidates: fuse them first (fuse_candidates)")
        if detections.low_score is not None and self.byte_low_threshold is None:
            raise ValueError("low_score is for BYTE's second stage: set byte_low_threshold")
        frame = self._check_inputs(detections)
        # One class everywhere (a pedestrian detector): no pair can differ in class, skip the test.
        self._split_classes = self.class_aware and bool(frame.classes.any() or self._tracks.cls.any())
        weak = None
        if self.byte_low_threshold is not None:
            frame, weak = self._split_low(frame, self.byte_low_threshold)
        boxes, scores, embeddings, inverse_norm = (
            frame.boxes,
            frame.scores,
            frame.embeddings,
            frame.inverse_norm,
        )
        self.frame_id += 1
        tracks = self._tracks
        tracks.detection.fill(-1)
        if embeddings is not None and tracks.templates is None:
            # Templates start empty (zero): a track's first matched embedding becomes its template.
            tracks.templates = np.zeros((len(tracks), embeddings.shape[1]), dtype=np.float32)
        measurements = xyxy_to_xyah(boxes)
        num_dets = len(boxes)

        pool = np.flatnonzero(tracks.confirmed)
        unconfirmed = np.flatnonzero(~tracks.confirmed)
        everyone = len(unconfirmed) == 0  # then the pool is every track: predict in place
        pool_mean = tracks.mean if everyone else tracks.mean[pool]
        pool_cov = tracks.covariance if everyone else tracks.covariance[pool]
        pool_mean[tracks.state[pool] == _LOST, 7] = 0.0
        self.kalman.predict(pool_mean, pool_cov)
        if not everyone:
            tracks.mean[pool], tracks.covariance[pool] = pool_mean, pool_cov

        # Stage 1: tracked and lost tracks, appearance gated and fused with motion.
        projected_mean, innovation_var = self.kalman.project(pool_mean, pool_cov)
        gated = gate_pairs(projected_mean, innovation_var, measurements, self.gate_thresh)
        if self._split_classes:
            gated = same_class_pairs(gated, tracks.cls[pool], frame.classes)
        if embeddings is not None and inverse_norm is not None:
            assert tracks.templates is not None  # made above, on the first frame with embeddings
            appearance: NDArray[np.floating[Any]] = cosine_distance_pairs(
                tracks.templates, embeddings, pool[gated.rows], gated.cols, inverse_norm[gated.cols]
            )
            limit = self.embedding_match_thresh
        else:
            predicted_boxes = xyah_to_xyxy(projected_mean)
            appearance = 1.0 - paired_iou(predicted_boxes[gated.rows], boxes[gated.cols])
            limit = self.iou_match_thresh
        fused = self.appearance_weight * appearance + (1.0 - self.appearance_weight) * gated.costs
        first = assign(Pairs(gated.rows, gated.cols, fused), len(pool), num_dets, limit)

        # Stage 2: remaining tracked tracks by IoU; those left unmatched become lost.
        left = pool[first.unmatched_rows]
        left = left[tracks.state[left] == _TRACKED]
        dets_left = first.unmatched_cols
        second = self._match_by_iou(left, boxes[dets_left], frame.classes[dets_left], self.iou_match_thresh)

        # Stage 3: unconfirmed tracks by IoU; those left unmatched are removed.
        dets_left = dets_left[second.unmatched_cols]
        third = self._match_by_iou(
            unconfirmed, boxes[dets_left], frame.classes[dets_left], self.unconfirmed_match_thresh
        )

        matched = np.concatenate([pool[first.rows], left[second.rows], unconfirmed[third.rows]])
        matched_dets = np.concatenate([first.cols, first.unmatched_cols[second.cols], dets_left[third.cols]])
        self._apply_matches(matched, matched_dets, measurements, frame)
        if self._memory is not None and embeddings is not None:
            self._reidentify(unconfirmed[third.rows])
        lost_now = left[second.unmatched_rows]
        if weak is not None:
            # BYTE: tracked tracks still unmatched by IoU to the low-score boxes; Kalman only.
            low = self._match_by_iou(lost_now, weak.boxes, weak.classes, self.byte_match_thresh)
            self._apply_matches(lost_now[low.rows], low.cols, xyxy_to_xyah(weak.boxes), weak)
            lost_now = lost_now[low.unmatched_rows]
        tracks.state[lost_now] = _LOST

        alive = np.ones(len(tracks), dtype=bool)
        alive[unconfirmed[third.unmatched_rows]] = False
        expired = (tracks.state == _LOST) & (self.frame_id - tracks.last_frame > self.max_time_lost)
        if self.reid_frames > 0:
            self._remember(np.flatnonzero(expired))
        alive &= ~expired
        if not alive.all():
            tracks.keep(alive)

        new_dets = dets_left[third.unmatched_cols]
        new_dets = new_dets[(scores[new_dets] >= self.new_track_thresh) & frame.may_start[new_dets]]
        self._start_tracks(measurements[new_dets], frame.take(new_dets))
        self._remove_duplicates()
        return self.tracks()

    def tracks(self, include_lost: bool = False, include_unconfirmed: bool = False) -> list[Track]:
        """Snapshot of live tracks; by default the confirmed tracked ones that `update` returns."""
        tracks = self._tracks
        wanted = tracks.state == _TRACKED
        if include_lost:
            wanted |= tracks.state == _LOST
        if not include_unconfirmed:
            wanted &= tracks.confirmed
        rows = np.flatnonzero(wanted)
        if include_lost or include_unconfirmed:
            states = [_STATES[s] for s in tracks.state[rows].tolist()]
            confirmed = tracks.confirmed[rows].tolist()
        else:
            states = [TrackState.TRACKED] * len(rows)
            confirmed = [True] * len(rows)
        return list(
            map(
                Track._make,
                zip(
                    tracks.ids[rows].tolist(),
                    list(xyah_to_xyxy(tracks.mean[rows])),
                    tracks.score[rows].tolist(),
                    states,
                    confirmed,
                    tracks.start_frame[rows].tolist(),
                    tracks.last_frame[rows].tolist(),
                    tracks.cls[rows].tolist(),
                    tracks.detection[rows].tolist(),
                ),
            )
        )

    def active_templates(self) -> NDArray[np.float32]:
        """Templates (K, D) of the confirmed tracked tracks: what OMC's re-check searches for."""
        tracks = self._tracks
        if tracks.templates is None:
            return np.zeros((0, 0), dtype=np.float32)
        active: NDArray[np.float32] = tracks.templates[(tracks.state == _TRACKED) & tracks.confirmed]
        return active

    def uncovered_templates(self, boxes_xyxy: ArrayLike, cover_iou: float) -> NDArray[np.float32]:
        """Templates of the confirmed tracked tracks that no box of `boxes_xyxy` (N, 4) covers: the
        track's box one constant-velocity step ahead overlaps none of them at IoU >= `cover_iou`.
        OMC's fusion (eq. 10) keeps only re-check candidates away from the detections, so a
        covered track's search finds nothing that would be kept: re-check the others only."""
        tracks = self._tracks
        if tracks.templates is None:
            return np.zeros((0, 0), dtype=np.float32)
        rows = np.flatnonzero((tracks.state == _TRACKED) & tracks.confirmed)
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        if len(rows) and len(boxes):
            ahead = xyah_to_xyxy(tracks.mean[rows, :4] + tracks.mean[rows, 4:])
            rows = rows[iou_matrix(ahead, boxes).max(axis=1) < cover_iou]
        uncovered: NDArray[np.float32] = tracks.templates[rows]
        return uncovered

    def _match_by_iou(
        self,
        rows: NDArray[np.intp],
        det_boxes: NDArray[np.float64],
        det_classes: NDArray[np.int64],
        limit: float,
    ) -> Assignment:
        """Assign tracks (store rows) to detections on IoU distance with a cost limit."""
        if len(rows) == 0 or len(det_boxes) == 0:
            return Assignment(rows[:0], rows[:0], np.arange(len(rows)), np.arange(len(det_boxes)))
        pairs = iou_pairs(xyah_to_xyxy(self._tracks.mean[rows]), det_boxes, limit)
        if self._split_classes:
            pairs = same_class_pairs(pairs, self._tracks.cls[rows], det_classes)
        return assign(pairs, len(rows), len(det_boxes), limit)

    def _split_low(self, frame: _Detections, low_threshold: float) -> tuple[_Detections, _Detections]:
        """BYTE's split: the cascade's detections, and the low-score ones (>= the low threshold),
        without their embeddings (a low-score match leaves the template as it was)."""
        is_low = frame.scores < self.byte_high_threshold if frame.low_score is None else frame.low_score
        weak = frame.take(np.flatnonzero(is_low & (frame.scores >= low_threshold)))
        weak = weak._replace(embeddings=None, inverse_norm=None)
        if not is_low.any():
            return frame, weak
        return frame.take(np.flatnonzero(~is_low)), weak

    def _check_inputs(self, detections: DetectionResult) -> _Detections:
        """The frame's detections as the cascade reads them, or a ValueError (see the class
        docstring); no Python loop. Their shapes were checked when they were made."""
        boxes = detections.boxes_xyxy.astype(np.float64, copy=False)
        scores = detections.scores.astype(np.float64, copy=False)
        count = len(boxes)
        # A few whole-array operations catch every bad box and score (a NaN or inf makes the sum
        # non-finite, the comparison catches inverted and flat boxes); only then are they named.
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: refused below, not warned of
            sizes = boxes[:, 2:] - boxes[:, :2]
        if not (math.isfinite(sizes.sum() + scores.sum()) and (sizes >= _LEAST_SIZE).all()):
            _find_bad_values(boxes, scores, sizes)  # nothing found: only a sum of huge values overflowed
        embeddings = inverse = None
        if detections.embeddings is not None:
            embeddings = detections.embeddings.astype(np.float32, copy=False)
            templates = self._tracks.templates
            if templates is not None and templates.shape[1] != embeddings.shape[1]:
                raise ValueError(f"embedding size changed from {templates.shape[1]} to {embeddings.shape[1]}")
            norms = np.sqrt(np.einsum("nd,nd->n", embeddings, embeddings))
            if not math.isfinite(norms.sum()):
                norms = _exact_norms(embeddings, norms)
            inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms >= _MIN_NORM)
            inverse = inverse.astype(np.float32, copy=False)
        classes, index, may_start = detections.classes, detections.detection_index, detections.may_start
        return _Detections(
            boxes,
            scores,
            embeddings,
            inverse,
            np.ones(count, bool) if may_start is None else may_start,
            detections.low_score,
            np.zeros(count, np.int64) if classes is None else classes,
            np.arange(count, dtype=np.int64) if index is None else index,
        )

    def _apply_matches(
        self,
        rows: NDArray[np.intp],
        dets: NDArray[np.intp],
        measurements: NDArray[np.float64],
        frame: _Detections,
    ) -> None:
        """Kalman-correct matched tracks with the detections `dets` of `frame` (`measurements`
        are its Kalman measurements), mark them tracked and confirmed, note the detection index,
        refresh templates (where the frame has embeddings)."""
        tracks = self._tracks
        mean, covariance = tracks.mean[rows], tracks.covariance[rows]
        self.kalman.update(mean, covariance, measurements[dets])
        tracks.mean[rows], tracks.covariance[rows] = mean, covariance
        tracks.state[rows] = _TRACKED
        tracks.confirmed[rows] = True
        tracks.score[rows] = frame.scores[dets]
        tracks.last_frame[rows] = self.frame_id
        tracks.detection[rows] = frame.detection[dets]
        if not self.class_aware:
            tracks.cls[rows] = frame.classes[dets]
        if frame.embeddings is not None and frame.inverse_norm is not None:
            templates = tracks.templates
            assert templates is not None  # update() makes them on the first frame with embeddings
            blended = frame.embeddings[dets]
            blended *= ((1.0 - self.template_momentum) * frame.inverse_norm[dets])[:, None]
            blended += self.template_momentum * templates[rows]
            norms = np.sqrt(np.einsum("kd,kd->k", blended, blended))
            blended /= np.maximum(norms, 1e-12)[:, None]
            templates[rows] = blended

    def _start_tracks(self, measurements: NDArray[np.float64], new: _Detections) -> None:
        """New tracks of the detections `new` (`measurements`, their Kalman measurements),
        confirmed at once only on the first frame (as in the reference)."""
        count = len(measurements)
        if count == 0:
            return
        mean, covariance = self.kalman.initiate(measurements)
        frames = np.full(count, self.frame_id, dtype=np.int64)
        templates = self._tracks.templates
        if templates is not None:
            templates = (
                new.unit(np.arange(count))
                if new.embeddings is not None
                else np.zeros((count, templates.shape[1]), np.float32)
            )
        self._tracks.extend(
            _TrackArrays(
                ids=np.arange(self._next_id, self._next_id + count, dtype=np.int64),
                mean=mean,
                covariance=covariance,
                score=new.scores.copy(),
                state=np.full(count, _TRACKED, dtype=np.int8),
                confirmed=np.full(count, self.frame_id == 1),
                start_frame=frames,
                last_frame=frames.copy(),
                cls=new.classes.copy(),
                detection=new.detection.copy(),
                templates=templates,
            )
        )
        self._next_id += count

    def _remember(self, rows: NDArray[np.intp]) -> None:
        """Keep expired lost tracks with an appearance for long re-identification; forget those
        not seen for `reid_frames`, then the oldest beyond `reid_capacity`."""
        tracks = self._tracks
        if tracks.templates is None:
            return
        rows = rows[tracks.templates[rows].any(axis=1)]
        if self._memory is None:
            if len(rows) == 0:
                return
            self._memory = _Memory.empty(tracks.templates.shape[1])
        memory = self._memory
        memory.add(tracks, rows)
        fresh = self.frame_id - memory.last_frame <= self.reid_frames
        if not fresh.all():
            memory.keep(fresh)
        if len(memory) > self.reid_capacity:
            newest = np.sort(np.argsort(-memory.last_frame, kind="stable")[: self.reid_capacity])
            memory.keep(newest)

    def _reidentify(self, rows: NDArray[np.intp]) -> None:
        """Give tracks confirmed this frame the identity of the remembered track they match by
        appearance (see the class docstring); a matched memory is taken out of the memory."""
        memory, tracks = self._memory, self._tracks
        assert memory is not None and tracks.templates is not None
        if len(rows) == 0 or len(memory) == 0:
            return
        appearance = 1.0 - tracks.templates[rows] @ memory.templates.T
        offsets = tracks.mean[rows, None, :2] - memory.boxes[None, :, :2]
        distance = np.sqrt(np.einsum("tmk,tmk->tm", offsets, offsets))
        prior = np.minimum(distance / (_REID_SPATIAL_SCALE * memory.boxes[:, 3]), 1.0)
        costs = appearance + _REID_SPATIAL_WEIGHT * prior
        if self.class_aware:
            costs[tracks.cls[rows][:, None] != memory.cls[None, :]] = np.inf
        pair_rows, pair_cols = np.nonzero(costs < self.reid_match_thresh)
        found = assign(
            Pairs(pair_rows, pair_cols, costs[pair_rows, pair_cols]),
            len(rows),
            len(memory),
            self.reid_match_thresh,
        )
        if len(found.rows) == 0:
            return
        targets, sources = rows[found.rows], found.cols
        tracks.ids[targets] = memory.ids[sources]
        tracks.start_frame[targets] = memory.start_frame[sources]
        blended = self.template_momentum * memory.templates[sources]
        blended += (1.0 - self.template_momentum) * tracks.templates[targets]
        blended /= np.maximum(np.linalg.norm(blended, axis=1), 1e-12)[:, None]
        tracks.templates[targets] = blended
        left = np.ones(len(memory), dtype=bool)
        left[sources] = False
        memory.keep(left)

    def _remove_duplicates(self) -> None:
        """Of a tracked and a lost track overlapping by more than duplicate_iou, keep the older."""
        tracks = self._tracks
        tracked = np.flatnonzero(tracks.state == _TRACKED)
        lost = np.flatnonzero(tracks.state == _LOST)
        if len(tracked) == 0 or len(lost) == 0:
            return
        boxes = xyah_to_xyxy(tracks.mean)
        overlapping = iou_matrix(boxes[tracked], boxes[lost]) > self.duplicate_iou
        if self._split_classes:
            overlapping &= tracks.cls[tracked][:, None] == tracks.cls[lost][None, :]
        p, q = np.nonzero(overlapping)
        if len(p) == 0:
            return
        age = tracks.last_frame - tracks.start_frame
        tracked_older = age[tracked[p]] > age[lost[q]]
        alive = np.ones(len(tracks), dtype=bool)
        alive[lost[q[tracked_older]]] = False
        alive[tracked[p[~tracked_older]]] = False
        tracks.keep(alive)

"""The JDE cascade: each stage, the track lifecycle and reset, on small hand-built scenes."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.config import AssociationConfig
from cstrack.tracking import DetectionResult, JDETracker, TrackState


def box(x: float, y: float, w: float = 20.0, h: float = 50.0) -> list[float]:
    return [x, y, x + w, y + h]


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


A, B, C = unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(0, 0, 1, 0)


def step(tracker, boxes, embeddings=None, scores=None):
    boxes = np.array(boxes, dtype=float).reshape(-1, 4)
    scores = np.full(len(boxes), 0.9) if scores is None else np.asarray(scores)
    emb = None if embeddings is None else np.array(embeddings, dtype=np.float32).reshape(len(boxes), -1)
    return tracker.update(DetectionResult(boxes, scores, emb))


def ids(tracks) -> list[int]:
    return sorted(t.track_id for t in tracks)


def test_first_frame_tracks_are_confirmed_and_numbered_from_one():
    trk = JDETracker()
    out = step(trk, [box(0, 0), box(100, 0)], [A, B])
    assert ids(out) == [1, 2]
    assert all(t.state is TrackState.TRACKED and t.confirmed for t in out)
    np.testing.assert_allclose(out[0].box_xyxy, box(0, 0))
    np.testing.assert_allclose(out[0].box_xywh, [0, 0, 20, 50])


def test_later_tracks_need_a_second_match_to_be_confirmed():
    trk = JDETracker()
    step(trk, [box(0, 0)], [A])
    out = step(trk, [box(1, 0), box(200, 0)], [A, B])
    assert ids(out) == [1]
    unconfirmed = [t for t in trk.tracks(include_unconfirmed=True) if not t.confirmed]
    assert [t.track_id for t in unconfirmed] == [2]
    out = step(trk, [box(2, 0), box(201, 0)], [A, B])
    assert ids(out) == [1, 2]


def test_unconfirmed_track_is_removed_when_unmatched():
    trk = JDETracker()
    step(trk, [box(0, 0)], [A])
    step(trk, [box(0, 0), box(200, 0)], [A, B])
    step(trk, [box(0, 0)], [A])
    assert len(trk) == 1
    out = step(trk, [box(0, 0), box(200, 0)], [A, B])
    assert ids(out) == [1]
    assert ids(trk.tracks(include_unconfirmed=True)) == [1, 3]


def test_lost_track_is_reactivated_with_its_id_by_appearance():
    trk = JDETracker(frame_rate=30)
    step(trk, [box(0, 0), box(100, 0)], [A, B])
    step(trk, [box(100, 0)], [B])
    lost = trk.tracks(include_lost=True)
    assert {t.track_id: t.state for t in lost} == {1: TrackState.LOST, 2: TrackState.TRACKED}
    for _ in range(5):
        step(trk, [box(100, 0)], [B])
    out = step(trk, [box(2, 1), box(100, 0)], [A, B])
    assert ids(out) == [1, 2]
    assert next(t for t in out if t.track_id == 1).last_frame == trk.frame_id


def test_lost_buffer_is_scaled_by_frame_rate():
    for frame_rate, buffer in [(30, 30), (15, 15), (7, 7)]:
        trk = JDETracker(frame_rate=frame_rate)
        assert trk.max_time_lost == buffer
        step(trk, [box(0, 0), box(100, 0)], [A, B])
        for _ in range(buffer):
            step(trk, [box(100, 0)], [B])
        assert len(trk.tracks(include_lost=True)) == 2
        step(trk, [box(100, 0)], [B])
        assert ids(trk.tracks(include_lost=True)) == [2]


def test_appearance_decides_between_two_close_detections():
    trk = JDETracker()
    step(trk, [box(0, 0), box(12, 0)], [A, B])
    # The two people cross: IoU alone would keep each id on its side, appearance follows them.
    out = step(trk, [box(1, 0), box(11, 0)], [B, A])
    by_id = {t.track_id: t.box_xyxy[0] for t in out}
    assert by_id[1] > by_id[2]


def test_mahalanobis_gate_blocks_far_detection_with_same_appearance():
    trk = JDETracker()
    step(trk, [box(0, 0)], [A])
    out = step(trk, [box(600, 300)], [A])
    assert ids(out) == []
    assert ids(trk.tracks(include_lost=True, include_unconfirmed=True)) == [1, 2]


def test_stage_two_matches_by_iou_when_appearance_fails():
    trk = JDETracker()
    step(trk, [box(0, 0)], [A])
    out = step(trk, [box(3, 0)], [C])  # appearance cost 1 > 0.4, IoU 0.74
    assert ids(out) == [1]
    np.testing.assert_allclose(trk._tracks.templates[0], unit(0.9, 0, 0.1, 0), rtol=1e-6)


def test_template_is_an_exponential_moving_average():
    trk = JDETracker(AssociationConfig(embedding_match_thresh=0.9))
    step(trk, [box(0, 0)], [A])
    step(trk, [box(0, 0)], [unit(1, 1, 0, 0)])
    expected = 0.9 * A + 0.1 * unit(1, 1, 0, 0)
    np.testing.assert_allclose(trk._tracks.templates[0], expected / np.linalg.norm(expected), rtol=1e-6)


def test_low_score_detections_do_not_start_tracks():
    trk = JDETracker(AssociationConfig(new_track_thresh=0.6))
    out = step(trk, [box(0, 0), box(100, 0)], [A, B], scores=[0.9, 0.55])
    assert ids(out) == [1]


def test_detections_barred_by_may_start_only_continue_tracks():
    trk = JDETracker()
    emb = np.stack([A, B])
    first = trk.update(
        DetectionResult([box(0, 0), box(100, 0)], np.full(2, 0.9), emb, may_start=[True, False])
    )
    assert ids(first) == [1]
    # The barred detection still matches an existing track in later frames.
    second = trk.update(
        DetectionResult([box(1, 0), box(300, 0)], np.full(2, 0.9), np.stack([A, C]), may_start=[False, False])
    )
    assert ids(second) == [1] and len(trk.tracks()) == 1
    with pytest.raises(ValueError, match="may_start"):
        DetectionResult([box(0, 0)], np.full(1, 0.9), A[None], may_start=[True, False])


def test_duplicate_of_an_older_lost_track_is_removed():
    trk = JDETracker()
    step(trk, [box(0, 0)], [A])
    step(trk, [box(0, 0)], [A])
    step(trk, [], None)  # track 1 is lost, still at (0, 0)
    # An appearance-dissimilar detection on the same spot is gated in, but costs > 0.4: new track 2
    # is younger than lost track 1 and overlaps it, so it is dropped as a duplicate.
    step(trk, [box(0, 0)], [B])
    assert ids(trk.tracks(include_lost=True, include_unconfirmed=True)) == [1]


def test_without_embeddings_motion_and_iou_still_track():
    trk = JDETracker()
    for k in range(10):
        out = step(trk, [box(5 * k, 0), box(300 - 5 * k, 100)])
    assert ids(out) == [1, 2]
    assert out[0].box_xyxy[0] == pytest.approx(45, abs=1.0)


def test_reset_and_independent_instances_restart_ids():
    first, second = JDETracker(), JDETracker()
    step(first, [box(0, 0), box(100, 0)], [A, B])
    assert ids(step(second, [box(0, 0)], [A])) == [1]
    first.reset()
    assert len(first) == 0 and first.frame_id == 0
    assert ids(step(first, [box(50, 0)], [C])) == [1]


def test_bad_inputs_raise_value_errors():
    trk = JDETracker()
    with pytest.raises(ValueError, match="scores"):
        DetectionResult(np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="embeddings"):
        DetectionResult(np.zeros((2, 4)), np.zeros(2), np.zeros((3, 8)))
    step(trk, [box(0, 0)], [A])
    with pytest.raises(ValueError, match="embedding size changed from 4 to 8"):
        trk.update(DetectionResult([box(0, 0)], [0.9], np.ones((1, 8))))
    with pytest.raises(ValueError, match="fuse them first"):
        trk.update(DetectionResult([box(0, 0)], [0.9], trans_boxes_xyxy=[box(50, 0)], trans_scores=[0.4]))
    with pytest.raises(ValueError, match="frame_rate"):
        JDETracker(frame_rate=0)


def test_empty_frames_are_fine():
    trk = JDETracker()
    assert step(trk, [], None) == []
    assert ids(step(trk, [box(0, 0)], [A])) == []
    assert len(trk) == 1


# BYTE (ByteTrack's second association of low-score detections), off by default.

OCCLUDED = range(6, 10)  # frames where the person's score dips to 0.3


def walker(frame: int) -> list[float]:
    return box(100 + 2 * frame, 40)


def detector_view(boxes, scores, embeddings, threshold):
    """What a detector thresholded at `threshold` hands the tracker."""
    keep = np.asarray(scores) >= threshold
    return (
        [b for b, k in zip(boxes, keep) if k],
        [e for e, k in zip(embeddings, keep) if k],
        np.asarray(scores)[keep],
    )


def occlusion_run(trk, detector_threshold):
    """A walker (A) and a bystander (B); the walker scores 0.3, its embedding garbled, while occluded."""
    outputs = []
    for frame in range(1, 15):
        occluded = frame in OCCLUDED
        boxes = [walker(frame), box(300, 40)]
        embeddings = [unit(1, 0, 0.6, 0) if occluded else A, B]
        scores = [0.3 if occluded else 0.9, 0.9]
        boxes, embeddings, scores = detector_view(boxes, scores, embeddings, detector_threshold)
        outputs.append({t.track_id: t for t in step(trk, boxes, embeddings, scores)})
    return outputs


def test_byte_keeps_a_track_with_boxes_through_a_low_score_dip():
    off = occlusion_run(JDETracker(), detector_threshold=0.5)
    assert all(1 not in off[frame - 1] for frame in OCCLUDED)  # lost: no box while occluded

    trk = JDETracker(AssociationConfig(byte_low_threshold=0.1))
    on = occlusion_run(trk, detector_threshold=0.1)
    assert all(ids(out.values()) == [1, 2] for out in on)
    for frame in OCCLUDED:
        walker_track = on[frame - 1][1]
        assert walker_track.last_frame == frame and walker_track.score == pytest.approx(0.3)
        np.testing.assert_allclose(walker_track.box_xyxy, walker(frame), atol=1.0)
    assert len(trk) == 2


def test_byte_low_score_match_does_not_touch_the_template():
    trk = JDETracker(AssociationConfig(byte_low_threshold=0.1))
    step(trk, [walker(1)], [A])
    step(trk, [walker(2)], [A])
    before = trk._tracks.templates.copy()
    out = step(trk, [walker(3)], [C], scores=[0.3])
    assert ids(out) == [1]
    np.testing.assert_array_equal(trk._tracks.templates, before)


def test_byte_low_score_detections_never_start_tracks():
    trk = JDETracker(AssociationConfig(byte_low_threshold=0.1))
    for frame in range(1, 6):
        assert step(trk, [walker(frame), box(300, 40)], [A, B], scores=[0.3, 0.45]) == []
    assert len(trk) == 0


def test_byte_low_score_detections_reach_only_tracked_tracks():
    # Track 1 is lost in frame 2; a low-score box on the spot, with its appearance, leaves it lost
    # (ByteTrack's low stage is for tracked tracks, by IoU only). Without BYTE it is reactivated.
    results = {}
    for byte in (None, 0.1):
        trk = JDETracker(AssociationConfig(byte_low_threshold=byte))
        step(trk, [walker(1)], [A])
        step(trk, [], None)
        results[byte] = step(trk, [walker(1)], [A], scores=[0.3])
    assert ids(results[None]) == [1] and ids(results[0.1]) == []
    # An unconfirmed track is not continued by a low-score box either: it is removed.
    trk = JDETracker(AssociationConfig(byte_low_threshold=0.1))
    step(trk, [walker(1)], [A])
    step(trk, [walker(2), box(300, 40)], [A, B])
    step(trk, [walker(3), box(300, 40)], [A, B], scores=[0.9, 0.3])
    assert ids(trk.tracks(include_lost=True, include_unconfirmed=True)) == [1]


def crowd(seed: int = 5, frames: int = 40, people: int = 6):
    """A random walk of people with noisy embeddings, misses and scores in [0.5, 1)."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 600, size=(people, 2))
    velocity = rng.normal(0, 3, size=(people, 2))
    identity = rng.normal(size=(people, 16))
    for frame in range(frames):
        seen = rng.random(people) > 0.15
        corners = start[seen] + frame * velocity[seen] + rng.normal(0, 1, size=(seen.sum(), 2))
        boxes = np.hstack([corners, corners + [30, 80]])
        emb = (identity[seen] + rng.normal(0, 0.3, size=(seen.sum(), 16))).astype(np.float32)
        yield boxes, rng.uniform(0.5, 1.0, size=seen.sum()), emb


def snapshot(tracks) -> list[tuple]:
    return [(t.track_id, tuple(np.round(t.box_xyxy, 9)), t.score, t.start_frame) for t in tracks]


@pytest.mark.parametrize("options", [{}, {"byte_low_threshold": None}, {"byte_low_threshold": 0.1}])
def test_byte_changes_nothing_without_low_score_detections(options):
    reference, trk = JDETracker(), JDETracker(AssociationConfig(**options))
    for boxes, scores, emb in crowd():
        frame = DetectionResult(boxes, scores, emb)
        assert snapshot(trk.update(frame)) == snapshot(reference.update(frame))
    assert len(reference.tracks(include_lost=True)) >= 6


def test_byte_low_score_mask_overrides_the_score_split():
    # A box scoring 0.3 but not marked low goes through the cascade (OMC's re-check candidates).
    trk = JDETracker(AssociationConfig(byte_low_threshold=0.1))
    step(trk, [walker(1)], [A])
    step(trk, [], None)
    out = trk.update(DetectionResult([walker(1)], [0.3], A[None], low_score=[False]))
    assert ids(out) == [1]
    with pytest.raises(ValueError, match="low_score"):
        DetectionResult([walker(1)], [0.3], A[None], low_score=[False, True])
    with pytest.raises(ValueError, match="byte_low_threshold"):
        JDETracker().update(DetectionResult([walker(1)], [0.3], A[None], low_score=[True]))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"byte_low_threshold": 0.0}, r"\(0, 1\)"),
        ({"byte_low_threshold": 1.0}, r"\(0, 1\)"),
        ({"byte_low_threshold": -0.1}, r"\(0, 1\)"),
        ({"byte_low_threshold": True}, r"\(0, 1\)"),
        ({"byte_low_threshold": "high"}, r"\(0, 1\)"),
        ({"byte_low_threshold": 0.5}, r"below the high \(detection\) threshold \(0.5\)"),
        ({"byte_low_threshold": 0.3, "byte_high_threshold": 0.2}, r"below the high"),
        ({"byte_low_threshold": 0.4, "new_track_thresh": 0.4}, r"below the high"),
        ({"byte_low_threshold": 0.1, "byte_high_threshold": 1.5}, r"byte_high_threshold"),
    ],
)
def test_byte_thresholds_are_checked(options, message):
    high = options.pop("byte_high_threshold", None)
    with pytest.raises(ValueError, match=message):
        JDETracker(AssociationConfig(**options), byte_high_threshold=high)


def test_byte_high_threshold_defaults_to_the_new_track_threshold():
    assert JDETracker(AssociationConfig(byte_low_threshold=0.1)).byte_high_threshold == 0.5
    high = JDETracker(AssociationConfig(byte_low_threshold=0.1, new_track_thresh=0.6)).byte_high_threshold
    assert high == 0.6
    with pytest.raises(ValueError, match=r"new_track_thresh: must be a number in \[0, 1\], got 1.2"):
        AssociationConfig(new_track_thresh=1.2)  # the config checks itself, BYTE on or off


# Bad inputs are refused with the input, the row and the problem named; nothing is tracked.

GOOD_BOXES = np.array([box(0, 0), box(100, 0)], float)


@pytest.mark.parametrize(
    "boxes, scores, embeddings, message",
    [
        ([box(0, 0), [np.nan, 0, 20, 50]], None, None, r"boxes_xyxy row 1 is not finite: \[nan"),
        ([box(0, 0), [np.inf, 0, np.inf, 50]], None, None, r"boxes_xyxy row 1 is not finite"),
        ([[20, 0, 0, 50], box(100, 0)], None, None, r"boxes_xyxy row 0 has x2 < x1"),
        ([box(0, 0), [100, 50, 120, 0]], None, None, r"boxes_xyxy row 1 has y2 <= y1"),
        ([box(0, 0), [100, 50, 120, 50]], None, None, r"boxes_xyxy row 1 has y2 <= y1"),
        ([[5, 0, 1, 50], [5, 0, 1, 50]], None, None, r"row 0 has x2 < x1.*\(and 1 more rows\)"),
        (np.zeros((2, 5)), None, None, r"boxes_xyxy must be an \(N, 4\) array.*\(2, 5\)"),
        (np.zeros(8), None, None, r"boxes_xyxy must be an \(N, 4\) array.*\(8,\)"),
        ([["a", 0, 1, 2]], [0.9], None, r"boxes_xyxy must be a numeric array"),
        (GOOD_BOXES, [0.9, np.inf], None, r"scores row 1 is not finite: inf"),
        (GOOD_BOXES, [np.nan, 0.9], None, r"scores row 0 is not finite: nan"),
        (GOOD_BOXES, [[0.9], [0.9]], None, r"scores of shape \(2, 1\): expected \(2,\)"),
        (GOOD_BOXES, None, [A, [np.nan, 0, 0, 0]], r"embeddings row 1 has a NaN or inf"),
        (GOOD_BOXES, None, [[0, np.inf, 0, 0], B], r"embeddings row 0 has a NaN or inf"),
        (GOOD_BOXES, None, np.array([A, [1e200, 0, 0, 0]]), r"embeddings row 1 has a NaN or inf.*float32"),
    ],
)
def test_bad_detections_are_refused_naming_input_row_and_problem(boxes, scores, embeddings, message):
    trk = JDETracker()
    step(trk, [box(0, 0), box(100, 0)], [A, B])
    before = (trk.frame_id, trk._tracks.mean.copy(), trk._tracks.templates.copy())
    scores = np.full(len(boxes), 0.9) if scores is None else scores
    with pytest.raises(ValueError, match=message), np.errstate(over="ignore"):
        trk.update(DetectionResult(boxes, scores, embeddings))
    # A refused frame leaves the tracker as it was.
    assert trk.frame_id == before[0]
    np.testing.assert_array_equal(trk._tracks.mean, before[1])
    np.testing.assert_array_equal(trk._tracks.templates, before[2])


def test_boxes_of_zero_width_and_empty_lists_are_fine():
    trk = JDETracker()
    out = trk.update(DetectionResult([[10, 0, 10, 50]], [0.9]))
    assert ids(out) == [1] and np.all(np.isfinite(out[0].box_xyxy))
    assert trk.update(DetectionResult([], [])) == []


def test_huge_embeddings_are_normalised_not_zeroed():
    # Their float32 squares overflow: the norm must still come out right, not as inf (template 0).
    trk = JDETracker()
    step(trk, [box(0, 0)], [[3e30, 4e30, 0, 0]])
    np.testing.assert_allclose(trk._tracks.templates[0], [0.6, 0.8, 0, 0], rtol=1e-6)
    out = step(trk, [box(1, 0)], [[3e30, 4e30, 0, 0]])
    assert ids(out) == [1]
    np.testing.assert_allclose(trk._tracks.templates[0], [0.6, 0.8, 0, 0], rtol=1e-6)


@pytest.mark.parametrize("zero", [[0, 0, 0, 0], [1e-30, 0, 0, 0]])
def test_zero_norm_embedding_is_no_appearance(zero):
    trk = JDETracker()
    step(trk, [box(0, 0)], [A])
    # Matched by IoU in stage 2, it leaves the template as it was.
    assert ids(step(trk, [box(1, 0)], [zero])) == [1]
    np.testing.assert_allclose(trk._tracks.templates[0], A, rtol=1e-6)
    assert np.all(np.isfinite(trk._tracks.templates))
    # A track it starts has an empty template, which its first real embedding then fills.
    trk = JDETracker()
    step(trk, [box(0, 0)], [zero])
    np.testing.assert_array_equal(trk._tracks.templates[0], 0)
    step(trk, [box(1, 0)], [B])
    np.testing.assert_allclose(trk._tracks.templates[0], B, rtol=1e-6)


@pytest.mark.parametrize("frame_rate", [np.nan, np.inf, -30, 0.0, True, "30", None])
def test_frame_rate_must_be_a_finite_positive_number(frame_rate):
    with pytest.raises(ValueError, match="frame_rate must be a finite positive number"):
        JDETracker(frame_rate=frame_rate)


def test_uncovered_templates_are_those_of_tracks_no_detection_overlaps():
    trk = JDETracker()
    step(trk, [box(0, 0), box(100, 0), box(200, 0)], [A, B, C])
    step(trk, [box(2, 0), box(102, 0), box(202, 0)], [A, B, C])
    # Next frame: a detection covers the first track, another half-covers the second, none the third.
    boxes = np.array([box(4, 0), box(114, 0)])
    uncovered = trk.uncovered_templates(boxes, cover_iou=0.5)
    np.testing.assert_allclose(uncovered, np.stack([B, C]), atol=1e-6)
    assert len(trk.uncovered_templates(boxes, cover_iou=0.2)) == 1  # the second counts as covered
    np.testing.assert_allclose(trk.uncovered_templates(np.zeros((0, 4)), 0.5), trk.active_templates())
    assert trk.uncovered_templates(np.array([box(4, 0), box(104, 0), box(204, 0)]), 0.5).shape == (0, 4)


def test_each_track_reports_the_input_detection_it_matched():
    trk = JDETracker()
    first = step(trk, [box(0, 0), box(100, 0)], [A, B])
    assert [(t.track_id, t.detection_index) for t in first] == [(1, 0), (2, 1)]
    second = step(trk, [box(102, 0), box(2, 0), box(300, 0)], [B, A, C])  # order swapped, one new
    assert {t.track_id: t.detection_index for t in second} == {1: 1, 2: 0}
    third = step(trk, [box(104, 0)], [B])
    everyone = trk.tracks(include_lost=True, include_unconfirmed=True)
    assert {t.track_id: (t.state, t.detection_index) for t in everyone} == {
        1: (TrackState.LOST, -1),  # not matched in this frame
        2: (TrackState.TRACKED, 0),
    }
    assert [t.detection_index for t in third] == [0]


def test_detection_indices_given_are_reported_through_byte_and_new_tracks():
    trk = JDETracker(AssociationConfig(byte_low_threshold=0.1))
    step(trk, [box(0, 0), box(100, 0)], [A, B])
    out = trk.update(
        DetectionResult(
            [box(1, 0), box(101, 0), box(300, 0)],
            [0.3, 0.9, 0.9],  # the first only for BYTE's low-score stage
            np.array([A, B, C]),
            detection_index=[7, 8, -1],
        )
    )
    assert {t.track_id: t.detection_index for t in out} == {1: 7, 2: 8}
    assert [t.detection_index for t in trk.tracks(include_unconfirmed=True) if t.track_id == 3] == [-1]
    with pytest.raises(ValueError, match=r"detection_index must have shape \(1,\)"):
        DetectionResult([box(0, 0)], [0.9], detection_index=[0, 1])
    with pytest.raises(ValueError, match="detection_index must be integer indices"):
        DetectionResult([box(0, 0)], [0.9], detection_index=[0.5])

"""Camera-motion estimation between consecutive frames, with OpenCV, for moving cameras.

    motion = CameraMotion("sof")
    warp = motion(frame_bgr, boxes_xyxy)      # 2x3: previous frame's pixels -> this frame's
    tracker.association.compensate_camera(warp)

A hand-held or panning camera moves every box between frames; a Kalman filter that predicts in
image pixels then drifts with the camera and IoU matching fails (BoT-SORT's global motion
compensation, BoxMOT's `cmc`). Each method fits a similarity warp (rotation, uniform scale,
shift) to the background, on a grey frame downscaled to `width` pixels (the warp is scaled back
to full resolution); the frame's detections are masked out, since people move on their own:

- `sof` (default of the methods): sparse optical flow. Corners (`goodFeaturesToTrack`) found
  in the previous frame, away from its detections, are followed by pyramidal Lucas-Kanade
  (`calcOpticalFlowPyrLK`), and `estimateAffinePartial2D` fits the warp with RANSAC.
- `orb`: ORB keypoints and descriptors in both frames (detections masked), brute-force Hamming
  matches with a ratio test, then the same RANSAC fit.
- `ecc`: `findTransformECC`, a dense intensity alignment (Euclidean model), masked on this
  frame's detections; slower, but it needs no texture corners.

When a method cannot fit a warp (a blank frame, too few points, ECC not converging) the warp is
the identity: the tracker then predicts as it would without compensation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from cstrack.errors import InputError

#: Fewer matched points than this leave the warp at the identity (RANSAC needs a margin over 2).
_MIN_POINTS = 8
_ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-3)
_ECC_LEVELS = 2
#: The width of the grey frame each method runs on by default: ECC's dense alignment costs ~20 ms
#: at 480 pixels and ~3 ms at 240 on a 1080p frame (2 cores), with the same tracking scores on
#: MOT17-11-300 (benchmarks/cmc_speed.py, benchmarks/moving_camera.py).
WIDTHS = {"sof": 480, "ecc": 240, "orb": 480}
# Lowe's ratio test of ORB matches: the best match must be clearly better than the second.
_ORB_RATIO = 0.75

Warp = NDArray[np.float64]


class MotionEstimator(Protocol):
    """What `Tracker` calls each frame (its `camera_motion`): `CameraMotion`, or the recorder of
    `cstrack tune`'s detection pass, which estimates the warps of every method searched
    (`cstrack.pipeline.tuning.cache`)."""

    def __call__(self, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> Warp: ...

    def reset(self) -> None: ...


def identity_warp() -> Warp:
    """The 2x3 warp that moves nothing."""
    return np.eye(2, 3)


class CameraMotion:
    """Estimates each frame's camera motion since the previous frame it was given (see the module).

    `method` is sof, ecc or orb; `width` the width of the grey frame the estimate runs on
    (default: `WIDTHS`);
    `max_points` the most corners (sof) or keypoints (orb); `ransac_pixels` the RANSAC inlier
    distance in those downscaled pixels. `reset()` before a new sequence.
    """

    def __init__(
        self, method: str = "sof", width: int | None = None, max_points: int = 200, ransac_pixels: float = 1.0
    ):
        estimators: dict[str, Callable[[np.ndarray, np.ndarray], Warp | None]] = {
            "sof": self._sparse_flow,
            "ecc": self._ecc,
            "orb": self._orb,
        }
        if method not in estimators:
            raise InputError(
                None, f"camera motion method must be one of {', '.join(estimators)}, got {method!r}"
            )
        width = WIDTHS[method] if width is None else width
        if width < 32:
            raise InputError(None, f"camera motion width must be >= 32 pixels, got {width}")
        self.method = method
        self.width = width
        self.max_points = max_points
        self.ransac_pixels = ransac_pixels
        self._estimate = estimators[method]
        self._orb_detector = cv2.ORB.create(nfeatures=max_points) if method == "orb" else None
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING) if method == "orb" else None
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame: the next frame's warp is the identity."""
        self._previous: np.ndarray | None = None
        self._points: np.ndarray | None = None  # sof: corners of the previous frame
        self._features: tuple[Sequence[cv2.KeyPoint], np.ndarray | None] | None = None  # orb

    def __call__(self, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> Warp:
        """The 2x3 warp from the previous frame's pixels to this frame's (identity on the first)."""
        height, width = frame_bgr.shape[:2]
        scale = min(1.0, self.width / width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(
            frame_bgr, size, interpolation=cv2.INTER_LINEAR if scale < 1 else cv2.INTER_NEAREST
        )
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        mask = np.full(grey.shape, 255, np.uint8)
        factors = np.array([size[0] / width, size[1] / height] * 2)
        for x0, y0, x1, y1 in np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4) * factors:
            mask[max(0, int(y0)) : max(0, int(np.ceil(y1))), max(0, int(x0)) : max(0, int(np.ceil(x1)))] = 0
        warp = self._estimate(grey, mask)
        self._previous = grey
        if warp is None:
            return identity_warp()
        # From downscaled pixels back to full resolution: S W S^-1, S = diag(width / size).
        full = warp.astype(np.float64)
        full[0, 1] *= factors[1] / factors[0]
        full[1, 0] *= factors[0] / factors[1]
        full[:, 2] /= factors[:2]
        return full

    def _fit(self, previous: np.ndarray, current: np.ndarray) -> Warp | None:
        """RANSAC similarity from matched points (K, 2), or None with too few or no fit."""
        if len(previous) < _MIN_POINTS:
            return None
        warp, _ = cv2.estimateAffinePartial2D(
            previous, current, method=cv2.RANSAC, ransacReprojThreshold=self.ransac_pixels
        )
        return None if warp is None else np.asarray(warp, np.float64)

    def _sparse_flow(self, grey: np.ndarray, mask: np.ndarray) -> Warp | None:
        previous, points = self._previous, self._points
        self._points = cv2.goodFeaturesToTrack(
            grey, maxCorners=self.max_points, qualityLevel=0.01, minDistance=8, blockSize=3, mask=mask
        )
        if previous is None or points is None or previous.shape != grey.shape:
            return None
        # None: OpenCV allocates the output points (its stubs do not say that it may).
        moved, status, _ = cv2.calcOpticalFlowPyrLK(  # type: ignore[call-overload]
            previous, grey, points, None, winSize=(15, 15), maxLevel=3
        )
        found = status.ravel() == 1
        return self._fit(points[found].reshape(-1, 2), moved[found].reshape(-1, 2))

    def _orb(self, grey: np.ndarray, mask: np.ndarray) -> Warp | None:
        assert self._orb_detector is not None and self._matcher is not None
        keypoints, descriptors = self._orb_detector.detectAndCompute(grey, mask)
        before, self._features = self._features, (keypoints, descriptors)
        if (
            before is None
            or before[1] is None
            or descriptors is None
            or len(before[1]) < 2
            or len(descriptors) < 2
        ):
            return None
        pairs = self._matcher.knnMatch(before[1], descriptors, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < _ORB_RATIO * p[1].distance]
        if not good:
            return None
        previous = np.array([before[0][m.queryIdx].pt for m in good], np.float32)
        current = np.array([keypoints[m.trainIdx].pt for m in good], np.float32)
        return self._fit(previous, current)

    def _ecc(self, grey: np.ndarray, mask: np.ndarray) -> Warp | None:
        """ECC coarse to fine: each pyramid level (halved `_ECC_LEVELS` times) starts from the
        coarser level's warp, so that shifts of many pixels (a fast pan) converge too."""
        previous = self._previous
        if previous is None or previous.shape != grey.shape:
            return None
        pyramid = [(previous, grey, mask)]
        for _ in range(_ECC_LEVELS):
            before, now, region = pyramid[-1]
            if min(now.shape) < 32:
                break
            smaller = cv2.pyrDown(now)
            size = (smaller.shape[1], smaller.shape[0])
            pyramid.append(
                (cv2.pyrDown(before), smaller, cv2.resize(region, size, interpolation=cv2.INTER_NEAREST))
            )
        warp: np.ndarray = np.eye(2, 3, dtype=np.float32)
        for level, (before, now, region) in enumerate(reversed(pyramid)):
            if level:
                warp[:, 2] *= 2
            try:
                _, warp = cv2.findTransformECC(
                    before, now, warp, cv2.MOTION_EUCLIDEAN, _ECC_CRITERIA, region, 1
                )
            except cv2.error:  # no convergence, or a flat image
                return None
        return np.asarray(warp, np.float64)


def build_camera_motion(method: str) -> CameraMotion | None:
    """The estimator of a `cmc` setting (`cstrack.config.CMC_METHODS`), None for none."""
    return None if method == "none" else CameraMotion(method)

"""Track people found by a detector of your own: OpenCV's HOG people detector finds the boxes,
cstrack's network reads each one's appearance and the JDE cascade associates them.

    python examples/hog_people.py ../shared/data/PETS09-S2L1 --frames 8

Any detector fits the same way: give `Tracker.update` the frame and an (N, 5) array of x1, y1,
x2, y2, score (a 6th column: the class); each track it returns names the row it matched,
`detection_index` (-1: found by OMC's re-check, not by your detector).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from cstrack import Tracker
from cstrack.tracking import Track

#: HOG's window is 64 x 128 pixels: people smaller than that (most of PETS 2009) are found in the
#: frame enlarged this many times.
UPSCALE = 2.0


def hog_people(hog: cv2.HOGDescriptor, frame_bgr: np.ndarray) -> np.ndarray:
    """(N, 5) x1, y1, x2, y2, score of the people HOG finds; the score is its SVM margin."""
    enlarged = cv2.resize(frame_bgr, None, fx=UPSCALE, fy=UPSCALE)
    rects, margins = hog.detectMultiScale(enlarged, winStride=(8, 8), padding=(8, 8), scale=1.05)
    xywh = np.asarray(rects, dtype=np.float64).reshape(-1, 4) / UPSCALE
    return np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:], np.ravel(margins)])


def track_people(images: list[Path]) -> Iterator[tuple[np.ndarray, list[Track]]]:
    """Each image's HOG detections and the tracks after it."""
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    tracker = Tracker(frame_rate=7)  # the bundled model; PETS 2009 runs at 7 frames per second
    for image in images:
        frame = cv2.imread(str(image))
        detections = hog_people(hog, frame)
        yield detections, tracker.update(frame, detections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sequence", type=Path, help="a MOTChallenge sequence folder (its img1/ is read)")
    parser.add_argument("--frames", type=int, default=8, help="how many frames to track (default: 8)")
    args = parser.parse_args(argv)
    images = sorted((args.sequence / "img1").glob("*.jpg"))[: args.frames]
    for number, (detections, tracks) in enumerate(track_people(images), start=1):
        matched = ", ".join(f"{t.track_id}<-{t.detection_index}" for t in tracks)
        print(f"frame {number}: {len(detections)} people found; track<-detection: {matched}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

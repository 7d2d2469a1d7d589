"""Long re-identification: people who leave the view and come back 10-60 s later get their old
identity back by appearance alone, strangers are not merged, and the memory stays bounded.

People are simulated at 10 fps with an embedding per identity plus noise per detection, as a
one-shot tracker's embeddings of the rendered people (distinct clothing colours) behave; the
identities are drawn around a shared direction, so different people are only 0.3-0.6 apart in
cosine distance, not orthogonal.
"""

from __future__ import annotations

import numpy as np

from cstrack.config import AssociationConfig
from cstrack.tracking import DetectionResult, JDETracker

FPS = 10
DIM = 32


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def visits(people: int, returns: int, seed: int) -> list[tuple[int, int, int, float]]:
    """(person, first frame, last frame, place) of every stay in view: each person comes, walks
    for 3-6 s, leaves for 10-60 s, and comes back `returns` times, elsewhere in the view."""
    rng = np.random.default_rng(seed)
    stays = []
    for person in range(people):
        start = int(rng.integers(0, 20 * FPS))
        for _ in range(returns + 1):
            length = int(rng.integers(3 * FPS, 6 * FPS))
            stays.append((person, start, start + length, float(rng.uniform(100, 900))))
            start += length + int(rng.integers(10 * FPS, 60 * FPS))
    return stays


def frames_of(
    stays: list[tuple[int, int, int, float]], people: int, seed: int
) -> list[tuple[np.ndarray, ...]]:
    """Per frame: boxes (N, 4), scores, embeddings (N, DIM), and who each detection is."""
    rng = np.random.default_rng(seed + 1)
    identity = unit(unit(rng.normal(size=DIM)) + unit(rng.normal(size=(people, DIM))))
    total = max(last for _, _, last, _ in stays) + 1
    rows: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(total)]
    for person, first, last, place in stays:
        row = 100 + 7 * place % 800
        for frame in range(first, last + 1):
            x = place + 300 * (frame - first) / (last - first)  # 300 px from where the stay starts
            rows[frame].append((person, np.array([x, row, x + 60, row + 150])))
    frames = []
    for present in rows:
        who = np.array([person for person, _ in present], dtype=int)
        boxes = np.array([box for _, box in present]).reshape(-1, 4)
        embeddings = unit(identity[who] + rng.normal(0, 0.12 / np.sqrt(DIM), (len(who), DIM)))
        frames.append((boxes, np.full(len(who), 0.9), embeddings.astype(np.float32), who))
    return frames


def returns_kept(
    tracker: JDETracker, frames: list[tuple[np.ndarray, ...]], stays: list
) -> tuple[int, int, int]:
    """(returns whose first confirmed id was the person's earlier id, false merges: returns given
    someone else's earlier id, returns in all)."""
    ids_of: dict[int, set[int]] = {}
    first_id: dict[tuple[int, int], int] = {}
    for frame, (boxes, scores, embeddings, who) in enumerate(frames):
        for track in tracker.update(DetectionResult(boxes, scores, embeddings)):
            person = int(
                who[
                    np.argmin(
                        np.abs(boxes[:, 0] - track.box_xyxy[0]) + np.abs(boxes[:, 1] - track.box_xyxy[1])
                    )
                ]
            )
            stay = next(
                index
                for index, (p, first, last, _) in enumerate(stays)
                if p == person and first <= frame <= last
            )
            first_id.setdefault((person, stay), track.track_id)
    kept = merged = total = 0
    for (person, _), track_id in sorted(first_id.items(), key=lambda item: stays[item[0][1]][1]):
        earlier = ids_of.setdefault(person, set())
        if earlier:
            total += 1
            kept += track_id in earlier
            merged += any(track_id in ids for other, ids in ids_of.items() if other != person)
        earlier.add(track_id)
    return kept, merged, total


def test_returning_people_get_their_identity_back() -> None:
    people, stays = 25, visits(25, 4, seed=0)
    frames = frames_of(stays, people, seed=0)
    kept, merged, total = returns_kept(
        JDETracker(AssociationConfig(reid_seconds=90), frame_rate=FPS), frames, stays
    )
    assert total == 100
    assert kept >= 80
    assert merged <= 1
    kept_without, _, _ = returns_kept(
        JDETracker(AssociationConfig(reid_seconds=0), frame_rate=FPS), frames, stays
    )
    assert kept_without == 0


def test_memory_is_bounded_and_forgets() -> None:
    people, stays = 25, visits(25, 4, seed=1)
    frames = frames_of(stays, people, seed=1)
    tracker = JDETracker(AssociationConfig(reid_seconds=90, reid_capacity=3), frame_rate=FPS)
    most = 0
    for boxes, scores, embeddings, _ in frames:
        tracker.update(DetectionResult(boxes, scores, embeddings))
        most = max(most, tracker.remembered)
    assert most == 3
    short = JDETracker(
        AssociationConfig(reid_seconds=5), frame_rate=FPS
    )  # absences are 10 s or longer: all forgotten
    kept, _, total = returns_kept(short, frames, stays)
    assert (kept, total) == (0, 100)
    tracker.reset()
    assert tracker.remembered == 0

"""cstrack: the CSTrack and OMC one-shot multi-object trackers.

    from cstrack import Tracker, track, track_many
    tracker = Tracker()                          # the bundled model, or a name or weights file
    tracks = tracker.update(frame_bgr)           # one BGR frame in, its tracks out
    runs = track("video.mp4", tracker, output="runs/track", save_video=True)  # a source to files
    batch = track_many(["videos/"], output="runs/videos", workers=4)  # many sources, in parallel

`Tracker`, `track` and `track_many` import PyTorch on first use; `cstrack.tracking` (the
association alone, see its docstring for which tracker does what) and `cstrack.evaluation` work
without it.
"""

from typing import Any

from cstrack.errors import InputError

__version__ = "0.1.0"

__all__ = ["InputError", "Tracker", "__version__", "track", "track_many"]


def __getattr__(name: str) -> Any:
    if name == "Tracker":
        from cstrack.pipeline import Tracker

        return Tracker
    if name == "track":
        from cstrack.pipeline import track

        return track
    if name == "track_many":
        from cstrack.pipeline.batch import track_many

        return track_many
    raise AttributeError(f"module 'cstrack' has no attribute {name!r}")

"""cstrack: the CSTrack and OMC one-shot multi-object trackers."""

from cstrack.errors import InputError

__version__ = "0.1.0"

__all__ = ["InputError", "__version__"]

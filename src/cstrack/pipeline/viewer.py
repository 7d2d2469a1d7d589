"""A window showing the rendered tracks while tracking (`cstrack track --show`); q or Esc stops.

`track(..., viewer=Viewer())` shows every tracked frame as it is drawn for the video; when
`show` returns False (q, Q or Esc pressed) the run stops there and writes complete outputs of
the frames tracked so far. The window calls go through `gui` (OpenCV by default), so tests give
a fake one; anything with `show(image) -> bool` and `close()` (`FrameViewer`) may be passed.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Protocol

import cv2
import numpy as np

from cstrack.errors import InputError

QUIT_KEYS = frozenset({ord("q"), ord("Q"), 27})  # 27: Esc


class FrameViewer(Protocol):
    """What `track` shows frames on: `show` returns False when the user asks to stop."""

    def show(self, image: np.ndarray) -> bool: ...

    def close(self) -> None: ...


def check_display() -> None:
    """Refuse a window where OpenCV's Qt build would abort the process: Linux without an X display.

    `QT_QPA_PLATFORM` set by the user is trusted (another Qt platform plugin may be installed).
    """
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    ):
        raise InputError(None, "--show needs a display, and DISPLAY is not set (no X server here)")


class Viewer:
    """An OpenCV window titled `title`; `show` draws a frame and polls the keyboard for `wait_ms`."""

    def __init__(self, title: str = "cstrack", wait_ms: int = 1, gui: Any = None):
        if gui is None:
            check_display()
        self.title = title
        self.wait_ms = wait_ms
        self.gui = cv2 if gui is None else gui
        self._shown = False

    def show(self, image: np.ndarray) -> bool:
        """Show `image`; False when q, Q or Esc was pressed (the run should stop)."""
        try:
            self.gui.imshow(self.title, image)
        except cv2.error as error:
            raise InputError(None, f"--show cannot open a window: {error.err or error}") from None
        self._shown = True
        key = self.gui.waitKey(self.wait_ms)
        return key < 0 or (key & 0xFF) not in QUIT_KEYS

    def close(self) -> None:
        """Close the window (if it was opened); the viewer may show frames again afterwards."""
        if self._shown:
            self.gui.destroyWindow(self.title)
            self.gui.waitKey(1)  # lets the GUI thread process the close
            self._shown = False

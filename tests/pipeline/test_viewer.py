"""The `--show` window: q, Q or Esc stops; no display is a one-line refusal, not an abort."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cstrack.errors import InputError
from cstrack.pipeline import viewer as viewer_module
from cstrack.pipeline.viewer import Viewer, check_display


class FakeGui:
    """OpenCV's window calls, recorded; `waitKey` answers the keys given, then -1 (no key)."""

    error = RuntimeError

    def __init__(self, *keys: int):
        self.keys, self.calls = list(keys), []

    def imshow(self, title: str, image: np.ndarray) -> None:
        self.calls.append(("imshow", title, image.shape))

    def waitKey(self, delay: int) -> int:  # noqa: N802 - OpenCV's name
        self.calls.append(("waitKey", delay))
        return self.keys.pop(0) if self.keys else -1

    def destroyWindow(self, title: str) -> None:  # noqa: N802
        self.calls.append(("destroyWindow", title))


@pytest.mark.parametrize("key", [ord("q"), ord("Q"), 27, 0x100000 | ord("q")])
def test_quit_keys_stop(key: int):
    gui = FakeGui(-1, ord("x"), key)
    window = Viewer("tracks", gui=gui)
    image = np.zeros((48, 64, 3), np.uint8)
    assert [window.show(image) for _ in range(3)] == [True, True, False]
    assert gui.calls[:2] == [("imshow", "tracks", (48, 64, 3)), ("waitKey", 1)]
    window.close()
    window.close()  # once only
    assert gui.calls[-2:] == [("destroyWindow", "tracks"), ("waitKey", 1)]
    assert sum(call[0] == "destroyWindow" for call in gui.calls) == 1


def test_closing_a_window_never_shown_does_nothing():
    gui = FakeGui()
    Viewer(gui=gui).close()
    assert gui.calls == []


def test_no_display_is_refused_before_a_window_is_made(monkeypatch):
    monkeypatch.setattr(viewer_module, "sys", SimpleNamespace(platform="linux"))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    with pytest.raises(InputError, match="--show needs a display, and DISPLAY is not set"):
        Viewer()
    monkeypatch.setenv("DISPLAY", ":0")
    check_display()

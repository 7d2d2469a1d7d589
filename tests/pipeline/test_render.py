"""Rendering: the speed overlay says it is processing speed, and drawings grow with the frame."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from cstrack.pipeline.render import Style, TrackRenderer, speed_label


def test_the_overlay_names_processing_speed_not_a_frame_rate():
    assert speed_label(3.04, 7) == "processing 3.0 frames/s   7 tracks"
    assert "FPS" not in speed_label(3.0, 1)


def drawn_pixels(width: int, height: int) -> int:
    """Pixels the overlay and one box's label change on a black frame of that size."""
    frame = np.zeros((height, width, 3), np.uint8)
    box = np.array([0.4 * width, 0.4 * height, 0.6 * width, 0.8 * height])
    track = SimpleNamespace(track_id=3, box_xyxy=box, cls=0)
    return int(TrackRenderer(trail_length=0).draw(frame, [track], fps=3.0).any(axis=2).sum())


def test_lines_and_text_scale_with_the_frame():
    small, large = Style.for_frame(np.zeros((360, 640, 3))), Style.for_frame(np.zeros((2160, 3840, 3)))
    assert (small.thickness, large.thickness) == (1, 6)
    assert large.font_scale == 6 * small.font_scale and large.margin == 6 * small.margin
    # Six times the side: up to 36 times the drawn area (less: thick strokes of small text merge);
    # text of a fixed size would keep its area and a fixed line width grow it 6 times.
    assert 12 < drawn_pixels(3840, 2160) / drawn_pixels(640, 360) <= 36

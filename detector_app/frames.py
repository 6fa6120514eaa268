"""Frames as the app passes them around (conversion of decoded pictures: :mod:`runtime.images`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from runtime.images import ImageFormatError, to_bgr8

__all__ = ["Frame", "ImageFormatError", "to_bgr8"]


@dataclass
class Frame:
    """One frame from a source.

    ``image``: (H, W, 3) BGR uint8. ``index``: 0-based position in the source (files) or a
    running count (live sources). ``time_s``: media time for files, seconds since opening for
    live sources. ``captured_at``: ``time.perf_counter()`` when it was read, so latency can be
    measured end to end. ``label``: what to call it in messages (a file name, or "frame 12").
    """

    index: int
    image: np.ndarray
    time_s: float
    captured_at: float
    label: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.label:
            self.label = f"frame {self.index}"

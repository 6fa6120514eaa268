"""Drawing detections on frames (OpenCV, Qt-free).

Boxes get a stable colour per class name, a label with the class and score on a filled
background whose text colour is chosen for contrast (readable on any picture), and line
widths scaled with the frame so a 4K frame and a 320x240 one look alike.
"""

from __future__ import annotations

import colorsys
import hashlib
from functools import lru_cache

import cv2
import numpy as np

from models import Detections

FONT = cv2.FONT_HERSHEY_SIMPLEX


@lru_cache(maxsize=1024)
def class_color(name: str) -> tuple[int, int, int]:
    """A stable, saturated BGR colour for a class name (same name, same colour, every run)."""
    digest = hashlib.md5(name.encode("utf-8")).digest()
    hue = digest[0] / 255.0
    sat = 0.65 + 0.35 * (digest[1] / 255.0)
    val = 0.75 + 0.25 * (digest[2] / 255.0)
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return int(b * 255), int(g * 255), int(r * 255)


def text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with a BGR background (ITU-R BT.601 luma)."""
    b, g, r = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def line_width(image_shape: tuple[int, ...]) -> int:
    """Box line width in pixels: 2 at 640x480, scaled with the shorter side, at least 1."""
    return max(1, int(round(min(image_shape[0], image_shape[1]) / 240)))


def draw_detections(
    image: np.ndarray,
    detections: Detections,
    copy: bool = True,
    show_scores: bool = True,
) -> np.ndarray:
    """Draw boxes and labels on a BGR uint8 image; returns the drawn image.

    Boxes are in the image's pixels (x1, y1, x2, y2), as :class:`Detections` gives them.
    """
    out = image.copy() if copy else image
    if len(detections) == 0:
        return out
    h, w = out.shape[:2]
    thickness = line_width(out.shape)
    font_scale = max(0.35, thickness * 0.3)
    font_thickness = max(1, thickness // 2)
    for box, score, cid in zip(detections.boxes, detections.scores, detections.class_ids):
        name = detections.class_names[int(cid)]
        color = class_color(name)
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2, w - 1))
        y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2, h - 1))
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        label = f"{name} {score:.2f}" if show_scores else name
        (tw, th), baseline = cv2.getTextSize(label, FONT, font_scale, font_thickness)
        pad = max(1, thickness)
        # Label above the box, or inside its top edge when there is no room above.
        top = y1 - th - baseline - 2 * pad
        if top < 0:
            top = y1
        left = min(x1, max(0, w - tw - 2 * pad))
        bottom = top + th + baseline + 2 * pad
        cv2.rectangle(out, (left, top), (left + tw + 2 * pad, bottom), color, cv2.FILLED)
        cv2.putText(out, label, (left + pad, bottom - baseline - pad), FONT, font_scale,
                    text_color(color), font_thickness, cv2.LINE_AA)
    return out

"""Mosaic: four training pictures in one (Bochkovskiy et al. 2020, YOLOv4, Sec. 3.3), NumPy/OpenCV.

Why: at a 300x300 input the model sees few small objects and few crowded scenes per step,
and those are what it misses most (persons in group photos; docs/training_runs.md). A mosaic
puts four pictures around a random centre on one canvas, so one training image holds the
objects of four, at about half their size, next to the edges of other scenes. The SSD crop
that follows (:func:`trainer.augment.random_crop`) then zooms into part of the canvas as it
does into a single photo.

The four pictures should come from the same folder: a folder's class mask (the classes it
labels, :func:`trainer.loader.source_masks`) then holds for the whole canvas. The loader
chooses them so.

Boxes are float32 (G, 4) pixel x1, y1, x2, y2 throughout; labels (G,) int, negative for
objects the encoder ignores (``--ignore-difficult``).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .augment import blank_canvas

# An object cut by the canvas or by its quarter's edge keeps its label when at least this
# share of its area is still visible. Less visible, it is ignored (label negated) rather than
# dropped: a sliver of a person is neither a good positive nor background.
MIN_VISIBLE = 0.4
# The centre is drawn from the middle half of the canvas (as YOLOv4's implementations do),
# so every picture keeps at least a quarter of its side.
CENTRE_RANGE = (0.5, 1.5)

Tile = tuple[np.ndarray, np.ndarray, np.ndarray]


def _fit(image: np.ndarray, boxes: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale so the longer side is ``side`` pixels (aspect kept); boxes scaled with it."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    out = cv2.resize(np.ascontiguousarray(image), (nw, nh), interpolation=cv2.INTER_AREA if scale < 1
                     else cv2.INTER_LINEAR)
    return out, boxes * np.array([nw / w, nh / h, nw / w, nh / h], np.float32)


def mosaic(tiles: Sequence[Tile], rng: np.random.Generator, fill: tuple[float, float, float] = (127.5, 127.5, 127.5),
           side: int | None = None) -> Tile:
    """Four (image, boxes, labels) into one (image, boxes, labels) on a canvas of 2*side.

    ``tiles``: exactly four; images (H, W, 3) BGR uint8, boxes float32 (G, 4) pixels. Each
    picture is scaled so its longer side is ``side`` (default: the first picture's longer
    side) and placed in one quarter around a centre drawn from the middle half of the canvas,
    touching the centre with its inner corner (top-left picture's bottom-right corner, and so
    on); what falls outside the canvas is cut off. Returns the (2*side, 2*side, 3) canvas,
    its boxes clipped to each picture's visible part, and labels, negated where less than
    :data:`MIN_VISIBLE` of an object is left.
    """
    if len(tiles) != 4:
        raise ValueError(f"mosaic needs exactly 4 pictures, got {len(tiles)}")
    if side is None:
        side = max(tiles[0][0].shape[:2])
    side = int(side)
    canvas = blank_canvas(2 * side, 2 * side, fill)
    cx = int(rng.uniform(*CENTRE_RANGE) * side)
    cy = int(rng.uniform(*CENTRE_RANGE) * side)
    all_boxes, all_labels = [], []
    for quarter, (image, boxes, labels) in enumerate(tiles):
        image, boxes = _fit(image, np.asarray(boxes, np.float32).reshape(-1, 4), side)
        h, w = image.shape[:2]
        # where the picture's top-left corner lands: left of / above the centre for the
        # quarters 0 (top-left), 2 (bottom-left) / 0, 1 (top-right)
        x0 = cx - w if quarter in (0, 2) else cx
        y0 = cy - h if quarter in (0, 1) else cy
        # the visible part, in canvas coordinates
        vx1, vy1 = max(x0, 0), max(y0, 0)
        vx2, vy2 = min(x0 + w, 2 * side), min(y0 + h, 2 * side)
        if vx2 <= vx1 or vy2 <= vy1:
            continue
        canvas[vy1:vy2, vx1:vx2] = image[vy1 - y0:vy2 - y0, vx1 - x0:vx2 - x0]
        if not len(boxes):
            continue
        moved = boxes + np.array([x0, y0, x0, y0], np.float32)
        clipped = moved.copy()
        clipped[:, 0::2] = np.clip(moved[:, 0::2], vx1, vx2)
        clipped[:, 1::2] = np.clip(moved[:, 1::2], vy1, vy2)
        area = np.prod(np.maximum(moved[:, 2:4] - moved[:, 0:2], 0), axis=1)
        visible = np.prod(np.maximum(clipped[:, 2:4] - clipped[:, 0:2], 0), axis=1)
        keep = np.all(clipped[:, 2:4] - clipped[:, 0:2] >= 1.0, axis=1)  # no sub-pixel slivers
        share = np.where(area > 0, visible / np.maximum(area, 1e-6), 0.0)
        labels = np.asarray(labels).astype(np.int32)
        labels = np.where(share < MIN_VISIBLE, -np.abs(labels), labels)
        all_boxes.append(clipped[keep])
        all_labels.append(labels[keep])
    if not all_boxes:
        return canvas, np.zeros((0, 4), np.float32), np.zeros((0,), np.int32)
    return canvas, np.concatenate(all_boxes).astype(np.float32), np.concatenate(all_labels).astype(np.int32)

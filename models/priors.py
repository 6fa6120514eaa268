"""Default boxes ("priors", "anchors") of an SSD spec.

Liu et al. 2016, Sec. 2.2: every cell of every prediction layer carries a fixed set of boxes
centred on the cell, one per aspect ratio plus a second square box of side sqrt(s_k s_{k+1}).
Their order here matches the order of the network's outputs: layers in spec order, cells
row-major (y outer, x inner), then the boxes of a cell in :class:`HeadSpec` order. That is also
the order of Caffe's ``PriorBox`` + ``Concat`` and of ssd_keras.
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import feature_map_sizes
from .spec import HeadSpec, ModelSpec


def cell_box_sizes(head: HeadSpec, input_size: tuple[int, int]) -> np.ndarray:
    """Normalised (width, height) of the boxes of one cell, shape (boxes_per_cell, 2).

    Sides are fractions of the shorter input side, so boxes stay square on a non-square input.
    """
    h, w = input_size
    short = min(h, w)
    sizes: list[tuple[float, float]] = []
    for ratio in head.aspect_ratios:
        side = head.min_size * short
        sizes.append((side * math.sqrt(ratio) / w, side / math.sqrt(ratio) / h))
        if ratio == 1.0 and head.max_size is not None:
            side2 = math.sqrt(head.min_size * head.max_size) * short
            sizes.append((side2 / w, side2 / h))
    return np.asarray(sizes, dtype=np.float64)


def head_priors(head: HeadSpec, fmap: tuple[int, int], input_size: tuple[int, int]) -> np.ndarray:
    """Default boxes of one prediction layer, (fh * fw * boxes_per_cell, 4) as cx, cy, w, h."""
    fh, fw = fmap
    h, w = input_size
    step_y = head.step if head.step is not None else h / fh
    step_x = head.step if head.step is not None else w / fw
    cy = (np.arange(fh, dtype=np.float64) + head.offset) * step_y / h
    cx = (np.arange(fw, dtype=np.float64) + head.offset) * step_x / w
    sizes = cell_box_sizes(head, input_size)  # (k, 2)
    k = len(sizes)
    grid_y, grid_x = np.meshgrid(cy, cx, indexing="ij")  # (fh, fw), y outer
    out = np.empty((fh, fw, k, 4), dtype=np.float64)
    out[..., 0] = grid_x[..., None]
    out[..., 1] = grid_y[..., None]
    out[..., 2] = sizes[:, 0]
    out[..., 3] = sizes[:, 1]
    return out.reshape(-1, 4)


def default_boxes(spec: ModelSpec) -> np.ndarray:
    """All default boxes of a spec: float32 array (num_boxes, 4) of normalised cx, cy, w, h.

    Not clipped to the image (the seed and Caffe layouts both set ``clip: false``).
    """
    fmaps = feature_map_sizes(spec)
    parts = [head_priors(head, fmaps[head.source], spec.input_size) for head in spec.heads]
    return np.concatenate(parts, axis=0).astype(np.float32)


def num_default_boxes(spec: ModelSpec) -> int:
    """Total box count, without generating them."""
    fmaps = feature_map_sizes(spec)
    return sum(fmaps[h.source][0] * fmaps[h.source][1] * h.boxes_per_cell for h in spec.heads)

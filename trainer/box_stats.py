"""How the labelled boxes' sizes compare with a model's default boxes.

SSD can only learn an object well if some default box overlaps it: a ground-truth box is a
positive for every default box with IoU >= 0.5, and always for its single best one (Liu et al.
2016, Sec. 2.2 "Matching strategy"). Two figures say whether a layout suits the data:

- a histogram of box scales (sqrt of the box's area as a fraction of the image, i.e. after
  the resize to the network input) in bins centred on each prediction layer's scale;
- the number of boxes whose best default box has IoU < 0.5: these train through one default
  box only and are the ones a detector with this layout tends to miss.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

# A square box of side a centred on a square default box of side s has IoU (a/s)^2 when
# a < s: below s * sqrt(0.5) no default box of that layer reaches IoU 0.5.
_MIN_MATCHABLE = math.sqrt(0.5)


def layer_scales(spec) -> list[tuple[str, float]]:
    """(feature map, scale) of each prediction layer: sqrt(area) of its ratio-1 default box,
    normalised by the input (so 0.1 is a box a tenth of the image's side)."""
    from models.priors import cell_box_sizes

    h, w = spec.input_size
    out = []
    for head in spec.heads:
        bw, bh = cell_box_sizes(head, (h, w))[0]
        out.append((head.source, float(math.sqrt(bw * bh))))
    return out


def normalised_boxes(samples: Sequence[Any]) -> np.ndarray:
    """Every box of ``samples`` as float32 (M, 4) corners normalised by its image's size."""
    parts = [s.boxes / np.array([s.image_hw[1], s.image_hw[0]] * 2, np.float32) for s in samples if len(s.boxes)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 4), np.float32)


def best_prior_iou(boxes: np.ndarray, priors_corners: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Best IoU of each normalised box (M, 4) with any default box (N, 4), float32 (M,)."""
    from models.box_coder import pairwise_iou

    out = np.zeros((len(boxes),), np.float32)
    for start in range(0, len(boxes), chunk):
        out[start:start + chunk] = pairwise_iou(boxes[start:start + chunk], priors_corners).max(axis=1)
    return out


def box_size_report(samples: Sequence[Any], spec) -> dict[str, Any]:
    """The histogram and the IoU figure for ``samples`` against ``spec`` (JSON-ready)."""
    from models.box_coder import centers_to_corners
    from models.priors import default_boxes

    boxes = normalised_boxes(samples)
    scales = layer_scales(spec)
    centres = [s for _, s in scales]
    # bin edges: below the smallest matchable size, then geometric midpoints between layers
    edges = [0.0, centres[0] * _MIN_MATCHABLE]
    edges += [math.sqrt(a * b) for a, b in zip(centres[:-1], centres[1:])] + [math.inf]
    wh = np.clip(boxes[:, 2:4] - boxes[:, 0:2], 0, None)
    size = np.sqrt(wh[:, 0] * wh[:, 1])
    bin_of = np.searchsorted(np.asarray(edges[1:-1]), size, side="right")
    counts = np.bincount(bin_of, minlength=len(edges) - 1)
    bins = [{"label": "smaller than any default box", "layer": None, "low": 0.0, "high": round(edges[1], 4),
             "count": int(counts[0])}]
    for k, (source, scale) in enumerate(scales):
        high = edges[k + 2]
        bins.append({"label": f"{source} (~{scale:.2f})", "layer": source, "low": round(edges[k + 1], 4),
                     "high": None if math.isinf(high) else round(high, 4), "count": int(counts[k + 1])})
    priors = centers_to_corners(default_boxes(spec))
    best = best_prior_iou(boxes, priors)
    return {
        "boxes": int(len(boxes)),
        "input_size": list(spec.input_size),
        "bins": bins,
        "best_default_box_iou_below_0.5": int((best < 0.5).sum()),
        "best_default_box_iou_median": round(float(np.median(best)), 4) if len(best) else None,
    }

"""Recall by object size: which objects a detector misses, and which it finds only weakly.

AP folds everything into one number; for a small-object class (people far from the camera,
hard-hat heads) the useful question is *which* objects are lost. SSD's default boxes and
feature strides are laid out at the network's input, so objects are bucketed by their height
**in pixels at the model's input** (the image is resized to the input's height and width
whatever its aspect ratio): a 40 px tall person in a 576-line frame is 21 px tall to a 300x300
model. The edges follow the strides of the lite0 layout: under 15 px no default box fits well,
15-30 px is the stride-8 layer's range, 30-60 the stride-16 layer's, and so on.

Per class and bucket: objects counted for AP (difficult ones are left out, as in AP), those
found at any score the evaluation kept, and those found at ``conf`` or more (the app's default
threshold). "Found" is the VOC matching of :mod:`trainer.voc_eval` (IoU >= 0.5, each object
taken by the highest-scoring detection that matches it), so the figures add up with AP's.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .voc_eval import VOCResult

SIZE_EDGES_PX: tuple[float, ...] = (15.0, 30.0, 60.0, 120.0)
APP_CONFIDENCE = 0.5


def bucket_names(edges: Sequence[float] = SIZE_EDGES_PX) -> list[str]:
    """'<15', '15-30', ..., '120+' for the edges (pixels at the model input)."""
    inner = [f"{lo:g}-{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])]
    return [f"<{edges[0]:g}", *inner, f"{edges[-1]:g}+"]


def recall_by_size(result: VOCResult, input_hw: tuple[int, int], conf: float = APP_CONFIDENCE,
                   edges: Sequence[float] = SIZE_EDGES_PX) -> dict[str, Any]:
    """Per class, per height bucket: ``objects``, ``found`` (any kept score), ``found_at_conf``.

    ``input_hw``: the model's input (height, width); objects' heights are scaled from their
    image's height to the input's. Objects whose image height is unknown are left out. Returns a dict
    ready for JSON: ``{"input_hw", "conf", "buckets": [names], "per_class": {class: [{...}]}}``
    with one entry per bucket, in order.
    """
    if len(input_hw) != 2 or min(input_hw) <= 0:
        raise ValueError(f"input_hw must be a positive (height, width) in pixels, got {input_hw}")
    names = bucket_names(edges)
    per_class: dict[str, list[dict[str, int]]] = {}
    for c in result.classes:
        heights_px = c.heights * input_hw[0]
        known = np.isfinite(heights_px)
        bucket = np.searchsorted(np.asarray(edges, float), heights_px[known], side="right")
        scores = c.found_scores[known]
        found = np.isfinite(scores)
        strong = found & (np.nan_to_num(scores, nan=-1.0) >= conf)
        per_class[c.name] = [{"objects": int(np.sum(bucket == b)), "found": int(np.sum(found[bucket == b])),
                              "found_at_conf": int(np.sum(strong[bucket == b]))} for b in range(len(names))]
    return {"input_hw": [int(input_hw[0]), int(input_hw[1])], "conf": float(conf), "buckets": names, "per_class": per_class}


def format_recall_by_size(table: dict[str, Any]) -> str:
    """The table as text: one row per class with objects, one cell per bucket as
    ``at-conf/found/objects`` ('-' for an empty bucket)."""
    rows = {name: cells for name, cells in table["per_class"].items() if any(b["objects"] for b in cells)}
    if not rows:
        return "recall by object height: no object with a known image size"
    width = max([len(n) for n in rows] + [5])
    cell = max(10, *(len(b) for b in table["buckets"]))
    h, w = table["input_hw"]
    lines = [f"objects found by height at the {w}x{h} input (found at confidence >= {table['conf']:g} / "
             "found at any kept score / objects):",
             f"{'class':<{width}}  " + "  ".join(f"{b:>{cell}}" for b in table["buckets"])]
    for name, cells in rows.items():
        text = [f"{b['found_at_conf']}/{b['found']}/{b['objects']}" if b["objects"] else "-" for b in cells]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{t:>{cell}}" for t in text))
    return "\n".join(lines)

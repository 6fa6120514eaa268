"""Turning the objects of one annotation into clean boxes for one decoded image.

Rules, each reported as an :class:`~trainer.issues.Issue` naming the annotation file:

- ``<size>`` that disagrees with the decoded image: when it is the same picture at another
  scale (both axes scale alike within 2 %), the boxes are rescaled to the image, otherwise they
  are kept as written and clipped;
- objects with no name or no readable coordinates are dropped;
- objects of classes outside ``known`` are dropped (when a class list is given);
- boxes with xmax <= xmin or ymax <= ymin, or less than one pixel wide or high once clipped
  (e.g. entirely outside the image), are dropped;
- boxes reaching outside the image are clipped to it.

Coordinates are continuous pixel coordinates as labelImg writes them: the box spans
[xmin, xmax] x [ymin, ymax] of a (0, 0)-(width, height) image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .issues import Issue
from .voc_xml import Annotation, RawObject

MIN_SIDE_PX = 1.0
SCALE_AGREEMENT = 0.02


@dataclass(frozen=True)
class CleanObjects:
    """Clean boxes of one image: ``boxes`` float32 (G, 4) pixel x1, y1, x2, y2 inside the
    image; ``names`` (G,) class names; ``difficult`` bool (G,)."""

    boxes: np.ndarray
    names: tuple[str, ...]
    difficult: np.ndarray

    @classmethod
    def empty(cls) -> "CleanObjects":
        return cls(np.zeros((0, 4), np.float32), (), np.zeros((0,), bool))


def size_scale(annotation: Annotation, image_hw: tuple[int, int]) -> tuple[tuple[float, float], Issue | None]:
    """Factors (sx, sy) from the annotation's coordinates to the image's, and the issue if
    ``<size>`` disagrees with the image."""
    h, w = image_hw
    if annotation.size is None or annotation.size == (w, h):
        return (1.0, 1.0), None
    sw, sh = annotation.size
    sx, sy = w / sw, h / sh
    detail = {"size_in_xml": [sw, sh], "image_size": [w, h]}
    if abs(sx / sy - 1.0) <= SCALE_AGREEMENT:
        return (sx, sy), Issue(
            "size_mismatch", annotation.path,
            f"<size> says {sw}x{sh} but the image is {w}x{h}; the same picture at another scale, "
            f"so its boxes were rescaled by {sx:.3f}", detail,
        )
    swapped = " (width and height swapped: a rotated photo?)" if (sw, sh) == (h, w) else ""
    return (1.0, 1.0), Issue(
        "size_mismatch", annotation.path,
        f"<size> says {sw}x{sh} but the image is {w}x{h}{swapped}; boxes kept as written and "
        f"clipped to the image", detail,
    )


def _describe(obj: RawObject) -> str:
    return f"object {obj.index} {obj.name!r}"


def clean_objects(
    annotation: Annotation,
    image_hw: tuple[int, int],
    known: frozenset[str] | None = None,
) -> tuple[CleanObjects, list[Issue]]:
    """Apply the module's rules to ``annotation`` for an image of (height, width) ``image_hw``."""
    h, w = image_hw
    (sx, sy), size_issue = size_scale(annotation, image_hw)
    issues: list[Issue] = [size_issue] if size_issue else []
    boxes, names, difficult = [], [], []
    path = annotation.path
    for obj in annotation.objects:
        if not obj.name:
            issues.append(Issue("bad_object", path, f"object {obj.index} has no <name>; dropped"))
            continue
        if obj.box is None:
            issues.append(Issue("bad_object", path, f"{_describe(obj)} {obj.problem}; dropped"))
            continue
        if obj.name.lower() == "background":
            issues.append(Issue("unknown_class", path, f"{_describe(obj)}: 'background' is reserved "
                                "for the model's own no-object class; dropped", {"class": obj.name}))
            continue
        if known is not None and obj.name not in known:
            issues.append(Issue("unknown_class", path, f"{_describe(obj)} is not one of the known classes "
                                f"{sorted(known)}; dropped", {"class": obj.name}))
            continue
        x1, y1, x2, y2 = obj.box
        written = [x1, y1, x2, y2]
        if x2 <= x1 or y2 <= y1:
            issues.append(Issue("degenerate_box", path, f"{_describe(obj)} box {written} has "
                                "xmax <= xmin or ymax <= ymin; dropped", {"box": written}))
            continue
        x1, x2, y1, y2 = x1 * sx, x2 * sx, y1 * sy, y2 * sy
        cx1, cy1 = min(max(x1, 0.0), w), min(max(y1, 0.0), h)
        cx2, cy2 = min(max(x2, 0.0), w), min(max(y2, 0.0), h)
        clipped = [round(v, 2) for v in (cx1, cy1, cx2, cy2)]
        if cx2 - cx1 < MIN_SIDE_PX or cy2 - cy1 < MIN_SIDE_PX:
            issues.append(Issue("degenerate_box", path, f"{_describe(obj)} box {written} is less than "
                                f"{MIN_SIDE_PX:g} pixel wide or high inside the {w}x{h} image; dropped",
                                {"box": written}))
            continue
        if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
            issues.append(Issue("box_outside", path, f"{_describe(obj)} box {written} reaches outside "
                                f"the {w}x{h} image; clipped to {clipped}", {"box": written, "clipped": clipped}))
        boxes.append((cx1, cy1, cx2, cy2))
        names.append(obj.name)
        difficult.append(obj.difficult)
    if not boxes:
        return CleanObjects.empty(), issues
    return CleanObjects(np.asarray(boxes, np.float32), tuple(names), np.asarray(difficult, bool)), issues

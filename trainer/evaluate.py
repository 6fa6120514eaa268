"""Evaluating a detector on labelled samples: ground truth, detections, VOC AP, and a table."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from models.detections import Detections

from .scan import Sample
from .voc_eval import ImageDetections, ImageTruth, VOCResult, evaluate_voc


def truth_of(sample: Sample, class_names: Sequence[str]) -> ImageTruth:
    """The sample's objects of ``class_names`` (others are not part of this evaluation)."""
    index = {n: i for i, n in enumerate(class_names)}
    keep = [i for i, n in enumerate(sample.names) if n in index]
    return ImageTruth(
        boxes=sample.boxes[keep].reshape(-1, 4),
        labels=np.asarray([index[sample.names[i]] for i in keep], np.int64),
        difficult=sample.difficult[keep].astype(bool),
        image_height=int(sample.image_hw[0]),
    )


def detections_of(det: Detections) -> ImageDetections:
    """Model detections in the evaluation's terms (class ids are the model's, 0-based)."""
    return ImageDetections(boxes=det.boxes, scores=det.scores, labels=det.class_ids.astype(np.int64))


def labelled_classes(samples: Sequence[Sample], class_names: Sequence[str],
                     reference: Sequence[Sample] | None = None) -> list[np.ndarray] | None:
    """Per image of ``samples``, the classes its folder labels (bool (C,)), judged on
    ``reference`` (default: ``samples``; pass all of a folder's images when evaluating a
    subset). None when every folder labels the same classes: then every image counts for
    every class, as in plain VOC."""
    by_source: dict[str, set[str]] = {}
    for s in reference if reference is not None else samples:
        by_source.setdefault(s.source, set()).update(s.names)
    if len({frozenset(v) for v in by_source.values()}) <= 1:
        return None
    rows = {src: np.array([n in names for n in class_names]) for src, names in by_source.items()}
    return [rows.get(s.source, np.ones(len(class_names), bool)) for s in samples]


def evaluate_detections(samples: Sequence[Sample], detections: Sequence[Detections], class_names: Sequence[str],
                        labelled: Sequence[np.ndarray] | None = None) -> VOCResult:
    """VOC AP of ``detections[i]`` against ``samples[i]`` for every class of the model.

    ``labelled``: per image, the classes its folder labels (see :func:`labelled_classes`);
    each class is then measured only on the images labelled for it."""
    return evaluate_voc(class_names, [truth_of(s, class_names) for s in samples],
                        [detections_of(d) for d in detections], labelled=labelled)


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:6.2f}"


def format_result(result: VOCResult) -> str:
    """A table: AP per class (all-point and 11-point, in %), objects, detections, then mAP."""
    width = max([len(c.name) for c in result.classes] + [5])
    lines = [f"{'class':<{width}}  {'AP':>6}  {'AP07':>6}  {'objects':>7}  {'dets':>6}  {'TP':>5}  {'FP':>6}"]
    for c in result.classes:
        lines.append(f"{c.name:<{width}}  {_fmt(c.ap)}  {_fmt(c.ap07)}  {c.positives:>7}  {c.detections:>6}  "
                     f"{c.true_positives:>5}  {c.false_positives:>6}")
    lines.append(f"{'mAP':<{width}}  {_fmt(result.map)}  {_fmt(result.map07)}")
    missing = [c.name for c in result.classes if c.ap is None]
    if missing:
        lines.append(f"(no ground truth for {', '.join(missing)}: left out of the mean)")
    lines.append(f"AP at IoU >= {result.iou_threshold:g}; AP: VOC2010+ all-point, AP07: VOC2007 11-point; "
                 "difficult objects ignored")
    return "\n".join(lines)


def result_summary(result: VOCResult) -> dict[str, Any]:
    """Short figures for logs: mAP, mAP07 and AP per class."""
    return {"map": result.map, "map_voc07": result.map07,
            "ap": {c.name: c.ap for c in result.classes}}

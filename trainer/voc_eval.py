"""Pascal VOC detection AP, as the VOC devkit computes it (``VOCevaldet.m``).

Per class: all detections of the class, over all images, are sorted by descending score
(stable: ties keep image order, then detection order). Each is matched to the ground-truth
box of that class in its image with the highest IoU; it is a true positive when that IoU is
>= 0.5 and the box was not matched before, a false positive when the IoU is lower or the box
was already matched (a duplicate). A detection matched to a ``difficult`` box counts as
neither, and ``difficult`` boxes are not counted among the positives. Then

- VOC2007 11-point AP: the mean over recall r in {0, 0.1, ..., 1} of the highest precision
  at recall >= r (0 when recall never reaches r);
- VOC2010+ all-point AP: the area under the precision envelope (precision made monotonically
  decreasing), summed where recall changes.

Deviations from the devkit, deliberate and documented: IoU is computed on continuous pixel
coordinates (no "+1" on widths and heights, which the devkit adds for inclusive integer
pixel indices; boxes here are continuous), and a class with no (non-difficult) ground truth
has AP ``None`` and is left out of the mean instead of producing NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from models.box_coder import pairwise_iou

IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class ImageTruth:
    """Ground truth of one image: ``boxes`` float32 (G, 4) pixel x1, y1, x2, y2; ``labels``
    int (G,) 0-based class index; ``difficult`` bool (G,); ``image_height``: the image's height
    in pixels (0 when unknown), for figures by object size."""

    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    image_height: int = 0


@dataclass(frozen=True)
class ImageDetections:
    """Detections of one image: ``boxes`` float32 (D, 4) pixel corners (same frame as the
    truth), ``scores`` (D,), ``labels`` int (D,) 0-based class index."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class ClassAP:
    """One class's figures. ``recall``/``precision``: the curve after each counted detection
    (difficult matches left out), in score order. ``ap``/``ap07`` None when the class has no
    ground truth. ``found_scores``: per counted (non-difficult) object, the score of the
    detection that found it (NaN: none did), so recall at any confidence is
    ``mean(found_scores >= t)``; ``heights``: those objects' heights as a fraction of their
    image's height (NaN where the image height is unknown)."""

    name: str
    positives: int
    detections: int
    true_positives: int
    false_positives: int
    ap: float | None
    ap07: float | None
    recall: np.ndarray
    precision: np.ndarray
    scores: np.ndarray
    found_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    heights: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def to_dict(self, curve: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "class": self.name, "positives": self.positives, "detections": self.detections,
            "true_positives": self.true_positives, "false_positives": self.false_positives,
            "ap": self.ap, "ap_voc07": self.ap07,
        }
        if curve:
            # the points where recall rises: exactly what the all-point AP integrates
            rises = np.flatnonzero(np.diff(np.concatenate([[0.0], self.recall])) > 0)
            data["pr_curve"] = {
                "recall": [round(float(x), 6) for x in self.recall[rises]],
                "precision": [round(float(x), 6) for x in self.precision[rises]],
                "score": [round(float(x), 6) for x in self.scores[rises]],
            }
        return data


def ap_all_points(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC2010+ AP: area under the monotone precision envelope."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def ap_11_points(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC2007 AP: mean of the best precision at recall >= 0, 0.1, ..., 1."""
    total = 0.0
    for t in np.linspace(0.0, 1.0, 11):
        above = precision[recall >= t - 1e-12]
        total += float(above.max()) if above.size else 0.0
    return total / 11.0


def class_ap(
    name: str,
    class_id: int,
    truths: Sequence[ImageTruth],
    detections: Sequence[ImageDetections],
    iou_threshold: float = IOU_THRESHOLD,
) -> ClassAP:
    """AP of one class over a set of images (``truths[i]`` and ``detections[i]`` are image i)."""
    gt_boxes, gt_difficult, positives, heights = [], [], 0, []
    for t in truths:
        sel = t.labels == class_id
        gt_boxes.append(t.boxes[sel].reshape(-1, 4))
        gt_difficult.append(t.difficult[sel].astype(bool))
        positives += int((~t.difficult[sel].astype(bool)).sum())
        counted_boxes = gt_boxes[-1][~gt_difficult[-1]]
        heights.append((counted_boxes[:, 3] - counted_boxes[:, 1]) / t.image_height if t.image_height > 0
                       else np.full(len(counted_boxes), np.nan))
    det_image, det_box, det_score = [], [], []
    for i, d in enumerate(detections):
        sel = d.labels == class_id
        det_image.append(np.full(int(sel.sum()), i))
        det_box.append(d.boxes[sel].reshape(-1, 4))
        det_score.append(d.scores[sel])
    images = np.concatenate(det_image) if det_image else np.zeros(0, int)
    boxes = np.concatenate(det_box) if det_box else np.zeros((0, 4), np.float32)
    scores = np.concatenate(det_score).astype(np.float64) if det_score else np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    images, boxes, scores = images[order], boxes[order], scores[order]

    taken = [np.zeros(len(b), bool) for b in gt_boxes]
    found = [np.full(len(b), np.nan) for b in gt_boxes]  # score of the detection that found each object
    outcome = np.zeros(len(scores), np.int8)  # 1 TP, -1 FP, 0 ignored (difficult)
    for k in range(len(scores)):
        gts = gt_boxes[images[k]]
        if len(gts) == 0:
            outcome[k] = -1
            continue
        ious = pairwise_iou(boxes[k:k + 1], gts)[0]
        j = int(np.argmax(ious))
        if ious[j] < iou_threshold:
            outcome[k] = -1
        elif gt_difficult[images[k]][j]:
            outcome[k] = 0
        elif not taken[images[k]][j]:
            taken[images[k]][j] = True
            found[images[k]][j] = scores[k]
            outcome[k] = 1
        else:
            outcome[k] = -1  # a duplicate detection of an object already found
    counted = outcome != 0
    tp = np.cumsum(outcome[counted] == 1)
    fp = np.cumsum(outcome[counted] == -1)
    if positives == 0:
        recall = np.zeros(len(tp))
        precision = np.zeros(len(tp))
        ap = ap07 = None
    else:
        recall = tp / positives
        precision = tp / np.maximum(tp + fp, 1)
        ap, ap07 = ap_all_points(recall, precision), ap_11_points(recall, precision)
    found_scores = (np.concatenate([f[~d] for f, d in zip(found, gt_difficult)]) if found else np.zeros(0))
    return ClassAP(name, positives, int(len(scores)), int(tp[-1]) if len(tp) else 0,
                   int(fp[-1]) if len(fp) else 0, ap, ap07, recall, precision, scores[counted],
                   found_scores, np.concatenate(heights) if heights else np.zeros(0))


@dataclass(frozen=True)
class VOCResult:
    """Per-class results and the means over classes that have ground truth."""

    classes: tuple[ClassAP, ...]
    iou_threshold: float

    @property
    def map(self) -> float | None:
        aps = [c.ap for c in self.classes if c.ap is not None]
        return float(np.mean(aps)) if aps else None

    @property
    def map07(self) -> float | None:
        aps = [c.ap07 for c in self.classes if c.ap07 is not None]
        return float(np.mean(aps)) if aps else None

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        return {
            "iou_threshold": self.iou_threshold,
            "map": self.map,
            "map_voc07": self.map07,
            "classes_in_mean": [c.name for c in self.classes if c.ap is not None],
            "per_class": [c.to_dict(curves) for c in self.classes],
        }


def evaluate_voc(
    class_names: Sequence[str],
    truths: Sequence[ImageTruth],
    detections: Sequence[ImageDetections],
    iou_threshold: float = IOU_THRESHOLD,
    labelled: Sequence[np.ndarray] | None = None,
) -> VOCResult:
    """AP of every class and mAP (VOC2010+ all-point and VOC2007 11-point) over the images.

    ``labelled``: optional bool (C,) per image, the classes its source labels. A class is then
    evaluated only on the images labelled for it: a dog found on a hard-hat photo (a folder that
    never labels dogs) is neither right nor wrong, so it must not count as a false positive.
    """
    if len(truths) != len(detections):
        raise ValueError(f"need one detection set per image: {len(truths)} images, {len(detections)} detection sets")
    if labelled is not None and len(labelled) != len(truths):
        raise ValueError(f"need one 'labelled' row per image: {len(truths)} images, {len(labelled)} rows")
    results = []
    for c, name in enumerate(class_names):
        keep = range(len(truths)) if labelled is None else [i for i in range(len(truths)) if labelled[i][c]]
        results.append(class_ap(name, c, [truths[i] for i in keep], [detections[i] for i in keep], iou_threshold))
    return VOCResult(tuple(results), iou_threshold)

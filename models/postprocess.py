"""From decoded boxes and class probabilities to :class:`Detections`.

The same rule as Caffe SSD's ``DetectionOutput`` (and OpenCV-DNN's): per class, keep scores
above the confidence threshold, keep the ``top_k`` best of that class, run NMS within the
class, then keep the ``max_detections`` best overall. Everything is vectorised over boxes.
One addition, on by default: box voting (:mod:`models.box_voting`) moves each kept box to the
score-weighted mean of the candidates it overlaps; ``vote_iou=None`` gives Caffe's exact rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .box_voting import vote_boxes
from .detections import Detections
from .nms import nms


@dataclass(frozen=True)
class PostprocessConfig:
    """Thresholds of post-processing.

    ``conf_threshold``: minimum class probability (strictly greater, as Caffe).
    ``iou_threshold``: NMS overlap above which the weaker box of a class is dropped.
    ``top_k``: candidates kept per class before NMS. ``max_detections``: cap after NMS.
    ``clip``: clip pixel boxes to the frame.
    ``vote_iou``: box voting threshold (each kept box becomes the score-weighted mean of the
    same-class candidates overlapping it by at least this IoU); None: off, the boxes NMS kept
    as they are (Caffe's ``DetectionOutput`` and OpenCV-DNN's rule).
    """

    conf_threshold: float = 0.5
    iou_threshold: float = 0.45
    top_k: int = 200
    max_detections: int = 100
    clip: bool = True
    vote_iou: float | None = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf_threshold < 1.0:
            raise ValueError(f"conf_threshold must be in [0, 1), got {self.conf_threshold}")
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {self.iou_threshold}")
        if self.top_k < 1 or self.max_detections < 1:
            raise ValueError(
                f"top_k and max_detections must be at least 1, got {self.top_k}, {self.max_detections}"
            )
        if self.vote_iou is not None and not 0.0 < self.vote_iou <= 1.0:
            raise ValueError(f"vote_iou must be in (0, 1] or None (no box voting), got {self.vote_iou}")


def select_detections(
    corners: np.ndarray,
    probs: np.ndarray,
    config: PostprocessConfig,
    class_names: Sequence[str],
    image_size: tuple[int, int],
    class_mask: np.ndarray | None = None,
) -> Detections:
    """Threshold, per-class top-k, per-class NMS (then box voting) and cap, for one image.

    corners: (N, 4) normalised x1, y1, x2, y2; probs: (N, C + 1) with background in column 0;
    image_size: (height, width) of the original frame, to scale boxes to its pixels;
    class_mask: optional bool (C,) of the classes to report.
    """
    probs = np.asarray(probs)
    fg = probs[:, 1:]
    if fg.shape[1] != len(class_names):
        raise ValueError(
            f"the model gives {fg.shape[1]} class scores per box but {len(class_names)} class "
            f"names were given; the model file and its class list disagree"
        )
    corners = np.asarray(corners, dtype=np.float32)
    # A box with a NaN or infinite corner (a broken or diverged model) is no detection: NaN
    # survives clipping and would reach the drawing code and the JSON output.
    finite = np.isfinite(corners).all(axis=1)
    classes = range(fg.shape[1]) if class_mask is None else np.flatnonzero(np.asarray(class_mask, dtype=bool))
    kept_boxes, kept_cls, kept_scores = [], [], []
    for c in classes:  # a loop over classes; every step inside is vectorised over boxes
        column = fg[:, c]
        idx = np.flatnonzero((column > config.conf_threshold) & finite)
        if idx.size == 0:
            continue
        if idx.size > config.top_k:  # top-k pre-filter: NMS cost grows with the square of the count
            idx = idx[np.argpartition(-column[idx], config.top_k - 1)[: config.top_k]]
        kept = idx[nms(corners[idx], column[idx], config.iou_threshold)]
        boxes = corners[kept]
        if config.vote_iou is not None:  # the top-k candidates vote on where each kept box lies
            boxes = vote_boxes(boxes, corners[idx], column[idx], config.vote_iou)
        kept_boxes.append(boxes)
        kept_cls.append(np.full(kept.size, c, dtype=np.int32))
        kept_scores.append(column[kept])
    if not kept_boxes:
        return Detections.empty(class_names, image_size)
    boxes = np.concatenate(kept_boxes)
    cls = np.concatenate(kept_cls)
    scores = np.concatenate(kept_scores)
    keep = np.argsort(-scores, kind="stable")[: config.max_detections]

    h, w = image_size
    pixel = boxes[keep] * np.array([w, h, w, h], dtype=np.float32)
    if config.clip:
        pixel = np.clip(pixel, 0, np.array([w, h, w, h], dtype=np.float32))
    return Detections(
        boxes=pixel.astype(np.float32),
        scores=scores[keep].astype(np.float32),
        class_ids=cls[keep].astype(np.int32),
        class_names=tuple(class_names),
        image_size=(int(h), int(w)),
    )

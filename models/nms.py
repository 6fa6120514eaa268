"""Non-maximum suppression, vectorised over boxes.

Greedy NMS (keep the best box, drop every box that overlaps it by more than the threshold,
repeat) looks inherently sequential, but its result is the unique fixed point of

    keep[j] = not any(keep[i] and iou[i, j] > t  for i ranked before j)

Iterating that rule from "keep everything" reaches the greedy answer, exactly: after n rounds
the first n ranks are settled, and in practice 2-4 rounds settle all of them, each one a
matrix operation over the whole candidate set. No Python loop runs over boxes.
"""

from __future__ import annotations

import numpy as np

from .box_coder import pairwise_iou


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS on one set of boxes.

    boxes: (N, 4) corners (any consistent units); scores: (N,). Returns int64 indices of the
    kept boxes, best score first. Ties keep the lower index first (stable sort).
    """
    scores = np.asarray(scores)
    n = scores.shape[0]
    if n == 0:
        return np.zeros((0,), dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    iou = pairwise_iou(boxes[order], boxes[order])
    # suppresses[i, j]: box ranked i would suppress box ranked j (i ranked before j).
    suppresses = np.triu(iou > iou_threshold, k=1)
    keep = np.ones(n, dtype=bool)
    for _ in range(n):  # bounded by n rounds; usually ends after a few
        new_keep = ~np.any(suppresses & keep[:, None], axis=0)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return order[keep]


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float,
) -> np.ndarray:
    """Per-class NMS: boxes of different classes never suppress each other.

    Returns indices into the inputs, sorted by descending score. Loops over the classes
    present (a handful), never over boxes.
    """
    class_ids = np.asarray(class_ids)
    if class_ids.size == 0:
        return np.zeros((0,), dtype=np.int64)
    kept = []
    for c in np.unique(class_ids):
        idx = np.nonzero(class_ids == c)[0]
        kept.append(idx[nms(boxes[idx], scores[idx], iou_threshold)])
    keep = np.concatenate(kept)
    return keep[np.argsort(-scores[keep], kind="stable")]

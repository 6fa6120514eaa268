"""Training targets: which default box learns which object (Liu et al. 2016, Sec. 2.2).

"Matching strategy": every ground-truth box is first matched to the default box with the
best IoU (so every object has at least one positive), then every default box whose IoU with
some ground truth is >= 0.5 is matched to its best ground truth. Matched boxes are positives,
with the object's class and its offsets encoded against the default box with the spec's
variances (:func:`models.box_coder.encode`); all other boxes are background.
"""

from __future__ import annotations

import numpy as np

from models.box_coder import centers_to_corners, encode, pairwise_iou
from models.priors import default_boxes

POSITIVE_IOU = 0.5


def match(gt_corners: np.ndarray, prior_corners: np.ndarray, threshold: float = POSITIVE_IOU):
    """Match default boxes to ground truth.

    gt_corners: (G, 4) normalised x1, y1, x2, y2; prior_corners: (N, 4) the same format.
    Returns (matched (N,) int64 index of each default box's ground truth, positive (N,) bool).
    With G == 0 every default box is negative.
    """
    n = prior_corners.shape[0]
    if len(gt_corners) == 0:
        return np.zeros((n,), np.int64), np.zeros((n,), bool)
    iou = pairwise_iou(gt_corners, prior_corners)  # (G, N)
    matched = iou.argmax(axis=0)
    best_iou = iou.max(axis=0)
    # Bipartite step: each object's best default box is forced to that object. Should two
    # objects share a best box, the later one keeps it (the earlier keeps its >= 0.5 boxes).
    best_prior = iou.argmax(axis=1)
    matched[best_prior] = np.arange(len(gt_corners))
    best_iou[best_prior] = 2.0
    return matched, best_iou >= threshold


class TargetEncoder:
    """Targets of one image for a spec's default boxes.

    Call with boxes float32 (G, 4) normalised corners and labels (G,) int in 1..C; get
    ``box_targets`` float32 (N, 4) (zeros on negatives) and ``class_targets`` int32 (N,)
    (0 = background), in the order of :func:`models.default_boxes`.
    """

    def __init__(self, spec, threshold: float = POSITIVE_IOU):
        self.priors = default_boxes(spec)
        self.prior_corners = centers_to_corners(self.priors).astype(np.float32)
        self.variances = tuple(spec.variances)
        self.threshold = threshold

    @property
    def num_boxes(self) -> int:
        return int(self.priors.shape[0])

    def __call__(self, boxes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        labels = np.asarray(labels, np.int32).reshape(-1)
        matched, positive = match(boxes, self.prior_corners, self.threshold)
        class_targets = np.zeros((self.num_boxes,), np.int32)
        box_targets = np.zeros((self.num_boxes, 4), np.float32)
        if positive.any():
            class_targets[positive] = labels[matched[positive]]
            box_targets[positive] = encode(boxes[matched[positive]], self.priors[positive], self.variances)
        return box_targets, class_targets

"""Training targets: which default box learns which object (Liu et al. 2016, Sec. 2.2).

"Matching strategy": every ground-truth box is first matched to the default box with the
best IoU (so every object has at least one positive), then every default box whose IoU with
some ground truth is >= 0.5 is matched to its best ground truth. Matched boxes are positives,
with the object's class and its offsets encoded against the default box with the spec's
variances (:func:`models.box_coder.encode`); all other boxes are background.

Optional ``top_k`` (``train --match-top-k K``): every object also takes its K best default
boxes whose IoU is at least ``TOP_K_FLOOR_IOU``. Why: with the paper's rule, positives follow
how well the object's shape happens to fit the default-box grid. On the default model's
training data a person under 60 px tall (at 300x300) gets 2.4 positive boxes on average and
half of them a single one, against 3.7 for all persons (with K = 4: 3.9, and one in ten).
So small, thin objects are seen as positives less often, and many through one box only.
ATSS (Zhang et al. 2020, "Bridging the Gap Between Anchor-based and Anchor-free Detection")
shows that choosing positives per object, rather than by one global IoU, is what matters;
this is its simplest form: a fixed count per object, with a floor so no box far off the
object is taught to see it. A box claimed by two objects learns the one it overlaps most.
"""

from __future__ import annotations

import numpy as np

from models.box_coder import centers_to_corners, encode, pairwise_iou
from models.priors import default_boxes

from .config import MAX_TOP_K

POSITIVE_IOU = 0.5
# The least IoU a default box needs to be one of an object's top-k positives. The 4th best box
# of a small person (default model's data) overlaps it by 0.41 on average, so the floor rarely
# cuts K = 4 short; a box of similar size at IoU < 0.3 covers less than half of the object.
TOP_K_FLOOR_IOU = 0.3


def match(gt_corners: np.ndarray, prior_corners: np.ndarray, threshold: float = POSITIVE_IOU, top_k: int = 0):
    """Match default boxes to ground truth.

    gt_corners: (G, 4) normalised x1, y1, x2, y2; prior_corners: (N, 4) the same format.
    ``top_k`` > 0: each object's ``top_k`` best default boxes with IoU >= ``TOP_K_FLOOR_IOU``
    are positive too (see the module docstring).
    Returns (matched (N,) int64 index of each default box's ground truth, positive (N,) bool).
    With G == 0 every default box is negative.
    """
    n = prior_corners.shape[0]
    if not 0 <= top_k <= MAX_TOP_K:
        raise ValueError(f"top_k must be from 0 to {MAX_TOP_K} default boxes per object, got {top_k}")
    if len(gt_corners) == 0:
        return np.zeros((n,), np.int64), np.zeros((n,), bool)
    iou = pairwise_iou(gt_corners, prior_corners)  # (G, N)
    matched = iou.argmax(axis=0)
    best_iou = iou.max(axis=0)
    if top_k > 0:
        k = min(top_k, n)
        top = np.argpartition(-iou, k - 1, axis=1)[:, :k]  # (G, k) each object's k best boxes
        chosen = top[np.take_along_axis(iou, top, axis=1) >= TOP_K_FLOOR_IOU]
        # argmax already gives each chosen box the object it overlaps most (>= the floor)
        best_iou[chosen] = np.maximum(best_iou[chosen], threshold)
    # Bipartite step: each object's best default box is forced to that object. Should two
    # objects share a best box, the later one keeps it (the earlier keeps its >= 0.5 boxes).
    best_prior = iou.argmax(axis=1)
    matched[best_prior] = np.arange(len(gt_corners))
    best_iou[best_prior] = 2.0
    return matched, best_iou >= threshold


# class_targets value of a default box that is neither positive nor negative (see TargetEncoder)
IGNORE = -1


class TargetEncoder:
    """Targets of one image for a spec's default boxes.

    Call with boxes float32 (G, 4) normalised corners and labels (G,) int in 1..C; get
    ``box_targets`` float32 (N, 4) (zeros on negatives) and ``class_targets`` int32 (N,)
    (0 = background), in the order of :func:`models.default_boxes`.

    A label -c (c in 1..C) marks an object to ignore (``train --ignore-difficult``: VOC
    ``difficult`` objects, or uncertain pre-labels that ``autolabel`` writes as difficult):
    the default boxes that would have matched it, by the same rule as a positive, get
    ``IGNORE`` (-1) unless a real object claims them, so they are neither taught the object
    nor mined as background (the loss leaves them out).
    """

    def __init__(self, spec, threshold: float = POSITIVE_IOU, top_k: int = 0):
        self.priors = default_boxes(spec)
        self.prior_corners = centers_to_corners(self.priors).astype(np.float32)
        self.variances = tuple(spec.variances)
        self.threshold = threshold
        self.top_k = int(top_k)

    @property
    def num_boxes(self) -> int:
        return int(self.priors.shape[0])

    def __call__(self, boxes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        labels = np.asarray(labels, np.int32).reshape(-1)
        ignored = labels < 0
        if ignored.any():
            boxes, labels, ignore_boxes = boxes[~ignored], labels[~ignored], boxes[ignored]
        matched, positive = match(boxes, self.prior_corners, self.threshold, self.top_k)
        class_targets = np.zeros((self.num_boxes,), np.int32)
        box_targets = np.zeros((self.num_boxes, 4), np.float32)
        if positive.any():
            class_targets[positive] = labels[matched[positive]]
            box_targets[positive] = encode(boxes[matched[positive]], self.priors[positive], self.variances)
        if ignored.any():
            _, would_match = match(ignore_boxes, self.prior_corners, self.threshold, self.top_k)
            class_targets[would_match & ~positive] = IGNORE
        return box_targets, class_targets

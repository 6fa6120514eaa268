"""The SSD training objective (Liu et al. 2016, Sec. 2.2 "Training objective"), in ``keras.ops``.

    L = (L_conf + alpha * L_loc) / N

- ``L_loc``: smooth L1 between predicted and target offsets, over positive default boxes only.
- ``L_conf``: softmax cross-entropy over positives and the hardest negatives, at most
  ``neg_pos_ratio`` (3) negatives per positive of the same image ("Hard negative mining").
- ``N``: positives in the batch (at least 1, so a batch without objects stays finite).

Everything is ``keras.ops``: the same code runs inside the TensorFlow and the JAX training
step, and eagerly on NumPy arrays for validation.

Partial labels. A data source may label only some classes (hard-hat photos label helmet and
head, never the dogs in them). ``class_mask`` (B, C+1) says which classes each image's source
labels; the logits of the other classes are removed from that image's softmax, so an
unlabelled dog on a hard-hat photo is neither pushed towards background nor mined as a hard
negative for "dog". Background (column 0) is always kept, and so is each box's own target
class: a source may box a class only in part (``train --copies-positive-only``: the persons a
model found in an ``autolabel`` copy), so its boxed objects teach it and nothing else there does.
"""

from __future__ import annotations

from dataclasses import dataclass

from keras import ops

# A logit this low has probability exp(-1e9) = 0 in float32: "not part of this softmax".
_MASKED_LOGIT = -1e9


@dataclass(frozen=True)
class LossConfig:
    """Weights of the SSD loss.

    ``neg_pos_ratio``: hard negatives kept per positive (paper: 3).
    ``min_negatives``: negatives kept in an image that has no positive, so photos without
    objects still teach the background class (0 gives such images zero loss).
    ``loc_weight``: alpha of the paper (1).
    """

    neg_pos_ratio: float = 3.0
    min_negatives: int = 3
    loc_weight: float = 1.0


def smooth_l1(x):
    """Elementwise smooth L1 (Huber with delta 1): 0.5 x^2 if |x| < 1 else |x| - 0.5."""
    ax = ops.abs(x)
    return ops.where(ax < 1.0, 0.5 * ax * ax, ax - 0.5)


def masked_log_softmax(logits, class_mask=None, labels=None):
    """log-softmax over the classes each image's source labels, and each box's own class.

    logits: (B, N, C+1) float; class_mask: None or (B, C+1), nonzero for the classes kept;
    labels: None or (B, N) int in 0..C, each box's target. A box's target class is always
    kept: a class a source boxes only where a model was sure (``train --copies-positive-only``)
    is masked for that source, so its background boxes never learn it, while its boxed
    objects still do. For ordinary sources the target class is in the mask anyway.
    Returns (B, N, C+1) float32; masked classes get a very negative log-probability.
    """
    logits = ops.cast(logits, "float32")
    if class_mask is not None:
        keep = ops.cast(class_mask, "bool")[:, None, :]
        if labels is not None:
            keep = ops.logical_or(keep, ops.one_hot(labels, ops.shape(logits)[-1]) > 0)
        logits = ops.where(keep, logits, _MASKED_LOGIT)
    return ops.log_softmax(logits, axis=-1)


def hard_negatives(background_loss, excluded, num_negatives):
    """Pick, per image, the ``num_negatives`` boxes with the highest loss among those not
    ``excluded`` (positives and ignored boxes).

    background_loss: (B, N) float, -log p(background) of each box; excluded: (B, N) bool;
    num_negatives: (B,) float, at most the number of boxes not excluded. Returns (B, N) bool.
    The choice is not differentiated (it is a selection, as in the paper); ranks come from a
    double argsort, so no Python loop runs.
    """
    candidates = ops.where(excluded, -1.0, ops.stop_gradient(background_loss))
    order = ops.argsort(-candidates, axis=1)
    rank = ops.argsort(order, axis=1)
    return ops.logical_and(
        ops.cast(rank, "float32") < num_negatives[:, None], ops.logical_not(excluded)
    )


def ssd_loss(
    box_deltas,
    class_logits,
    box_targets,
    class_targets,
    class_mask=None,
    config: LossConfig = LossConfig(),
):
    """The SSD multibox loss of one batch.

    box_deltas: (B, N, 4) predicted offsets (t_x, t_y, t_w, t_h, see models.box_coder);
    class_logits: (B, N, C+1) logits, background at 0; box_targets: (B, N, 4) float32 encoded
    offsets of each box's matched ground truth (ignored where the box is negative);
    class_targets: (B, N) int, 0 = background, c >= 1 = class c, -1 = ignored (neither a
    positive nor a candidate negative; trainer.targets.IGNORE); class_mask: None or (B, C+1)
    bool/float, the classes each image's source labels (column 0 must be set).

    Returns three float32 scalars: (total, localisation, confidence), each already divided by
    the number of positives in the batch (at least 1).
    """
    labels = ops.cast(class_targets, "int32")
    positive = labels > 0
    excluded = labels != 0  # positives and ignored boxes are never mined as background
    pos_f = ops.cast(positive, "float32")
    pos_per_image = ops.sum(pos_f, axis=1)
    n_pos = ops.maximum(ops.sum(pos_per_image), 1.0)
    available = ops.sum(ops.cast(ops.logical_not(excluded), "float32"), axis=1)
    labels = ops.maximum(labels, 0)  # an ignored box's cross-entropy is computed, never counted

    deltas = ops.cast(box_deltas, "float32")
    targets = ops.cast(box_targets, "float32")
    loc = ops.sum(ops.sum(smooth_l1(deltas - targets), axis=-1) * pos_f)

    log_probs = masked_log_softmax(class_logits, class_mask, labels)
    num_classes = ops.shape(log_probs)[-1]
    cross_entropy = -ops.sum(ops.one_hot(labels, num_classes) * log_probs, axis=-1)  # (B, N)

    wanted = ops.maximum(config.neg_pos_ratio * pos_per_image, float(config.min_negatives))
    num_negatives = ops.minimum(wanted, available)
    negative = hard_negatives(cross_entropy, excluded, num_negatives)
    counted = ops.cast(ops.logical_or(positive, negative), "float32")
    conf = ops.sum(cross_entropy * counted)

    loc = loc / n_pos
    conf = conf / n_pos
    return conf + config.loc_weight * loc, loc, conf

"""Target matching and the SSD loss (hand-checked), the class mask, and the JAX backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from trainer_helpers import tiny_spec

from models import centers_to_corners, decode, default_boxes, pairwise_iou
from trainer.loss import LossConfig, masked_log_softmax, ssd_loss
from trainer.targets import TargetEncoder, match

ROOT = Path(__file__).resolve().parents[1]


def _np(x) -> float:
    return float(np.asarray(x))


def test_every_object_gets_its_best_default_box_and_all_above_half():
    spec = tiny_spec(["a", "b"])
    encoder = TargetEncoder(spec)
    priors = centers_to_corners(default_boxes(spec))
    gt = np.array([[0.1, 0.1, 0.5, 0.6], [0.62, 0.64, 0.66, 0.69]], np.float32)  # the second is tiny
    labels = np.array([1, 2])
    box_t, cls_t = encoder(gt, labels)
    iou = pairwise_iou(gt, priors)
    assert iou[1].max() < 0.5  # no default box reaches 0.5 with the tiny object ...
    assert cls_t[iou[1].argmax()] == 2  # ... it still owns its best one
    expected_pos = (iou.max(axis=0) >= 0.5) | np.isin(np.arange(len(priors)), iou.argmax(axis=1))
    np.testing.assert_array_equal(cls_t > 0, expected_pos)
    assert set(cls_t[iou[0] >= 0.5]) == {1}
    # the encoded offsets decode back to the matched ground truth
    pos = np.flatnonzero(cls_t)
    back = decode(box_t[pos], default_boxes(spec)[pos], spec.variances)
    matched, _ = match(gt, priors)
    np.testing.assert_allclose(back, gt[matched[pos]], atol=1e-5)


def test_top_k_matching_gives_small_objects_their_best_boxes_above_the_floor():
    from trainer.targets import TOP_K_FLOOR_IOU

    spec = tiny_spec(["a", "b"])
    priors = centers_to_corners(default_boxes(spec))
    # a thin object no default box overlaps by 0.5, and a large one that has many such boxes
    gt = np.array([[0.11, 0.06, 0.19, 0.28], [0.5, 0.4, 0.95, 0.95]], np.float32)
    labels = np.array([1, 2])
    iou = pairwise_iou(gt, priors)
    assert iou[0].max() < 0.5 and (iou[1] >= 0.5).sum() >= 4
    _, plain = TargetEncoder(spec)(gt, labels)
    box_t, cls_t = TargetEncoder(spec, top_k=4)(gt, labels)
    assert (plain == 1).sum() == 1  # the paper's rule: only the forced best box
    best4 = np.argsort(-iou[0])[:4]
    wanted = best4[iou[0, best4] >= TOP_K_FLOOR_IOU]
    assert len(wanted) == 3  # the 4th best overlaps less than the floor: left out
    np.testing.assert_array_equal(np.flatnonzero(cls_t == 1), np.sort(wanted))
    # the large object keeps exactly its paper-rule positives (its 4 best are all >= 0.5)
    np.testing.assert_array_equal(cls_t == 2, plain == 2)
    # offsets of the new positives decode back to the object
    back = decode(box_t[wanted], default_boxes(spec)[wanted], spec.variances)
    np.testing.assert_allclose(back, np.repeat(gt[:1], len(wanted), 0), atol=1e-5)
    # nothing below the floor is taught to see the object, however large K
    _, many = TargetEncoder(spec, top_k=16)(gt, labels)
    assert (iou[0][many == 1] >= TOP_K_FLOOR_IOU).all()
    with pytest.raises(ValueError, match="top_k must be from 0 to 16"):
        match(gt, priors, top_k=17)


def test_no_objects_means_all_background():
    encoder = TargetEncoder(tiny_spec(["a"]))
    box_t, cls_t = encoder(np.zeros((0, 4)), np.zeros((0,)))
    assert not cls_t.any() and not box_t.any() and cls_t.dtype == np.int32


def test_ignored_objects_take_the_boxes_they_would_match_out_of_both_sides():
    spec = tiny_spec(["a", "b"])
    real = np.array([[0.1, 0.1, 0.5, 0.6]], np.float32)
    doubtful = np.array([[0.55, 0.5, 0.95, 0.95]], np.float32)
    _, alone = TargetEncoder(spec)(doubtful, np.array([2]))
    box_t, cls_t = TargetEncoder(spec)(np.concatenate([real, doubtful]), np.array([1, -2]))
    _, only_real = TargetEncoder(spec)(real, np.array([1]))
    np.testing.assert_array_equal(cls_t == 1, only_real == 1)  # the real object is untouched
    np.testing.assert_array_equal(cls_t == -1, alone == 2)  # exactly its would-be positives ...
    assert (cls_t != 2).all() and not box_t[cls_t == -1].any()  # ... and none of them a positive
    # a box a real object claims stays that object's, even if an ignored object overlaps it
    _, both = TargetEncoder(spec)(np.concatenate([real, real]), np.array([1, -1]))
    np.testing.assert_array_equal(both, only_real)


def _manual_loss(deltas, logits, box_t, cls_t, ratio=3, min_neg=3):
    """The SSD loss written out with loops, for one batch (numpy float64); -1 = ignored."""
    total_conf = total_loc = 0.0
    n_pos = max(int((cls_t > 0).sum()), 1)
    for b in range(len(cls_t)):
        z = logits[b] - logits[b].max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        ce = -logp[np.arange(len(cls_t[b])), np.maximum(cls_t[b], 0)]
        pos = cls_t[b] > 0
        free = cls_t[b] == 0
        d = np.abs(deltas[b] - box_t[b])
        total_loc += np.where(d < 1, 0.5 * d * d, d - 0.5)[pos].sum()
        k = min(max(ratio * pos.sum(), min_neg), free.sum())
        neg_losses = np.sort(ce[free])[::-1][:k]
        total_conf += ce[pos].sum() + neg_losses.sum()
    return (total_conf + total_loc) / n_pos, total_loc / n_pos, total_conf / n_pos


def test_loss_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    b, n, c = 3, 40, 4
    deltas = rng.normal(size=(b, n, 4)).astype(np.float32) * 2
    logits = rng.normal(size=(b, n, c)).astype(np.float32) * 3
    box_t = rng.normal(size=(b, n, 4)).astype(np.float32)
    cls_t = np.zeros((b, n), np.int32)
    cls_t[0, [1, 5, 9]] = [1, 2, 3]
    cls_t[1, [0]] = [2]  # image 2 has no objects: min_negatives apply
    total, loc, conf = ssd_loss(deltas, logits, box_t, cls_t)
    want = _manual_loss(deltas.astype(np.float64), logits.astype(np.float64), box_t, cls_t)
    np.testing.assert_allclose([_np(total), _np(loc), _np(conf)], want, rtol=1e-5)


def test_ignored_boxes_are_neither_positives_nor_mined_negatives():
    rng = np.random.default_rng(3)
    b, n, c = 2, 40, 3
    deltas = rng.normal(size=(b, n, 4)).astype(np.float32)
    logits = rng.normal(size=(b, n, c)).astype(np.float32) * 3
    box_t = rng.normal(size=(b, n, 4)).astype(np.float32)
    cls_t = np.zeros((b, n), np.int32)
    cls_t[0, [2, 7]] = [1, 2]
    # the boxes an ignored object would claim, including the one the model finds most
    # "background-wrong" (a hard negative it would otherwise be taught)
    hardest = int(np.argmax(-(logits[0, :, 0] - np.log(np.exp(logits[0]).sum(-1)))))
    ignored = [i for i in {hardest, 11, 12} if cls_t[0, i] == 0]
    cls_t[0, ignored] = -1
    cls_t[1, 30:] = -1  # an image whose only object is ignored: min_negatives from the rest
    total, loc, conf = ssd_loss(deltas, logits, box_t, cls_t)
    want = _manual_loss(deltas.astype(np.float64), logits.astype(np.float64), box_t, cls_t)
    np.testing.assert_allclose([_np(total), _np(loc), _np(conf)], want, rtol=1e-5)
    # what the ignored boxes predict does not matter
    louder = logits.copy()
    louder[cls_t == -1] += rng.normal(size=(int((cls_t == -1).sum()), c)).astype(np.float32) * 20
    assert _np(ssd_loss(deltas, louder, box_t, cls_t)[0]) == pytest.approx(_np(total), rel=1e-6)
    # and it would, were they background: the rule changes the loss
    assert _np(ssd_loss(deltas, louder, box_t, np.maximum(cls_t, 0))[0]) != pytest.approx(_np(total), rel=1e-3)


def test_image_without_objects_gives_a_finite_loss():
    n, c = 50, 3
    logits = np.random.default_rng(1).normal(size=(1, n, c)).astype(np.float32)
    total, loc, conf = ssd_loss(np.zeros((1, n, 4), np.float32), logits, np.zeros((1, n, 4), np.float32),
                                np.zeros((1, n), np.int32))
    assert np.isfinite(_np(total)) and _np(loc) == 0.0 and _np(conf) > 0.0
    total0, _, _ = ssd_loss(np.zeros((1, n, 4), np.float32), logits, np.zeros((1, n, 4), np.float32),
                            np.zeros((1, n), np.int32), config=LossConfig(min_negatives=0))
    assert _np(total0) == 0.0


def test_class_mask_removes_unlabelled_classes_from_the_softmax():
    rng = np.random.default_rng(2)
    n, c = 30, 4  # background + 3 classes; the image's source labels only class 1
    logits = rng.normal(size=(1, n, c)).astype(np.float32)
    cls_t = np.zeros((1, n), np.int32)
    cls_t[0, 3] = 1
    args = (np.zeros((1, n, 4), np.float32), np.zeros((1, n, 4), np.float32), cls_t)
    mask = np.array([[1, 1, 0, 0]], np.float32)
    base = _np(ssd_loss(args[0], logits, args[1], args[2], mask)[0])
    louder = logits.copy()
    louder[..., 2:] += 50.0  # unlabelled classes scream everywhere: no effect with the mask
    assert _np(ssd_loss(args[0], louder, args[1], args[2], mask)[0]) == pytest.approx(base, rel=1e-6)
    assert _np(ssd_loss(args[0], louder, args[1], args[2], None)[0]) > base + 10
    # equal to the loss of a model that has only background and class 1
    two = _np(ssd_loss(args[0], logits[..., :2], args[1], args[2], None)[0])
    assert two == pytest.approx(base, rel=1e-6)


def test_a_positive_of_a_masked_class_learns_it_and_background_boxes_never_see_it():
    """--copies-positive-only: class 2 is masked for the image (its source boxes it only where a
    model was sure), yet the box labelled 2 learns it; the other boxes' softmax leaves it out."""
    rng = np.random.default_rng(5)
    n, c = 30, 4
    logits = rng.normal(size=(1, n, c)).astype(np.float32)
    cls_t = np.zeros((1, n), np.int32)
    cls_t[0, 3], cls_t[0, 7] = 1, 2
    zeros = np.zeros((1, n, 4), np.float32)
    mask = np.array([[1, 1, 0, 1]], np.float32)  # class 2 positive-only here
    base = _np(ssd_loss(zeros, logits, zeros, cls_t, mask)[0])
    assert np.isfinite(base) and base < 100  # the masked class's positive is not -log(0)
    louder = logits.copy()
    louder[0, :, 2] += 50.0  # class 2 screams on every box but its own: background boxes do not care
    louder[0, 7, 2] = logits[0, 7, 2]
    assert _np(ssd_loss(zeros, louder, zeros, cls_t, mask)[0]) == pytest.approx(base, rel=1e-6)
    # the positive's cross-entropy is over background, its source's classes and its own class
    log_probs = np.asarray(masked_log_softmax(logits, mask, cls_t))
    expected = logits[0, 7] - np.log(np.sum(np.exp(logits[0, 7])))  # all four kept for box 7
    np.testing.assert_allclose(log_probs[0, 7], expected, rtol=1e-5)
    kept = logits[0, 0, [0, 1, 3]]
    np.testing.assert_allclose(log_probs[0, 0, [0, 1, 3]], kept - np.log(np.sum(np.exp(kept))), rtol=1e-5)
    assert log_probs[0, 0, 2] < -1e8


def test_gradient_of_masked_logits_is_zero():
    import tensorflow as tf

    rng = np.random.default_rng(3)
    logits = tf.Variable(rng.normal(size=(1, 20, 3)).astype(np.float32))
    cls_t = np.zeros((1, 20), np.int32)
    cls_t[0, 2] = 1
    with tf.GradientTape() as tape:
        total, _, _ = ssd_loss(np.zeros((1, 20, 4), np.float32), logits, np.zeros((1, 20, 4), np.float32), cls_t,
                               np.array([[1, 1, 0]], np.float32))
    grad = tape.gradient(total, logits).numpy()
    assert np.all(grad[..., 2] == 0) and np.any(grad[..., :2] != 0)


JAX_SCRIPT = r"""
import sys, numpy as np, keras
sys.path.insert(0, "tests")
assert keras.backend.backend() == "jax"
from trainer_helpers import make_voc_folder, write_spec_yaml
from trainer.config import TrainConfig
from trainer.loop import train
from trainer.loss import ssd_loss
from models.model_file import load_model
from pathlib import Path
d = np.load(sys.argv[1])
total, loc, conf = ssd_loss(d["deltas"], d["logits"], d["box_t"], d["cls_t"], d["mask"])
np.testing.assert_allclose([float(total), float(loc), float(conf)], d["expected"], rtol=1e-5)
# the real training path: loader, compiled step, validation, checkpoint, model files
root = Path(sys.argv[2])
folder = make_voc_folder(root / "voc", 10, seed=4)
spec = write_spec_yaml(root / "spec.yaml", ["bluedisc", "redbox"])
cfg = TrainConfig(data=(str(folder),), out=str(root / "run"), spec_file=str(spec), epochs=3, batch_size=4,
                  val_split=0.2, optimizer="adam", lr=1e-3, augment=False, workers=2, progress_bar=False)
result = train(cfg, log=lambda line: None)
losses = [h["train_loss"] for h in result.history]
assert result.status == "finished" and all(np.isfinite(losses)), losses
assert losses[-1] < losses[0], losses
assert load_model(root / "run" / "best.keras").class_names == ("bluedisc", "redbox")
print("ok", losses)
"""


@pytest.mark.slow
def test_loss_and_training_step_run_on_jax(tmp_path):
    pytest.importorskip("jax")
    rng = np.random.default_rng(4)
    b, n, c = 2, 30, 3
    data = {"deltas": rng.normal(size=(b, n, 4)).astype(np.float32),
            "logits": rng.normal(size=(b, n, c)).astype(np.float32),
            "box_t": rng.normal(size=(b, n, 4)).astype(np.float32),
            "cls_t": (rng.random((b, n)) < 0.1).astype(np.int32),
            "mask": np.array([[1, 1, 0], [1, 1, 1]], np.float32)}
    expected = [_np(v) for v in ssd_loss(data["deltas"], data["logits"], data["box_t"], data["cls_t"], data["mask"])]
    np.savez(tmp_path / "loss.npz", expected=np.array(expected), **data)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "loss.npz"), str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ok" in proc.stdout

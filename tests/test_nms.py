"""NMS against a brute-force greedy reference, and post-processing edge cases."""

import numpy as np
import pytest

from models import PostprocessConfig, batched_nms, nms, select_detections
from models.box_coder import pairwise_iou
from models.box_voting import vote_boxes


def greedy_reference(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(pairwise_iou(boxes[[i]], boxes[[k]])[0, 0] <= thr for k in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("thr", [0.3, 0.45, 0.7])
def test_nms_matches_greedy(seed, thr):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    xy = rng.uniform(0, 1, (n, 2))
    wh = rng.uniform(0.02, 0.4, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    if seed % 3 == 0:
        scores = np.round(scores, 1)  # many ties
    assert list(nms(boxes, scores, thr)) == greedy_reference(boxes, scores, thr)


def test_batched_nms_keeps_classes_apart():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    keep = batched_nms(boxes, scores, np.array([0, 1, 0]), 0.5)
    assert list(keep) == [0, 1]


def test_nms_empty():
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).shape == (0,)


NAMES = ("dog", "cat")


def _probs(n, fg):
    p = np.zeros((n, 3), np.float32)
    p[:, 1:] = fg
    p[:, 0] = 1 - p[:, 1:].sum(1)
    return p


def test_nothing_above_threshold():
    corners = np.tile([0.1, 0.1, 0.5, 0.5], (10, 1)).astype(np.float32)
    det = select_detections(corners, _probs(10, 0.2), PostprocessConfig(conf_threshold=0.5), NAMES, (100, 200))
    assert len(det) == 0 and det.boxes.shape == (0, 4)


def test_all_one_class_and_pixel_scaling():
    corners = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]], np.float32)
    fg = np.array([[0.9, 0.0], [0.8, 0.0], [0.7, 0.0]], np.float32)
    caffe = PostprocessConfig(conf_threshold=0.5, vote_iou=None)  # the boxes NMS kept, unchanged
    det = select_detections(corners, _probs(3, fg), caffe, NAMES, (100, 200))
    assert det.names == ["dog", "dog"]
    np.testing.assert_allclose(det.scores, [0.9, 0.7])
    np.testing.assert_allclose(det.boxes[0], [20, 10, 100, 50], rtol=1e-5)  # x scaled by width 200
    # box voting (the default): the suppressed box (IoU 0.95) pulls the kept one towards it,
    # x1 = (0.9 * 0.10 + 0.8 * 0.12) / 1.7 of the width; scores and the far box stay as they were
    det = select_detections(corners, _probs(3, fg), PostprocessConfig(conf_threshold=0.5), NAMES, (100, 200))
    np.testing.assert_allclose(det.scores, [0.9, 0.7])
    np.testing.assert_allclose(det.boxes[0], [200 * (0.9 * 0.1 + 0.8 * 0.12) / 1.7, 10, 100, 50], rtol=1e-5)
    np.testing.assert_allclose(det.boxes[1], [120, 60, 180, 90], rtol=1e-5)


def test_box_voting_weights_by_score_and_ignores_distant_candidates():
    kept = np.array([[0, 0, 10, 10]], np.float32)
    candidates = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [0, 3, 10, 13], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.6, 0.3, 0.1, 0.99], np.float32)  # IoU with kept: 1, 0.667, 0.538, 0
    np.testing.assert_allclose(vote_boxes(kept, candidates, scores, 0.6), [[2 / 3, 0, 32 / 3, 10]], rtol=1e-5)
    np.testing.assert_allclose(vote_boxes(kept, candidates, scores, 0.5), [[0.6, 0.3, 10.6, 10.3]], rtol=1e-5)
    # a kept box with no voter (not among the candidates, nothing overlapping) stays put
    np.testing.assert_allclose(vote_boxes(np.array([[30, 30, 40, 40]]), candidates, scores, 0.5), [[30, 30, 40, 40]])
    assert vote_boxes(np.zeros((0, 4)), candidates, scores, 0.5).shape == (0, 4)
    with pytest.raises(ValueError, match="vote_iou"):
        PostprocessConfig(vote_iou=0.0)


def test_zero_area_boxes_do_not_crash_or_suppress():
    corners = np.array([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]], np.float32)
    fg = np.array([[0.9, 0.0], [0.8, 0.0]], np.float32)
    det = select_detections(corners, _probs(2, fg), PostprocessConfig(), NAMES, (10, 10))
    assert len(det) == 2  # IoU of zero-area boxes is 0: neither suppresses the other


def test_top_k_cap_and_class_mask():
    rng = np.random.default_rng(0)
    n = 300
    xy = rng.uniform(0, 0.9, (n, 2))
    corners = np.concatenate([xy, xy + 0.01], 1).astype(np.float32)  # tiny, never overlapping much
    fg = np.stack([rng.uniform(0.6, 0.99, n) * 0.5, rng.uniform(0.6, 0.99, n) * 0.5], 1)
    fg[:, 0] += 0.4
    cfg = PostprocessConfig(conf_threshold=0.3, top_k=50, max_detections=70)
    det = select_detections(corners, _probs(n, fg), cfg, NAMES, (100, 100))
    assert len(det) <= 70 and np.all(np.diff(det.scores) <= 0)
    only_cat = select_detections(corners, _probs(n, fg), cfg, NAMES, (100, 100), class_mask=np.array([False, True]))
    assert set(only_cat.names) <= {"cat"}
    # per-class top_k: never more than 50 of a class
    assert all(det.names.count(c) <= 50 for c in NAMES)


def test_mismatched_class_names_is_a_clear_error():
    with pytest.raises(ValueError, match="class names"):
        select_detections(np.zeros((1, 4)), np.zeros((1, 3)), PostprocessConfig(), ("a",), (1, 1))

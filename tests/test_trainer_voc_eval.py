"""VOC AP against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.voc_eval import ImageDetections, ImageTruth, ap_11_points, ap_all_points, evaluate_voc


def truth(boxes, labels, difficult=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return ImageTruth(boxes, np.asarray(labels, np.int64),
                      np.zeros(len(boxes), bool) if difficult is None else np.asarray(difficult, bool))


def dets(boxes, scores, labels):
    return ImageDetections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float64),
                           np.asarray(labels, np.int64))


A, B, C = [0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]
FAR = [100, 100, 110, 110]


def test_worked_example_with_a_duplicate():
    """Image 0 has objects A and B, image 1 has C. In score order: A (TP), A again (duplicate,
    FP), C (TP), nothing (FP), B (TP). Precision 1, 1/2, 2/3, 1/2, 3/5 at recall 1/3, 1/3,
    2/3, 2/3, 1. All-point AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/5 = 34/45. 11-point: recall
    >= 0, .1, .2, .3 -> 1 (four times); .4, .5, .6 -> 2/3; .7 .. 1 -> 3/5 (four times):
    (4 + 2 + 2.4) / 11 = 8.4 / 11."""
    truths = [truth([A, B], [0, 0]), truth([C], [0])]
    detections = [dets([A, A, FAR, B], [0.9, 0.8, 0.6, 0.5], [0, 0, 0, 0]), dets([C], [0.7], [0])]
    result = evaluate_voc(["thing"], truths, detections)
    c = result.classes[0]
    assert (c.positives, c.detections, c.true_positives, c.false_positives) == (3, 5, 3, 2)
    np.testing.assert_allclose(c.recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])
    np.testing.assert_allclose(c.precision, [1, 1 / 2, 2 / 3, 1 / 2, 3 / 5])
    assert c.ap == pytest.approx(34 / 45)
    assert c.ap07 == pytest.approx(8.4 / 11)
    assert result.map == pytest.approx(34 / 45) and result.map07 == pytest.approx(8.4 / 11)


def test_ties_keep_image_order():
    """Equal scores: image order decides (stable sort), as documented. One object in image 1;
    the FP of image 0 comes first: precision 0 then 1/2 at recall 0 then 1 -> AP 1/2."""
    truths = [truth([], []), truth([A], [0])]
    detections = [dets([A], [0.5], [0]), dets([A], [0.5], [0])]
    c = evaluate_voc(["thing"], truths, detections).classes[0]
    np.testing.assert_allclose(c.precision, [0, 0.5])
    assert c.ap == pytest.approx(0.5) and c.ap07 == pytest.approx(0.5)


def test_no_predictions_and_a_class_without_ground_truth():
    """Class 0 has an object but no detection: AP 0. Class 1 has no ground truth (but a
    detection): AP undefined, left out of the mean. Class 2 is found perfectly: AP 1."""
    truths = [truth([A, B], [0, 2])]
    detections = [dets([C, B], [0.9, 0.8], [1, 2])]
    result = evaluate_voc(["a", "b", "c"], truths, detections)
    aps = [c.ap for c in result.classes]
    assert aps == [0.0, None, 1.0]
    assert [c.ap07 for c in result.classes] == [0.0, None, 1.0]
    assert result.map == pytest.approx(0.5) and result.map07 == pytest.approx(0.5)
    assert result.to_dict()["classes_in_mean"] == ["a", "c"]


def test_difficult_objects_are_ignored():
    """A detection of a difficult object is neither TP nor FP, and difficult objects are not
    counted: one found normal object -> AP 1 (it would be 1/2 if the difficult one counted)."""
    truths = [truth([A, B], [0, 0], difficult=[False, True])]
    detections = [dets([B, A], [0.9, 0.8], [0, 0])]
    c = evaluate_voc(["thing"], truths, detections).classes[0]
    assert c.positives == 1 and c.true_positives == 1 and c.false_positives == 0
    assert c.ap == 1.0 and c.ap07 == 1.0


def test_iou_threshold_is_inclusive_and_classes_do_not_mix():
    # a 10x10 box against one shifted to overlap 2/3: IoU = 66.7 / 133.3 = 0.5 exactly
    shifted = [10 / 3, 0, 10 + 10 / 3, 10]
    truths = [truth([A], [0])]
    c = evaluate_voc(["thing"], truths, [dets([shifted], [0.9], [0])]).classes[0]
    assert c.true_positives == 1
    wrong_class = evaluate_voc(["a", "b"], truths, [dets([A], [0.9], [1])])
    assert wrong_class.classes[0].ap == 0.0 and wrong_class.classes[1].ap is None


def test_ap_rules_on_curves():
    assert ap_all_points(np.array([0.5, 1.0]), np.array([1.0, 0.5])) == pytest.approx(0.75)
    assert ap_11_points(np.array([0.5, 1.0]), np.array([1.0, 0.5])) == pytest.approx((6 * 1 + 5 * 0.5) / 11)
    assert ap_all_points(np.array([]), np.array([])) == 0.0


def test_partial_labels_measure_each_class_on_the_images_labelled_for_it():
    """Image 0 comes from a folder that labels only class 0, image 1 from one that labels only
    class 1. A class-1 detection on image 0 is not a false positive: nobody labelled class 1
    there. Without the rows it would halve class 1's precision."""
    truths = [truth([A], [0]), truth([B], [1])]
    detections = [dets([A, C], [0.9, 0.95], [0, 1]), dets([B], [0.8], [1])]
    rows = [np.array([True, False]), np.array([False, True])]
    partial = evaluate_voc(["hat", "dog"], truths, detections, labelled=rows)
    assert [c.ap for c in partial.classes] == [1.0, 1.0]
    plain = evaluate_voc(["hat", "dog"], truths, detections)
    assert plain.classes[1].ap == pytest.approx(0.5) and plain.classes[1].false_positives == 1

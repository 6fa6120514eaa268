"""Recall by object size (trainer/size_recall.py) against a case worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.size_recall import bucket_names, format_recall_by_size, recall_by_size
from trainer.voc_eval import ImageDetections, ImageTruth, evaluate_voc

# Image 0 is 600 px tall, so at a 300x300 input every height halves.
TINY = [0, 0, 10, 20]            # 20 px -> 10 at the input: "<15"
MID = [100, 100, 140, 200]       # 100 px -> 50: "30-60"
BIG = [300, 0, 420, 300]         # 300 px -> 150: "120+"
HARD = [200, 200, 230, 260]      # difficult: not counted, like AP
FAR = [500, 500, 510, 510]


def test_each_object_lands_in_its_bucket_with_the_score_that_found_it():
    truths = [ImageTruth(np.asarray([TINY, MID, BIG, HARD], np.float32), np.asarray([0, 0, 0, 0]),
                         np.asarray([False, False, False, True]), image_height=600),
              ImageTruth(np.asarray([MID], np.float32), np.asarray([1]), np.asarray([False]), image_height=600)]
    # BIG found at 0.9 (and again at 0.2: a duplicate), MID at 0.3, TINY never, one miss at 0.8;
    # class 1's object found at 0.6
    detections = [ImageDetections(np.asarray([BIG, FAR, MID, BIG], np.float32), np.asarray([0.9, 0.8, 0.3, 0.2]),
                                  np.asarray([0, 0, 0, 0])),
                  ImageDetections(np.asarray([MID], np.float32), np.asarray([0.6]), np.asarray([1]))]
    result = evaluate_voc(["person", "car"], truths, detections)
    person = result.classes[0]
    np.testing.assert_allclose(person.heights, [20 / 600, 100 / 600, 300 / 600])
    np.testing.assert_allclose(person.found_scores, [np.nan, 0.3, 0.9])
    # the recall AP integrates ends where found_scores says
    assert person.recall[-1] == pytest.approx(np.mean(np.isfinite(person.found_scores)))

    table = recall_by_size(result, (300, 300))
    assert table["buckets"] == ["<15", "15-30", "30-60", "60-120", "120+"] == bucket_names()
    cells = [(b["found_at_conf"], b["found"], b["objects"]) for b in table["per_class"]["person"]]
    assert cells == [(0, 0, 1), (0, 0, 0), (0, 1, 1), (0, 0, 0), (1, 1, 1)]
    assert [b["found_at_conf"] for b in table["per_class"]["car"]] == [0, 0, 1, 0, 0]
    # at a 600 px tall input the same objects are twice as tall: TINY now 20 px, MID 100
    cells = [(b["found"], b["objects"]) for b in recall_by_size(result, (600, 600))["per_class"]["person"]]
    assert cells == [(0, 0), (0, 1), (0, 0), (1, 1), (1, 1)]

    text = format_recall_by_size(table)
    assert "at the 300x300 input" in text and "confidence >= 0.5" in text
    assert text.splitlines()[2].split() == ["person", "0/0/1", "-", "0/1/1", "-", "1/1/1"]


def test_objects_of_images_without_a_known_height_are_left_out():
    truths = [ImageTruth(np.asarray([MID], np.float32), np.asarray([0]), np.asarray([False]))]  # height 0: unknown
    detections = [ImageDetections(np.asarray([MID], np.float32), np.asarray([0.9]), np.asarray([0]))]
    result = evaluate_voc(["person"], truths, detections)
    assert result.classes[0].ap == pytest.approx(1.0)
    assert all(b["objects"] == 0 for b in recall_by_size(result, (300, 300))["per_class"]["person"])
    assert "no object with a known image size" in format_recall_by_size(recall_by_size(result, (300, 300)))
    with pytest.raises(ValueError, match="positive"):
        recall_by_size(result, (0, 300))

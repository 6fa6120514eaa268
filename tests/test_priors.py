"""Default boxes: counts and coordinates worked out by hand from the SSD formulas."""

import math

import numpy as np
import pytest

from models import caffe_spec, default_boxes, num_default_boxes, seed_spec
from models.geometry import feature_map_sizes

SEED = seed_spec(["a", "b"])


def test_seed_feature_maps_and_count():
    sizes = feature_map_sizes(SEED)
    assert [sizes[h.source] for h in SEED.heads] == [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    assert [h.boxes_per_cell for h in SEED.heads] == [4, 6, 6, 6, 6, 6]
    # 38*38*4 + 19*19*6 + 10*10*6 + 5*5*6 + 3*3*6 + 1*6
    assert num_default_boxes(SEED) == 5776 + 2166 + 600 + 150 + 54 + 6 == 8752
    assert default_boxes(SEED).shape == (8752, 4)


def test_caffe_feature_maps_and_count():
    spec = caffe_spec()
    sizes = feature_map_sizes(spec)
    assert [sizes[h.source] for h in spec.heads] == [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert [h.boxes_per_cell for h in spec.heads] == [3, 6, 6, 6, 6, 6]
    assert num_default_boxes(spec) == 1917


@pytest.mark.parametrize(
    "index, expected",
    [
        # layer 0 (38x38, step 8): cell (0,0) centre 0.5*8/300; side s0 = 0.1
        (0, (4 / 300, 4 / 300, 0.1, 0.1)),
        # second square box sqrt(0.1*0.2)
        (1, (4 / 300, 4 / 300, math.sqrt(0.02), math.sqrt(0.02))),
        # ratio 2: w = 0.1*sqrt(2), h = 0.1/sqrt(2)
        (2, (4 / 300, 4 / 300, 0.1 * math.sqrt(2), 0.1 / math.sqrt(2))),
        # ratio 1/2
        (3, (4 / 300, 4 / 300, 0.1 / math.sqrt(2), 0.1 * math.sqrt(2))),
        # layer 0, row 1, column 2: cell index 1*38+2 = 40, box 0 -> 160; centre (2.5*8, 1.5*8)/300
        (160, (20 / 300, 12 / 300, 0.1, 0.1)),
        # layer 1 (19x19, step 16) starts at 5776: centre 8/300, side 0.2
        (5776, (8 / 300, 8 / 300, 0.2, 0.2)),
        (5777, (8 / 300, 8 / 300, math.sqrt(0.2 * 0.37), math.sqrt(0.2 * 0.37))),
        # ratio 3: w = 0.2*sqrt(3), h = 0.2/sqrt(3)
        (5780, (8 / 300, 8 / 300, 0.2 * math.sqrt(3), 0.2 / math.sqrt(3))),
        # last layer (1x1, step 300): centre 0.5, side 0.88, then sqrt(0.88*1.05)
        (8746, (0.5, 0.5, 0.88, 0.88)),
        (8747, (0.5, 0.5, math.sqrt(0.88 * 1.05), math.sqrt(0.88 * 1.05))),
        (8751, (0.5, 0.5, 0.88 / math.sqrt(3), 0.88 * math.sqrt(3))),
    ],
)
def test_seed_boxes_by_hand(index, expected):
    np.testing.assert_allclose(default_boxes(SEED)[index], expected, rtol=1e-5, atol=1e-7)


def test_caffe_boxes_by_hand():
    boxes = default_boxes(caffe_spec())
    step = 300 / 19  # Caffe PriorBox without a step: image size / map size
    # conv11 layer, cell (0,0): min_size 60 -> 0.2, ratio 2 and 1/2 (flip), no max_size
    np.testing.assert_allclose(boxes[0], (0.5 * step / 300, 0.5 * step / 300, 0.2, 0.2), rtol=1e-5)
    np.testing.assert_allclose(boxes[1, 2:], (0.2 * math.sqrt(2), 0.2 / math.sqrt(2)), rtol=1e-5)
    np.testing.assert_allclose(boxes[2, 2:], (0.2 / math.sqrt(2), 0.2 * math.sqrt(2)), rtol=1e-5)
    # conv13 layer starts at 19*19*3 = 1083: min 105, max 150 -> second box sqrt(105*150)/300
    np.testing.assert_allclose(boxes[1083], (15 / 300, 15 / 300, 0.35, 0.35), rtol=1e-5)
    np.testing.assert_allclose(boxes[1084, 2:], [math.sqrt(105 * 150) / 300] * 2, rtol=1e-5)
    # the last box: 1x1 map, ratio 1/3 of min size 285
    np.testing.assert_allclose(boxes[-1], (0.5, 0.5, 0.95 / math.sqrt(3), 0.95 * math.sqrt(3)), rtol=1e-5)


def test_boxes_not_clipped():
    boxes = default_boxes(SEED)
    assert boxes[:, 2:].max() > 1.0  # the last layer's boxes extend past the image

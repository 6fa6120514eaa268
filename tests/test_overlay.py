import numpy as np

from detector_app.overlay import class_color, draw_detections, line_width, text_color
from models import Detections


def _dets(boxes, names=("dog", "cat"), ids=None):
    boxes = np.asarray(boxes, np.float32)
    n = len(boxes)
    return Detections(boxes, np.full(n, 0.9, np.float32),
                      np.asarray(ids if ids is not None else [0] * n, np.int32), names, (100, 200))


def test_colors_are_stable_and_distinct():
    assert class_color("dog") == class_color("dog")
    assert class_color("dog") != class_color("cat")
    assert text_color((255, 255, 255)) == (0, 0, 0) and text_color((0, 0, 0)) == (255, 255, 255)


def test_draws_box_and_label_inside_the_frame():
    img = np.zeros((100, 200, 3), np.uint8)
    out = draw_detections(img, _dets([[50, 0, 150, 60]]))
    assert img.max() == 0  # the input is untouched
    color = np.array(class_color("dog"))
    assert (out[:, 50] == color).all(axis=1).any()  # left edge drawn in the class colour
    assert out[0:15, 50:100].any()  # the label sits inside the box's top edge: no room above


def test_line_width_scales():
    assert line_width((240, 320, 3)) == 1
    assert line_width((2160, 3840, 3)) == 9


def test_no_detections_returns_copy():
    img = np.zeros((10, 10, 3), np.uint8)
    out = draw_detections(img, _dets(np.zeros((0, 4))))
    assert out is not img and not out.any()

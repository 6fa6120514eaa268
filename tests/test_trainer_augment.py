"""SSD augmentation keeps boxes on the pixels they label, and is a function of its seed."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.augment import AugmentConfig, augment, expand, hflip, photometric, random_crop

COLOURS = np.array([[0, 0, 255], [0, 255, 0], [255, 0, 0], [0, 255, 255]], np.uint8)
GEOMETRY_ONLY = AugmentConfig(photometric=False, fill=(0, 0, 0))


def drawn_scene():
    """A black 200x150 image with four filled rectangles of distinct colours; their boxes in
    continuous pixel coordinates (the rectangle covers pixels x1..x2-1, y1..y2-1)."""
    image = np.zeros((150, 200, 3), np.uint8)
    boxes = np.array([[10, 12, 70, 60], [120, 20, 190, 90], [30, 90, 80, 140], [150, 110, 170, 130]], np.float32)
    for colour, (x1, y1, x2, y2) in zip(COLOURS, boxes.astype(int)):
        image[y1:y2, x1:x2] = colour
    return image, boxes, np.arange(len(boxes))


def coloured_pixels(image: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Pixels that are clearly this rectangle's colour (interpolated edges excluded)."""
    return np.all(np.abs(image.astype(int) - colour.astype(int)) < 60, axis=-1)


@pytest.mark.parametrize("seed", range(40))
def test_boxes_enclose_the_drawn_pixels(seed):
    image, boxes, labels = drawn_scene()
    h, w = 96, 128  # a non-square input, so x and y scaling are both exercised
    out, out_boxes, out_labels = augment(image, boxes, labels, np.random.default_rng(seed), GEOMETRY_ONLY, (h, w))
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    assert out_boxes.dtype == np.float32 and np.all((out_boxes >= 0) & (out_boxes <= 1))
    for box, label in zip(out_boxes, out_labels):
        x1, y1, x2, y2 = box * [w, h, w, h]
        ys, xs = np.nonzero(coloured_pixels(out, COLOURS[label]))
        assert len(xs), f"box {label} kept but none of its pixels is visible"
        # every pixel of the rectangle is inside its box (1.5 px of interpolation slack) ...
        assert xs.min() >= x1 - 1.5 and xs.max() + 1 <= x2 + 1.5, (seed, label)
        assert ys.min() >= y1 - 1.5 and ys.max() + 1 <= y2 + 1.5, (seed, label)
        # ... and the box is tight around them
        assert xs.min() <= x1 + 1.5 and xs.max() + 1 >= x2 - 1.5, (seed, label)
        assert ys.min() <= y1 + 1.5 and ys.max() + 1 >= y2 - 1.5, (seed, label)


def test_same_seed_same_result_and_seeds_differ():
    image, boxes, labels = drawn_scene()
    cfg = AugmentConfig()
    a = augment(image, boxes, labels, np.random.default_rng(7), cfg, (64, 64))
    b = augment(image, boxes, labels, np.random.default_rng(7), cfg, (64, 64))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    outs = {augment(image, boxes, labels, np.random.default_rng(s), cfg, (64, 64))[0].tobytes() for s in range(8)}
    assert len(outs) > 4


def test_each_step_moves_boxes_with_pixels():
    image, boxes, labels = drawn_scene()
    flipped, fboxes = hflip(image, boxes)
    np.testing.assert_allclose(fboxes[0], [200 - 70, 12, 200 - 10, 60])
    assert np.array_equal(flipped[12:60, 130:190], image[12:60, 10:70][:, ::-1])

    big, eboxes = expand(image, boxes, np.random.default_rng(1), GEOMETRY_ONLY)
    dx, dy = eboxes[0, 0] - boxes[0, 0], eboxes[0, 1] - boxes[0, 1]
    assert np.array_equal(big[int(dy):int(dy) + 150, int(dx):int(dx) + 200], image)

    rng = np.random.default_rng(3)
    for _ in range(20):
        crop, cboxes, clabels = random_crop(image, boxes, labels, rng, GEOMETRY_ONLY)
        assert crop.shape[0] >= 1 and crop.shape[1] >= 1
        assert np.all(cboxes[:, 2] <= crop.shape[1]) and np.all(cboxes[:, 3] <= crop.shape[0])
        assert np.all(cboxes >= 0) and len(cboxes) == len(clabels)


def test_photometric_changes_colours_not_shape():
    image, _, _ = drawn_scene()
    out = photometric(image, np.random.default_rng(0), AugmentConfig())
    assert out.shape == image.shape and out.dtype == np.uint8
    changed = [not np.array_equal(photometric(image, np.random.default_rng(s), AugmentConfig()), image) for s in range(6)]
    assert any(changed)


def test_image_without_objects_is_fine():
    image, _, _ = drawn_scene()
    out, boxes, labels = augment(image, np.zeros((0, 4), np.float32), np.zeros((0,), int),
                                 np.random.default_rng(0), AugmentConfig(), (64, 64))
    assert out.shape == (64, 64, 3) and boxes.shape == (0, 4) and labels.shape == (0,)

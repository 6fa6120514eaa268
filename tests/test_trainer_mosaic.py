"""Mosaic augmentation: boxes stay on their pixels, cut objects are ignored, partners share a folder."""

from __future__ import annotations

import numpy as np
import pytest
from trainer_helpers import make_voc_folder, tiny_spec

from trainer.augment import AugmentConfig
from trainer.config import TrainConfig
from trainer.errors import DataError
from trainer.loader import BatchLoader
from trainer.mosaic import MIN_VISIBLE, mosaic
from trainer.scan import scan_folders

# one colour per (picture, object): 4 pictures x 2 objects, all far from the grey fill
COLOURS = np.array([[0, 0, 255], [0, 255, 0], [255, 0, 0], [0, 255, 255],
                    [255, 0, 255], [255, 255, 0], [0, 0, 0], [255, 255, 255]], np.uint8)


def picture(k: int, size_wh: tuple[int, int]):
    """A mid-grey-free picture (dark blue-grey background) with two filled rectangles in the
    colours 2k and 2k+1; labels 2k+1 and 2k+2 (1-based, as the loader's)."""
    w, h = size_wh
    image = np.full((h, w, 3), (90, 60, 30), np.uint8)
    boxes = np.array([[0.1 * w, 0.1 * h, 0.45 * w, 0.5 * h], [0.55 * w, 0.45 * h, 0.95 * w, 0.95 * h]], np.float32)
    boxes = np.round(boxes)
    for j, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        image[y1:y2, x1:x2] = COLOURS[2 * k + j]
    return image, boxes, np.array([2 * k + 1, 2 * k + 2], np.int32)


def tiles():
    return [picture(0, (200, 150)), picture(1, (120, 160)), picture(2, (160, 160)), picture(3, (90, 60))]


def test_needs_four_pictures():
    with pytest.raises(ValueError, match="exactly 4"):
        mosaic(tiles()[:3], np.random.default_rng(0))


@pytest.mark.parametrize("seed", range(25))
def test_boxes_follow_their_pixels_and_cut_objects_are_ignored(seed):
    canvas, boxes, labels = mosaic(tiles(), np.random.default_rng(seed))
    assert canvas.shape == (400, 400, 3) and canvas.dtype == np.uint8  # 2x the first picture's longer side
    assert boxes.dtype == np.float32 and labels.dtype == np.int32 and len(boxes) == len(labels)
    assert np.all(boxes[:, 2:4] > boxes[:, 0:2])
    assert np.all((boxes >= 0) & (boxes <= 400))
    found = set()
    for box, label in zip(boxes, labels):
        colour = COLOURS[abs(int(label)) - 1]
        ys, xs = np.nonzero(np.all(np.abs(canvas.astype(int) - colour.astype(int)) < 40, axis=-1))
        assert len(xs), f"label {label} kept but none of its pixels is on the canvas"
        x1, y1, x2, y2 = box
        # the visible rectangle and its box agree within the resize's slack
        assert abs(xs.min() - x1) <= 2 and abs(xs.max() + 1 - x2) <= 2, (seed, label, box)
        assert abs(ys.min() - y1) <= 2 and abs(ys.max() + 1 - y2) <= 2, (seed, label, box)
        found.add(abs(int(label)))
    # an object whose pixels are on the canvas is never dropped
    for k, colour in enumerate(COLOURS):
        if np.all(np.abs(canvas.astype(int) - colour.astype(int)) < 40, axis=-1).sum() > 4:
            assert k + 1 in found, (seed, k)


def test_visibility_decides_between_label_and_ignore():
    # a centre near the canvas' edge cuts the top-left picture's objects hard: drawn by seeds
    seen_ignored = seen_kept = False
    for seed in range(60):
        tl = tiles()
        canvas, boxes, labels = mosaic(tl, np.random.default_rng(seed))
        for box, label in zip(boxes, labels):
            k = abs(int(label)) - 1
            original = tl[k // 2][1][k % 2]
            # area on the canvas against the object's area at its scale in the mosaic
            scale = 200 / max(tl[k // 2][0].shape[:2])
            full = np.prod(original[2:4] - original[0:2]) * scale * scale
            share = np.prod(box[2:4] - box[0:2]) / full
            if label < 0:
                seen_ignored = True
                assert share < MIN_VISIBLE + 0.05, (seed, label, share)
            else:
                seen_kept = True
                assert share >= MIN_VISIBLE - 0.05, (seed, label, share)
    assert seen_ignored and seen_kept


def test_same_seed_same_mosaic():
    a = mosaic(tiles(), np.random.default_rng(3))
    b = mosaic(tiles(), np.random.default_rng(3))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], mosaic(tiles(), np.random.default_rng(4))[0])


def test_loader_takes_mosaic_partners_from_the_same_folder(tmp_path, monkeypatch):
    import trainer.loader as loader_module

    hats = make_voc_folder(tmp_path / "hats", 6, classes=("redbox",), seed=0)
    discs = make_voc_folder(tmp_path / "discs", 6, classes=("bluedisc",), seed=1)
    samples = [s for r in scan_folders([hats, discs], workers=1) for s in r.samples]
    classes = ("bluedisc", "redbox")
    spec = tiny_spec(classes)
    loaded: list = []
    real_load = loader_module.load_sample
    monkeypatch.setattr(loader_module, "load_sample", lambda s: (loaded.append(s.source), real_load(s))[1])
    cfg = AugmentConfig(mosaic_prob=1.0, crop=False, flip_prob=0.0)
    with BatchLoader(samples, classes, spec, 4, seed=2, augment_config=cfg, workers=1) as one:
        a = list(one.epoch(0))
    # one picture and its three partners per image, all from one folder
    assert len(loaded) == 4 * 4 * len(a)
    for k in range(0, len(loaded), 4):
        assert len(set(loaded[k:k + 4])) == 1, loaded[k:k + 4]
    assert len(set(loaded)) == 2
    for batch in a:
        for row, index in enumerate(batch.indices):
            own = 1 + classes.index(samples[index].names[0])
            positives = set(batch.class_targets[row][batch.class_targets[row] > 0].tolist())
            assert positives == {own}, (index, positives)  # the folder's class, and only it
    monkeypatch.setattr(loader_module, "load_sample", real_load)
    with BatchLoader(samples, classes, spec, 4, seed=2, augment_config=cfg, workers=3) as three, \
            BatchLoader(samples, classes, spec, 4, seed=2, augment_config=AugmentConfig(crop=False, flip_prob=0.0),
                        workers=1) as plain:
        b, c = list(three.epoch(0)), list(plain.epoch(0))
    for x, y in zip(a, b):  # deterministic whatever the thread count
        np.testing.assert_array_equal(x.images, y.images)
        np.testing.assert_array_equal(x.class_targets, y.class_targets)
    # with four pictures in each, more default boxes are positive than with one
    assert sum(int((x.class_targets > 0).sum()) for x in a) != sum(int((x.class_targets > 0).sum()) for x in c)
    # the folder index is built for mosaics only: a run without them pays nothing for it
    assert three._by_source is not None and plain._by_source is None


def test_config_checks_the_share_and_refuses_it_without_augmentation(tmp_path):
    with pytest.raises(DataError, match="mosaic=1.5"):
        TrainConfig(data=(str(tmp_path),), out=str(tmp_path / "run"), mosaic=1.5).validate()
    with pytest.raises(DataError, match="--no-augment"):
        TrainConfig(data=(str(tmp_path),), out=str(tmp_path / "run"), mosaic=0.5, augment=False).validate()
    assert TrainConfig(data=(str(tmp_path),), out=str(tmp_path / "run"), mosaic=0.5).validate().mosaic == 0.5

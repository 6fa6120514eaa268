"""The batch loader: deterministic whatever the threads, resumable mid-epoch, bounded, masks."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from trainer_helpers import make_voc_folder, tiny_spec

from trainer.augment import AugmentConfig
from trainer.loader import BatchLoader, ordered_map, source_masks
from trainer.scan import scan_folders
from trainer.split import read_split, split_samples, write_split


def _samples(tmp_path, n=10, seed=0, classes=("redbox", "bluedisc"), name="data"):
    make_voc_folder(tmp_path / name, n, classes=classes, seed=seed)
    return scan_folders([tmp_path / name], workers=2)[0].samples


def _all(loader, epoch, start=0):
    return [(b.images.copy(), b.class_targets.copy(), b.indices.copy()) for b in loader.epoch(epoch, start)]


def test_batches_do_not_depend_on_thread_count_and_resume_mid_epoch(tmp_path):
    samples = _samples(tmp_path)
    spec = tiny_spec(["bluedisc", "redbox"])
    one = BatchLoader(samples, spec.class_names, spec, 3, seed=5, workers=1)
    four = BatchLoader(samples, spec.class_names, spec, 3, seed=5, workers=4, prefetch=1)
    with one, four:
        a, b = _all(one, epoch=2), _all(four, epoch=2)
        assert len(a) == one.steps_per_epoch == 3  # 10 // 3: the partial batch is dropped
        for x, y in zip(a, b):
            for u, v in zip(x, y):
                np.testing.assert_array_equal(u, v)
        tail = _all(four, epoch=2, start=1)
        for x, y in zip(a[1:], tail):
            np.testing.assert_array_equal(x[0], y[0])
        assert not np.array_equal(_all(one, epoch=3)[0][2], a[0][2])  # a new shuffle each epoch
        first = a[0]
        assert first[0].shape == (3, 128, 128, 3) and first[0].dtype == np.uint8
        assert first[1].shape == (3, 340) and first[1].max() >= 1


def test_validation_batches_are_in_order_and_padded(tmp_path):
    samples = _samples(tmp_path, n=5)
    spec = tiny_spec(["bluedisc", "redbox"])
    with BatchLoader(samples, spec.class_names, spec, 4, augment_config=None, workers=2) as loader:
        batches = list(loader.epoch(0))
    assert [b.count for b in batches] == [4, 1]
    assert batches[1].images.shape[0] == 4 and list(batches[1].indices) == [4, -1, -1, -1]
    assert list(batches[0].indices) == [0, 1, 2, 3]


def test_ordered_map_keeps_order_and_bounds_work_in_flight():
    running, most = [0], [0]
    lock = threading.Lock()

    def work(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.002 * (i % 3))
        with lock:
            running[0] -= 1
        return i * i

    with ThreadPoolExecutor(8) as pool:
        out = list(ordered_map(work, range(40), pool, lookahead=3))
    assert out == [i * i for i in range(40)]
    assert most[0] <= 3


def test_class_masks_follow_each_folders_classes(tmp_path):
    hats = _samples(tmp_path, n=4, classes=("redbox",), name="hats")
    animals = _samples(tmp_path, n=4, seed=1, classes=("bluedisc", "greenbox"), name="animals")
    classes = ("bluedisc", "greenbox", "redbox")
    masks = source_masks(hats + animals, classes, enabled=True)
    np.testing.assert_array_equal(masks[hats[0].source], [1, 0, 0, 1])
    np.testing.assert_array_equal(masks[animals[0].source], [1, 1, 1, 0])
    assert all(m.all() for m in source_masks(hats + animals, classes, enabled=False).values())
    spec = tiny_spec(classes)
    with BatchLoader(hats + animals, classes, spec, 8, augment_config=AugmentConfig(), masks=masks) as loader:
        batch = next(loader.epoch(0))
    for row, index in enumerate(batch.indices):
        np.testing.assert_array_equal(batch.class_mask[row], masks[(hats + animals)[index].source])


def test_split_is_deterministic_per_folder_keeps_duplicates_together_and_is_recorded(tmp_path):
    a = _samples(tmp_path, n=20, name="a")
    b = _samples(tmp_path, n=7, seed=3, name="b")
    samples = a + b
    train, val = split_samples(samples, 0.15, seed=0)
    assert (train, val) == split_samples(samples, 0.15, seed=0)
    assert sorted(train + val) == list(range(len(samples)))
    assert sum(samples[i].source == a[0].source for i in val) == 3  # round(0.15 * 20)
    assert sum(samples[i].source == b[0].source for i in val) == 1  # at least one per folder
    write_split(tmp_path / "run", samples, train, val)
    assert read_split(tmp_path / "run", samples)[:2] == (train, val)
    assert (tmp_path / "run" / "val_images.txt").read_text().count("\n") == len(val)


def test_difficult_objects_are_ignored_only_when_asked(tmp_path):
    import re

    root = make_voc_folder(tmp_path / "d", 4)
    first = sorted((root / "Annotations").glob("*.xml"))[0]
    # mark the first image's objects difficult (labelImg's check box)
    first.write_text(re.sub(r"<difficult>0</difficult>", "<difficult>1</difficult>", first.read_text()))
    samples = scan_folders([root], workers=1)[0].samples
    marked = [i for i, s in enumerate(samples) if s.difficult.any()]
    assert marked and all(samples[i].difficult.all() for i in marked)
    spec = tiny_spec(["bluedisc", "redbox"])
    kw = dict(augment_config=None, workers=1)
    with BatchLoader(samples, spec.class_names, spec, 4, **kw) as plain, \
            BatchLoader(samples, spec.class_names, spec, 4, ignore_difficult=True, **kw) as ignoring:
        a, b = next(plain.epoch(0)), next(ignoring.epoch(0))
    for row in range(4):
        if row in marked:  # learned as usual by default; with the option its boxes are ignored
            assert (a.class_targets[row] > 0).any() and not (a.class_targets[row] < 0).any()
            np.testing.assert_array_equal(b.class_targets[row] == -1, a.class_targets[row] > 0)
        else:
            np.testing.assert_array_equal(a.class_targets[row], b.class_targets[row])

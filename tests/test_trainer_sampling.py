"""Oversampling (--oversample CLASS=N): repeat factors, fixed-length reproducible epochs,
each repeat augmented on its own, and the option's errors."""

from __future__ import annotations

import numpy as np
import pytest
from trainer_helpers import make_voc_folder, tiny_spec

import main
from trainer.errors import DataError
from trainer.loader import BatchLoader
from trainer.sampling import epoch_length, epoch_order, occurrences, parse_oversample, repeat_factors
from trainer.scan import Sample, scan_folders


def _sample(*names: str) -> Sample:
    return Sample(source="s", key="k", image_path="x.jpg", annotation_path="x.xml", image_hw=(10, 10),
                  boxes=np.zeros((len(names), 4), np.float32), names=names,
                  difficult=np.zeros((len(names),), bool), digest="0")


def test_parse_accepts_factors_and_names_the_bad_part():
    assert parse_oversample("person=2, cow=1.5") == {"person": 2.0, "cow": 1.5}
    for bad, words in [("person", "person"), ("person=0.5", "from 1 to 10"), ("person=x", "person=x"),
                       ("=2", "=2"), ("person=11", "from 1 to 10"), ("a=2,a=3", "twice"), (" , ", "e.g.")]:
        with pytest.raises(DataError) as err:
            parse_oversample(bad)
        assert "--oversample" in str(err.value) and words in str(err.value), (bad, str(err.value))


def test_an_image_takes_the_largest_factor_of_its_classes():
    samples = [_sample("person", "car"), _sample("car"), _sample(), _sample("cow", "person")]
    r = repeat_factors(samples, {"person": 2.0, "cow": 3.0}, ["person", "car", "cow"])
    assert r.tolist() == [2.0, 1.0, 1.0, 3.0]
    with pytest.raises(DataError, match="persn is not among the classes"):
        repeat_factors(samples, {"persn": 2.0}, ["person", "car"])


def test_epoch_has_a_fixed_length_and_the_expected_repeats():
    repeats = np.array([1.0] * 6 + [2.0] * 2 + [1.5] * 4)
    assert epoch_length(repeats) == 6 + 4 + 4 + 2
    seen = np.zeros(len(repeats))
    for epoch in range(200):
        order = epoch_order(repeats, np.random.default_rng([0, epoch]))
        assert len(order) == 16
        counts = np.bincount(order, minlength=len(repeats))
        assert (counts[:6] == 1).all() and (counts[6:8] == 2).all() and set(counts[8:]) <= {1, 2}
        assert counts[8:].sum() == 6  # two of the four 1.5 images twice
        seen += counts
    assert np.allclose(seen[8:] / 200, 1.5, atol=0.15)  # on average as asked
    same = epoch_order(repeats, np.random.default_rng([0, 7]))
    np.testing.assert_array_equal(same, epoch_order(repeats, np.random.default_rng([0, 7])))
    assert occurrences(np.array([3, 1, 3, 3, 1])).tolist() == [0, 0, 1, 2, 1]


def test_loader_repeats_images_each_with_its_own_augmentation(tmp_path):
    make_voc_folder(tmp_path / "d", 8, classes=("redbox", "bluedisc"), seed=2)
    samples = scan_folders([tmp_path / "d"], workers=2)[0].samples
    spec = tiny_spec(["bluedisc", "redbox"])
    repeats = repeat_factors(samples, {"bluedisc": 3.0}, spec.class_names)
    with_blue = int((repeats == 3.0).sum())
    assert 0 < with_blue < len(samples)
    plain = BatchLoader(samples, spec.class_names, spec, 2, seed=1, workers=2)
    over = BatchLoader(samples, spec.class_names, spec, 2, seed=1, workers=2, repeats=repeats)
    with plain, over:
        assert plain.steps_per_epoch == len(samples) // 2
        assert over.steps_per_epoch == (len(samples) + 2 * with_blue) // 2
        batches = list(over.epoch(0))
        assert len(batches) == over.steps_per_epoch
        images = np.concatenate([b.images for b in batches])
        indices = np.concatenate([b.indices for b in batches])
        blue = int(np.flatnonzero(repeats == 3.0)[0])
        copies = images[indices == blue]
        if len(copies) >= 2:  # the last partial batch may drop a copy
            assert not np.array_equal(copies[0], copies[1])
        counts = np.bincount(indices, minlength=len(samples))
        assert counts.max() <= 3 and counts[repeats == 1.0].max() <= 1
        tail = list(over.epoch(0, start_step=1))  # resuming mid-epoch gives the same batches
        np.testing.assert_array_equal(tail[0].images, batches[1].images)
    with pytest.raises(ValueError, match="one factor per sample"):
        BatchLoader(samples, spec.class_names, spec, 2, repeats=np.ones(3))


def test_unknown_class_is_refused_before_the_run_folder_is_written(tmp_path, capsys):
    folder = make_voc_folder(tmp_path / "voc", 4, seed=3)
    base = ["train", "--data", str(folder), "--no-progress", "--epochs", "1", "--classes", "bluedisc"]
    assert main.main(base + ["--out", str(tmp_path / "a"), "--oversample", "bluedisk=2"]) == 2
    assert main.main(base + ["--out", str(tmp_path / "b"), "--oversample", "bluedisc=20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "bluedisk is not among the classes trained (bluedisc)" in err[0]
    assert "--oversample" in err[1] and "from 1 to 10" in err[1]
    assert not (tmp_path / "a" / "config.yaml").exists() and not (tmp_path / "b" / "config.yaml").exists()


def test_a_run_with_oversampling_records_it_and_trains(tmp_path):
    import yaml
    from trainer_helpers import write_spec_yaml

    from trainer.config import TrainConfig
    from trainer.loop import train

    folder = make_voc_folder(tmp_path / "voc", 12, seed=1)
    spec = write_spec_yaml(tmp_path / "spec.yaml", ["bluedisc", "redbox"])
    lines: list[str] = []
    cfg = TrainConfig(data=(str(folder),), out=str(tmp_path / "run"), spec_file=str(spec), epochs=1, batch_size=4,
                      val_split=0.25, optimizer="adam", lr=1e-3, workers=2, progress_bar=False, oversample="redbox=2")
    result = train(cfg, log=lines.append)
    assert result.status == "finished"
    said = [line for line in lines if line.startswith("oversampling redbox x2")]
    assert len(said) == 1 and "images per epoch instead of 9" in said[0], lines
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert recorded["settings"]["oversample"] == "redbox=2"

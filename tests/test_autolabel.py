"""`autolabel`: a model's detections added to a copy of a labelled folder, the source untouched."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from trainer_helpers import make_voc_folder, write_spec_yaml

import main
from models import Detections
from trainer.autolabel import AutolabelConfig, Picture, autolabel, copy_record, new_objects
from trainer.config import TrainConfig
from trainer.errors import DataError
from trainer.loader import source_masks
from trainer.loop import train
from trainer.scan import scan_folders
from trainer.split import split_samples

CLASSES = ("redbox", "bluedisc", "person")


def _detections(rows, image_size=(120, 160)) -> Detections:
    """rows: (class name, score, x1, y1, x2, y2) in pixels."""
    return Detections(
        boxes=np.asarray([r[2:] for r in rows], np.float32).reshape(-1, 4),
        scores=np.asarray([r[1] for r in rows], np.float32),
        class_ids=np.asarray([CLASSES.index(r[0]) for r in rows], np.int64),
        class_names=CLASSES,
        image_size=image_size,
    )


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_new_objects_sorts_detections_into_added_to_review_known_and_dropped():
    labelled = np.array([[10, 10, 50, 90], [110, 40, 158, 118]], np.float32)
    picture = Picture(Path("a.png"), None, labelled, ("person", "redbox"))
    dets = _detections([
        ("person", 0.9, 12, 10, 50, 88),     # the labelled person again: known, not added
        ("person", 0.85, 112, 40, 158, 116),  # on the labelled redbox: the redbox mistaken
        ("person", 0.8, 60, 10, 100, 90),    # a new person: added
        ("person", 0.3, 20, 60, 60, 118),    # uncertain: added as difficult
        ("person", 0.2, 5, 5, 20, 20),       # below --review-conf: dropped
        ("redbox", 0.95, 0, 0, 30, 30),      # a class not asked for: dropped
    ])
    cfg = AutolabelConfig(("person",), conf=0.5, review_conf=0.25)
    added, known, mistaken = new_objects(picture, dets, cfg)
    assert known == ["person"] and mistaken == ["person"]
    assert [(o.name, round(o.score, 2), o.difficult) for o in added] == [("person", 0.8, False), ("person", 0.3, True)]
    assert added[0].box == (60.0, 10.0, 100.0, 90.0)
    # stricter rules make those boxes new objects too
    added, known, mistaken = new_objects(picture, dets, AutolabelConfig(("person",), same_iou=0.99, other_iou=None))
    assert not known and not mistaken and len(added) == 4
    with pytest.raises(DataError, match="review-conf"):
        AutolabelConfig(("person",), conf=0.3, review_conf=0.4).validate()


def _stub_detect(pictures):
    """A person at a fixed place in every picture (score 0.9) and an uncertain one (0.3)."""
    return [_detections([("person", 0.9, 20, 20, 60, 110), ("person", 0.3, 100, 30, 130, 100)]) for _ in pictures]


def test_autolabel_writes_a_labelled_copy_and_keeps_the_source_and_the_split(tmp_path):
    source = make_voc_folder(tmp_path / "data" / "hats", 12)
    before = _digests(source)
    scan = scan_folders([source])[0]
    pictures = [Picture(Path(s.image_path), Path(s.annotation_path), s.boxes, s.names) for s in scan.samples]
    out = tmp_path / "labelled" / "hats"
    cfg = AutolabelConfig(("person",))
    summary = autolabel(pictures, _stub_detect, cfg, Path(scan.root), out, scan.layout, {"model": "stub"})
    assert summary.images == 12 and summary.added == {"person": 12} and summary.to_review == {"person": 12}
    assert _digests(source) == before  # the source is never written
    report = json.loads((out / "autolabel.json").read_text())
    assert report["status"] == "finished" and report["added"] == {"person": 12}

    copy = scan_folders([out])[0]
    assert copy.layout == "voc2007" and len(copy.samples) == 12 and not copy.issues
    for old, new in zip(scan.samples, copy.samples):
        assert new.digest == old.digest and new.key == old.key
        assert new.names[:len(old.names)] == old.names  # every labelled object kept, in order
        np.testing.assert_allclose(new.boxes[:len(old.names)], old.boxes)
        assert new.names[len(old.names):] == ("person", "person")
        assert list(new.difficult[len(old.names):]) == [False, True]
        # whole pixels, 1-based as VOC counts them
        np.testing.assert_allclose(new.boxes[len(old.names)], [21, 21, 61, 111])
    # the same folder name gives the same split, so no validation image is trained on
    assert split_samples(copy.samples, 0.25, 0) == split_samples(scan.samples, 0.25, 0)

    # run again (e.g. after an interruption): the same result, nothing added twice
    autolabel(pictures, _stub_detect, cfg, Path(scan.root), out, scan.layout, {"model": "stub"})
    assert [s.names for s in scan_folders([out])[0].samples] == [s.names for s in copy.samples]


def test_training_records_a_labelled_copy_and_refuses_an_unfinished_one(tmp_path):
    source = make_voc_folder(tmp_path / "data" / "hats", 6)
    scan = scan_folders([source])[0]
    pictures = [Picture(Path(s.image_path), Path(s.annotation_path), s.boxes, s.names) for s in scan.samples]
    out = tmp_path / "labelled" / "hats"
    autolabel(pictures, _stub_detect, AutolabelConfig(("person",)), Path(scan.root), out, scan.layout,
              {"source": str(source), "model": "/m/stub.keras", "tiles": "2x2"})
    assert copy_record(source) is None  # an ordinary labelled folder
    assert copy_record(out)["model"] == "/m/stub.keras" and copy_record(out)["added"] == {"person": 6}
    spec = write_spec_yaml(tmp_path / "spec.yaml", CLASSES)

    def run(name: str) -> TrainConfig:
        return TrainConfig(data=(str(out), str(source)), out=str(tmp_path / name), spec_file=str(spec), epochs=1,
                           batch_size=4, val_split=0.25, workers=1, progress_bar=False)

    train(run("run"), log=lambda _: None)
    summary = yaml.safe_load((tmp_path / "run" / "summary.yaml").read_text())
    assert list(summary["labelled_copies"]) == [str(out)]  # the copy, not the ordinary folder
    assert summary["labelled_copies"][str(out)]["config"]["classes"] == ["person"]

    # --copies-positive-only needs the record of the source's classes (older copies lack it)
    with pytest.raises(DataError, match="older `main.py autolabel`"):
        train(dataclasses.replace(run("po0"), copies_positive_only=True), log=lambda _: None)
    with pytest.raises(DataError, match="none of the --data folders is an `autolabel` copy"):
        train(dataclasses.replace(run("po1"), data=(str(source),), copies_positive_only=True), log=lambda _: None)
    record = json.loads((out / "autolabel.json").read_text())
    (out / "autolabel.json").write_text(json.dumps({**record, "source_classes": ["bluedisc", "redbox"]}))
    lines: list[str] = []
    train(dataclasses.replace(run("po2"), copies_positive_only=True), log=lines.append)
    assert any("person of" in line and "learned only where boxed" in line for line in lines), lines
    # --positive-only-copy names copies one by one; an ordinary folder has nothing positive-only
    with pytest.raises(DataError, match="is not an `autolabel` copy"):
        train(dataclasses.replace(run("po3"), positive_only_copies=(str(source),)), log=lambda _: None)
    with pytest.raises(DataError, match="not one of the --data folders"):
        dataclasses.replace(run("po4"), positive_only_copies=(str(tmp_path / "elsewhere"),)).validate()
    with pytest.raises(DataError, match="give one of the two"):
        dataclasses.replace(run("po5"), copies_positive_only=True, positive_only_copies=(str(out),)).validate()
    lines = []
    train(dataclasses.replace(run("po6"), positive_only_copies=(str(out),)), log=lines.append)
    assert any("person of" in line and "learned only where boxed" in line for line in lines), lines
    # its mask: the copy labels redbox and bluedisc; its persons teach person only where boxed
    copy_scan, source_scan = scan_folders([out, source])
    masks = source_masks(copy_scan.samples + source_scan.samples, CLASSES, True, {copy_scan.root: {"person"}})
    assert list(masks[copy_scan.root]) == [1, 1, 1, 0] and list(masks[source_scan.root]) == [1, 1, 1, 0]

    # a labelling stopped half way (some files still without the new boxes) is not trained on
    record = json.loads((out / "autolabel.json").read_text())
    (out / "autolabel.json").write_text(json.dumps({**record, "status": "running"}))
    with pytest.raises(DataError, match="did not finish.*run the same `main.py autolabel` command again"):
        train(run("run2"), log=lambda _: None)
    (out / "autolabel.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot be read"):
        copy_record(out)


def test_unlabelled_images_of_a_labelimg_folder_get_new_annotation_files(tmp_path):
    source = make_voc_folder(tmp_path / "mine", 3, layout="flat")
    (source / "annotations" / "img0001.xml").unlink()  # an image nobody labelled yet
    scan = scan_folders([source])[0]
    unlabelled = [Path(i.file) for i in scan.issues if i.detail and i.detail.get("unlabelled_image")]
    assert [p.name for p in unlabelled] == ["img0001.png"]
    pictures = [Picture(Path(s.image_path), Path(s.annotation_path), s.boxes, s.names) for s in scan.samples]
    pictures.append(Picture(unlabelled[0], None, np.zeros((0, 4), np.float32), ()))
    out = tmp_path / "out" / "mine"
    summary = autolabel(pictures, _stub_detect, AutolabelConfig(("person",)), Path(scan.root), out, scan.layout, {})
    assert summary.new_annotation_files == 1
    new = [s for s in scan_folders([out])[0].samples if s.key.endswith("img0001.png")]
    assert len(new) == 1 and new[0].names == ("person", "person") and new[0].image_hw == (120, 160)


def test_refuses_to_write_into_the_source_or_a_foreign_folder(tmp_path):
    source = make_voc_folder(tmp_path / "src", 2)
    scan = scan_folders([source])[0]
    pictures = [Picture(Path(s.image_path), Path(s.annotation_path), s.boxes, s.names) for s in scan.samples]
    cfg = AutolabelConfig(("person",))
    for out in (source, source / "Annotations" / "new"):
        with pytest.raises(DataError, match="apart from"):
            autolabel(pictures, _stub_detect, cfg, Path(scan.root), out, scan.layout, {})
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.txt").write_text("precious")
    with pytest.raises(DataError, match="not an autolabel output"):
        autolabel(pictures, _stub_detect, cfg, Path(scan.root), foreign, scan.layout, {})
    assert (foreign / "chapter1.txt").read_text() == "precious"


@pytest.fixture(scope="module")
def dog_model(tmp_path_factory):
    from models import build_model, seed_spec
    from models.model_file import save_model
    from tests.media import force_class

    model = force_class(build_model(seed_spec(["dog", "cat"], alpha=0.25)), "dog", logit=6.0)
    return save_model(model, tmp_path_factory.mktemp("m") / "dog.keras")


def test_cli_labels_the_classes_the_folder_lacks(tmp_path, dog_model, capfd):
    source = make_voc_folder(tmp_path / "boxes", 4)
    out = tmp_path / "labelled" / "boxes"
    rc = main.main(["autolabel", str(source), "--out", str(out), "--model", str(dog_model), "--no-progress"])
    captured = capfd.readouterr()
    assert rc == 0, captured.err
    assert "dog, cat" in captured.out  # the default: every class the folder does not label
    report = json.loads((out / "autolabel.json").read_text())
    assert report["status"] == "finished" and report["added"].get("dog", 0) >= 4
    assert report["source_classes"] == ["bluedisc", "redbox"]  # what --copies-positive-only leaves to the copy
    samples = scan_folders([out])[0].samples
    assert all("dog" in s.names for s in samples)
    # a class the model does not know is refused with the list it does know
    rc = main.main(["autolabel", str(source), "--out", str(out), "--model", str(dog_model), "--classes", "person"])
    assert rc == 2 and "it detects dog, cat" in capfd.readouterr().err
    # the source as the output: refused in one line, exit 2
    rc = main.main(["autolabel", str(source), "--out", str(source), "--model", str(dog_model)])
    assert rc == 2 and "must be a folder apart from" in capfd.readouterr().err

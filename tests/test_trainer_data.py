"""Reading users' labelled folders: layouts, hostile XML, planted defects, check-data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from trainer_helpers import make_voc_folder, voc_xml

import main
from trainer.cleaning import clean_objects
from trainer.errors import DataError
from trainer.folders import discover
from trainer.scan import scan_folders
from trainer.voc_xml import AnnotationError, parse_annotation_bytes

ROOT = Path(__file__).resolve().parents[1]


def _kinds(scan):
    out = {}
    for issue in scan.issues:
        out.setdefault(issue.kind, []).append(issue)
    return out


def test_layouts_are_discovered(tmp_path):
    voc = make_voc_folder(tmp_path / "voc", 3, layout="voc2007", seed=0)
    flat = make_voc_folder(tmp_path / "flat", 3, layout="flat", seed=1)
    side = make_voc_folder(tmp_path / "side", 3, layout="side-by-side", seed=2)
    found = {p.name: discover(p) for p in (voc, flat, side)}
    assert {k: v.layout for k, v in found.items()} == {"voc": "voc2007", "flat": "flat", "side": "side-by-side"}
    scans = scan_folders([voc, flat, side], workers=2)
    assert [len(s.samples) for s in scans] == [3, 3, 3]
    assert all(not s.issues for s in scans)
    sample = scans[0].samples[0]
    assert sample.boxes.dtype == np.float32 and sample.boxes.shape[1] == 4
    assert sample.image_hw == (120, 160)


def test_missing_or_empty_folder_is_a_user_error(tmp_path):
    with pytest.raises(DataError, match="nope: no such folder"):
        discover(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no labelled images found"):
        discover(tmp_path / "empty")


def test_hostile_xml_is_refused(tmp_path):
    laughs = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<annotation><filename>&lol3;</filename></annotation>"""
    with pytest.raises(AnnotationError, match="unsafe XML"):
        parse_annotation_bytes(laughs, "laughs.xml")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    external = f"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file://{secret}">]>
<annotation><filename>&xxe;</filename></annotation>""".encode()
    with pytest.raises(AnnotationError, match="unsafe XML"):
        parse_annotation_bytes(external, "xxe.xml")
    with pytest.raises(AnnotationError, match="not well-formed"):
        parse_annotation_bytes(b"<annotation><object>", "broken.xml")
    with pytest.raises(AnnotationError, match="not a VOC annotation"):
        parse_annotation_bytes(b"<html></html>", "page.xml")


def test_cleaning_rules():
    xml = voc_xml("a.png", (100, 50), [
        ("cat", (10, 10, 40, 40)),        # fine
        ("cat", (-5, 10, 40, 60)),        # outside: clipped
        ("cat", (30, 10, 20, 40)),        # xmax < xmin: dropped
        ("cat", (120, 10, 140, 40)),      # entirely outside: dropped
        ("dog", (10, 10, 20, 20)),        # unknown with known={"cat"}
    ]).encode()
    ann = parse_annotation_bytes(xml, "a.xml")
    objects, issues = clean_objects(ann, (50, 100), frozenset({"cat"}))
    np.testing.assert_allclose(objects.boxes, [[10, 10, 40, 40], [0, 10, 40, 50]])
    assert [i.kind for i in issues] == ["box_outside", "degenerate_box", "degenerate_box", "unknown_class"]
    assert all(i.file == "a.xml" for i in issues)
    # <size> of the same picture at twice the scale: boxes are rescaled, and that is reported
    objects, issues = clean_objects(ann, (25, 50), None)
    assert issues[0].kind == "size_mismatch" and "rescaled by 0.500" in issues[0].message
    np.testing.assert_allclose(objects.boxes[0], [5, 5, 20, 20])


def _plant_defects(root: Path) -> dict[str, str]:
    """A flat labelImg folder with one of every defect; returns {kind: file name at fault}."""
    make_voc_folder(root, 4, layout="flat", prefix="good")
    images, anns = root / "images", root / "annotations"
    base = cv2.imread(str(images / "good0000.png"))
    variant = iter(range(1, 100))

    def image_file(path: Path) -> None:
        img = base.copy()
        img[0, 0] = next(variant)  # every planted image differs, so only the planted copy is a duplicate
        cv2.imwrite(str(path), img)

    def add(stem: str, objects, size=(160, 120), image=True, filename=None):
        if image:
            image_file(images / f"{stem}.png")
        (anns / f"{stem}.xml").write_text(voc_xml(filename or f"{stem}.png", size, objects))

    add("outside", [("redbox", (100, 50, 200, 100))])
    add("degenerate", [("redbox", (50, 50, 50, 80))])
    add("wrongsize", [("redbox", (10, 10, 50, 50))], size=(200, 200))
    add("unknown", [("zebra", (10, 10, 50, 50))])
    add("empty", [])
    add("noimage", [("redbox", (10, 10, 50, 50))], image=False)
    (anns / "broken.xml").write_text("<annotation><object><name>redbox</name>")
    image_file(images / "broken.png")
    (images / "garbage.png").write_bytes(b"\x89PNG not really an image" * 10)
    (anns / "garbage.xml").write_text(voc_xml("garbage.png", (160, 120), [("redbox", (1, 1, 9, 9))]))
    image_file(images / "unlabelled.png")
    shutil.copy(images / "good0001.png", images / "zcopy.png")
    shutil.copy(anns / "good0001.xml", anns / "zcopy.xml")
    (anns / "badcoords.xml").write_text(voc_xml("badcoords.png", (160, 120), [("redbox", ("a", 1, 9, 9))]))
    image_file(images / "badcoords.png")
    return {
        "box_outside": "outside.xml", "degenerate_box": "degenerate.xml", "size_mismatch": "wrongsize.xml",
        "unknown_class": "unknown.xml", "missing_image": "noimage.xml", "xml_error": "broken.xml",
        "unreadable_image": "garbage.png", "missing_annotation": "unlabelled.png", "duplicate_file": "zcopy.png",
        "bad_object": "badcoords.xml",
    }


def test_check_data_finds_every_planted_defect(tmp_path, capsys):
    planted = _plant_defects(tmp_path / "data")
    report_path = tmp_path / "report.json"
    status = main.main(["check-data", str(tmp_path / "data"), "--json", str(report_path),
                        "--classes", "redbox,bluedisc", "--strict"])
    assert status == 1  # --strict: problems found
    text = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    folder = report["folders"][0]
    found = {}
    for issue in folder["issues"]:
        found.setdefault(issue["kind"], set()).add(Path(issue["file"]).name)
    for kind, name in planted.items():
        assert name in found.get(kind, set()), (kind, found.get(kind))
        assert name in text
    # empty.png has none; the others lost their only object to a planted defect
    assert sorted(Path(f).name for f in folder["images_without_objects_files"]) == [
        "badcoords.png", "degenerate.png", "empty.png", "unknown.png"]
    assert folder["unknown_classes"] == {"zebra": 1}
    assert report["ok"] is False and report["totals"]["issues"]["duplicate_file"] == 1
    assert [b["count"] for b in folder["box_sizes"]["bins"]]  # histogram present
    assert sum(b["count"] for b in folder["box_sizes"]["bins"]) == folder["box_sizes"]["boxes"]


def test_check_data_on_a_clean_folder_is_ok(tmp_path, capsys):
    make_voc_folder(tmp_path / "voc", 3)
    assert main.main(["check-data", str(tmp_path / "voc"), "--strict"]) == 0
    assert "problems: none" in capsys.readouterr().out


def test_check_data_against_a_model_knows_its_classes_or_the_datas(tmp_path, capsys, tiny_seed_model):
    """--model: the model's classes are the known ones; --classes-from-data keeps the data's classes
    (fine-tuning adds them) and still compares box sizes with the model's default boxes."""
    from models.model_file import save_model

    make_voc_folder(tmp_path / "voc", 3)  # redbox, bluedisc: not classes of the model (dog, cat, person)
    save_model(tiny_seed_model, tmp_path / "m.keras")
    report_path = tmp_path / "r.json"
    args = ["check-data", str(tmp_path / "voc"), "--model", str(tmp_path / "m.keras"), "--json", str(report_path)]
    assert main.main(args) == 0
    folder = json.loads(report_path.read_text())["folders"][0]
    unknown = set(folder["unknown_classes"])
    assert unknown and unknown <= {"redbox", "bluedisc"}
    assert main.main([*args, "--classes-from-data", "--strict"]) == 0
    folder = json.loads(report_path.read_text())["folders"][0]
    assert not folder["unknown_classes"] and unknown <= set(folder["objects"])
    assert folder["box_sizes"]["boxes"] > 0
    capsys.readouterr()


def test_check_data_command_line_errors(tmp_path):
    """A subprocess, as the GUI runs it: a missing folder is one line and status 2."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "main.py", "check-data", str(tmp_path / "missing"), "--json",
                           str(tmp_path / "r.json")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "missing: no such folder" in proc.stderr and "Traceback" not in proc.stderr


def test_shared_datasets_read_as_documented(shared_dir):
    scans = scan_folders([shared_dir / "datasets" / "raccoon", shared_dir / "datasets" / "hardhat"], workers=2)
    raccoon, hardhat = scans
    assert raccoon.layout == "flat" and len(raccoon.samples) == 200
    assert raccoon.class_names == {"raccoon"}
    assert hardhat.layout == "voc2007" and hardhat.class_names == {"helmet", "head"}
    degenerate = [i for i in hardhat.issues if i.kind == "degenerate_box"]
    assert degenerate and all(i.file.endswith(".xml") for i in degenerate)


def test_exif_rotated_photos_are_read_as_their_labels_describe(tmp_path):
    """labelImg labels the stored pixel grid; other tools label the EXIF-rotated photo. The
    <size> says which: the image is decoded to match it, and the loader decodes it the same way."""
    from PIL import Image

    from trainer.image_io import read_image

    folder = tmp_path / "phone"
    folder.mkdir()
    raw = np.zeros((40, 60, 3), np.uint8)
    raw[:, :30] = 255
    for stem, size in (("grid", (60, 40)), ("turned", (40, 60))):
        exif = Image.Exif()
        exif[274] = 6  # "rotate 90 degrees clockwise to display"
        Image.fromarray(raw).save(folder / f"{stem}.jpg", exif=exif.tobytes())
        (folder / f"{stem}.xml").write_text(voc_xml(f"{stem}.jpg", size, [("cat", (1, 1, 20, 20))]))
    scan = scan_folders([folder], workers=1)[0]
    assert not [i for i in scan.issues if i.kind == "size_mismatch"]
    by_key = {Path(s.image_path).stem: s for s in scan.samples}
    assert by_key["grid"].image_hw == (40, 60) and not by_key["grid"].exif_orientation
    assert by_key["turned"].image_hw == (60, 40) and by_key["turned"].exif_orientation
    assert read_image(by_key["turned"].image_path, True).shape[:2] == (60, 40)


def test_check_data_names_rarely_shown_classes_with_an_oversample_hint(tmp_path, capsys):
    from trainer.report import format_oversample, oversample_hint

    assert oversample_hint({"a": 100, "b": 90}) is None and oversample_hint({}) is None
    hint = oversample_hint({"a": 400, "b": 100, "c": 10})
    assert hint == {"c": 6.5, "b": 2.0} and list(hint) == ["c", "b"]  # sqrt(40) = 6.3, sqrt(4) = 2; rarest first
    assert format_oversample(hint) == "c=6.5,b=2"
    assert oversample_hint({"a": 10_000, "b": 1}) == {"b": 10.0}
    make_voc_folder(tmp_path / "many", 12, classes=("redbox",), seed=1)
    make_voc_folder(tmp_path / "few", 2, classes=("bluedisc",), seed=2, prefix="few")
    report_path = tmp_path / "r.json"
    assert main.main(["check-data", str(tmp_path / "many"), str(tmp_path / "few"), "--json", str(report_path)]) == 0
    text = capsys.readouterr().out
    totals = json.loads(report_path.read_text())["totals"]
    assert totals["images_per_class"] == {"bluedisc": 2, "redbox": 12}
    assert totals["oversample_hint"] == {"bluedisc": 2.5}
    assert "few images show: bluedisc 2 (of 12 for the most shown class)" in text
    assert "--oversample bluedisc=2.5" in text

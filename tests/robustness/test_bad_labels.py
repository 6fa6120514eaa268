"""Hostile and broken label folders through `check-data` and `train`: every bad file is named
in the report with what was done about it, nothing outside the folder is read or fetched,
and the good files are used.

Already covered elsewhere (not repeated): entity bomb, external entity, malformed XML and a
non-VOC root parsed directly (tests/test_trainer_data.py::test_hostile_xml_is_refused);
clipping, xmin > xmax, a box entirely outside, an unknown class
(tests/test_trainer_data.py::test_cleaning_rules); an image with no XML, an XML with no
image, a non-numeric coordinate, an undecodable image, duplicates, a wrong <size>
(tests/test_trainer_data.py::test_check_data_finds_every_planted_defect); a missing folder
(tests/test_trainer_data.py::test_missing_or_empty_folder_is_a_user_error).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

import main
from tests.trainer_helpers import make_voc_folder, voc_xml, write_spec_yaml

from .helpers import run_bounded
from .loopback import LoopbackServer, status

SECRET = "TOP-SECRET-CONTENT-7f3a"


def _image(path: Path, size_wh=(160, 120)) -> None:
    w, h = size_wh
    image = np.random.default_rng(len(path.name)).integers(60, 120, (h, w, 3), dtype=np.uint8)
    cv2.rectangle(image, (20, 20), (80, 80), (40, 40, 230), -1)
    assert cv2.imencode(path.suffix, image)[1].tofile(str(path)) is None


def _raw_object(inner: str) -> str:
    return f"<object>{inner}<difficult>0</difficult></object>"


def _annotation(filename: str, body: str, size: str = "<size><width>160</width><height>120</height></size>") -> str:
    return f"<annotation><filename>{filename}</filename>{size}{body}</annotation>"


BOX = "<bndbox><xmin>20</xmin><ymin>20</ymin><xmax>80</xmax><ymax>80</ymax></bndbox>"

# stem -> (XML bytes, expected issue kind or None for "used as is", a fragment of its message)
FIELD_CASES: dict[str, tuple[bytes, str | None, str]] = {
    "negative": (voc_xml("negative.png", (160, 120), [("redbox", (-20, -10, 50, 60))]).encode(),
                 "box_outside", "clipped to [0.0, 0.0, 50.0, 60.0]"),
    "huge coordinates": (voc_xml("huge coordinates.png", (160, 120), [("redbox", (0, 0, 1e9, 1e9))]).encode(),
                         "box_outside", "clipped to [0.0, 0.0, 160, 120]"),
    "nan": (voc_xml("nan.png", (160, 120), [("redbox", ("nan", 1, 9, 9))]).encode(), "bad_object", "non-numeric"),
    "infinite": (voc_xml("infinite.png", (160, 120), [("redbox", (1, "inf", 9, 9))]).encode(),
                 "bad_object", "non-numeric"),
    "overflow": (voc_xml("overflow.png", (160, 120), [("redbox", (1, 1, "1e400", 9))]).encode(),
                 "bad_object", "non-numeric"),
    "empty coordinate": (voc_xml("empty coordinate.png", (160, 120), [("redbox", ("", 1, 9, 9))]).encode(),
                         "bad_object", "missing or non-numeric"),
    "zero area": (voc_xml("zero area.png", (160, 120), [("redbox", (10, 10, 10, 40))]).encode(),
                  "degenerate_box", "xmax <= xmin"),
    "no name": (_annotation("no name.png", _raw_object(BOX)).encode(), "bad_object", "has no <name>"),
    "no bndbox": (_annotation("no bndbox.png", _raw_object("<name>redbox</name>")).encode(),
                  "bad_object", "has no <bndbox>"),
    "no xmax": (_annotation("no xmax.png", _raw_object(
        "<name>redbox</name><bndbox><xmin>1</xmin><ymin>1</ymin><ymax>9</ymax></bndbox>")).encode(),
        "bad_object", "xmax=None"),
    "background class": (voc_xml("background class.png", (160, 120), [("background", (20, 20, 80, 80))]).encode(),
                         "unknown_class", "reserved"),
    "not utf-8": (b"<annotation><filename>not utf-8.png</filename><object><name>\xff\xfe</name></object>"
                  b"</annotation>", "xml_error", "not well-formed"),
    "cut short": (voc_xml("cut short.png", (160, 120), [("redbox", (20, 20, 80, 80))]).encode()[:90],
                  "xml_error", "not well-formed"),
    "empty file": (b"", "xml_error", "not well-formed"),
    "unknown encoding": (b'<?xml version="1.0" encoding="klingon"?><annotation><filename>unknown encoding.png'
                         b'</filename></annotation>', "xml_error", "declares a text encoding that cannot be read"),
    "binary junk": (np.random.default_rng(5).bytes(400), "xml_error", "not well-formed"),
    "web page": (b"<html><body>404</body></html>", "xml_error", "not a VOC annotation"),
    "path in filename": (voc_xml("../outside/path in filename.png", (160, 120),
                                 [("redbox", (20, 20, 80, 80))]).encode(), None, ""),
    "no size": (_annotation("no size.png", _raw_object("<name>redbox</name>" + BOX), size="").encode(), None, ""),
    "garbage size": (_annotation("garbage size.png", _raw_object("<name>redbox</name>" + BOX),
                                 size="<size><width>wide</width><height>-3</height></size>").encode(), None, ""),
    "spaces around numbers": (_annotation("spaces around numbers.png", _raw_object(
        "<name>redbox</name><bndbox><xmin> 20 </xmin><ymin>\n20</ymin><xmax>80.0</xmax><ymax>8e1</ymax></bndbox>"
    )).encode(), None, ""),
    "utf-16": (_annotation("utf-16.png", _raw_object("<name>redbox</name>" + BOX)).encode("utf-16"), None, ""),
    "latin-1": (b'<?xml version="1.0" encoding="iso-8859-1"?>' + _annotation(
        "latin-1.png", _raw_object("<name>redbox</name>" + BOX)).encode("latin-1"), None, ""),
    "deep nesting": (_annotation("deep nesting.png", "<x>" * 50_000 + "</x>" * 50_000
                                 + _raw_object("<name>redbox</name>" + BOX)).encode(), None, ""),
    "many objects": (_annotation("many objects.png", _raw_object("<name>redbox</name>" + BOX) * 5000).encode(),
                     None, ""),
}


@pytest.fixture(scope="module")
def field_report(tmp_path_factory) -> dict:
    """check-data over a side-by-side folder holding one image + XML per case."""
    root = tmp_path_factory.mktemp("labels")
    folder = root / "fields"
    folder.mkdir()
    outside = root / "outside"
    outside.mkdir()
    _image(outside / "path in filename.png")  # what a "../outside/..." <filename> would reach
    for stem, (xml, _, _) in FIELD_CASES.items():
        (folder / f"{stem}.xml").write_bytes(xml)
        if stem != "path in filename":
            _image(folder / f"{stem}.png")
    report_path = root / "report.json"
    rc = main.main(["check-data", str(folder), "--json", str(report_path), "--classes", "redbox,bluedisc",
                    "--quiet", "--workers", "2"])
    assert rc == 0
    return json.loads(report_path.read_text())["folders"][0]


def _issues_of(folder_report: dict, name: str) -> list[dict]:
    return [i for i in folder_report["issues"] if Path(i["file"]).name == name]


@pytest.mark.parametrize("stem", sorted(FIELD_CASES))
def test_each_broken_field_is_reported_naming_the_file(field_report, stem):
    _, kind, fragment = FIELD_CASES[stem]
    xml_issues = _issues_of(field_report, f"{stem}.xml")
    if stem == "path in filename":  # <filename> is only a name: the folder's own image is used
        assert [i["kind"] for i in xml_issues] == ["missing_image"]
        assert "skipped" in xml_issues[0]["message"]
        return
    if kind is None:
        assert xml_issues == [], xml_issues
        return
    assert kind in [i["kind"] for i in xml_issues], xml_issues
    message = next(i["message"] for i in xml_issues if i["kind"] == kind)
    assert fragment in message, message


def test_the_folder_is_read_to_the_end(field_report):
    """Every file that is an annotation with an image counts as an image; those whose only
    object was dropped stay as background images (they teach "no object here")."""
    usable = {s for s, (_, kind, _) in FIELD_CASES.items() if kind != "xml_error" and s != "path in filename"}
    assert field_report["images"] == len(usable)
    dropped = {s for s, (_, kind, _) in FIELD_CASES.items() if kind in ("bad_object", "degenerate_box", "unknown_class")}
    assert {Path(f).stem for f in field_report["images_without_objects_files"]} == dropped
    assert field_report["objects"] == {"redbox": len(usable - dropped) - 1 + 5000}  # "many objects" has 5000


def _hostile_folder(folder: Path, secret: Path, dtd_url: str) -> dict[str, str]:
    """Good images plus hostile annotations; returns {xml name: what it tries}."""
    make_voc_folder(folder, 4, layout="side-by-side", prefix="good ")
    body = '<annotation><filename>{stem}.png</filename><size><width>160</width><height>120</height></size>' \
           '<object><name>{name}</name>' + BOX + '</object></annotation>'
    cases = {
        "bomb": '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa">'
                + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
                + ']>' + body.format(stem="bomb", name="&i;"),
        "quadratic": f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY q "{"q" * 20000}">]>'
                     + body.format(stem="quadratic", name="&q;" * 200),
        "local file": f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]>'
                      + body.format(stem="local file", name="&x;"),
        "parameter entity": f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY % p SYSTEM "{dtd_url}"> %p;]>'
                            + body.format(stem="parameter entity", name="redbox"),
        "external dtd": f'<?xml version="1.0"?><!DOCTYPE annotation SYSTEM "{dtd_url}">'
                        + body.format(stem="external dtd", name="redbox"),
    }
    for stem, text in cases.items():
        (folder / f"{stem}.xml").write_text(text, encoding="utf-8")
        _image(folder / f"{stem}.png")
    return {f"{stem}.xml": stem for stem in cases}


@pytest.fixture
def hostile(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    server = LoopbackServer(status(200, "OK", f'<!ENTITY leak "{SECRET}">'.encode(), "application/xml-dtd")).start()
    folder = tmp_path / "my data" / "ünï cödé labels"
    try:
        yield folder, _hostile_folder(folder, secret, server.url.replace("stream.mjpg", "evil.dtd")), server
    finally:
        server.stop()


def test_check_data_refuses_hostile_xml_without_reading_or_fetching(hostile, tmp_path, capsys):
    folder, cases, server = hostile
    report_path = tmp_path / "report.json"
    rc = run_bounded(lambda: main.main(["check-data", str(folder), "--json", str(report_path), "--workers", "2"]),
                     120, "check-data on hostile XML (an expanded bomb would not return)")
    out = capsys.readouterr().out
    assert rc == 0
    report_text = report_path.read_text()
    folder_report = json.loads(report_text)["folders"][0]
    for name in ("bomb.xml", "quadratic.xml", "local file.xml", "parameter entity.xml"):
        issues = _issues_of(folder_report, name)
        assert [i["kind"] for i in issues] == ["xml_error"], (name, issues)
        assert "refused as unsafe XML" in issues[0]["message"]
        assert name in out
    # a DOCTYPE naming an external DTD, without entities, is harmless: read, never fetched
    assert _issues_of(folder_report, "external dtd.xml") == []
    assert server.connections == 0, "nothing was fetched from the network"
    assert SECRET not in report_text and SECRET not in out
    assert folder_report["images"] == 5  # the four good images and "external dtd"


def test_train_uses_the_good_files_of_a_hostile_oddly_named_folder(hostile, tmp_path, capsys):
    folder, cases, server = hostile
    spec = write_spec_yaml(tmp_path / "spec.yaml", ["redbox", "bluedisc"])
    run = tmp_path / "run ü"
    rc = main.main(["train", "--data", str(folder), "--out", str(run), "--spec", str(spec), "--epochs", "1",
                    "--batch", "2", "--val-split", "0", "--workers", "2", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    summary = yaml.safe_load((run / "summary.yaml").read_text())
    assert summary["status"] == "finished" and summary["images"]["train"] == 5
    report = (run / "data_report.json").read_text()
    for name in ("bomb.xml", "quadratic.xml", "local file.xml", "parameter entity.xml"):
        assert name in report
    assert SECRET not in report and SECRET not in out and server.connections == 0
    assert "data problems" in out


def test_image_ids_that_leave_the_folder_are_not_followed(tmp_path):
    root = make_voc_folder(tmp_path / "voc", 2)
    (tmp_path / "outside.xml").write_text(voc_xml("img0000.png", (160, 120), [("stolen", (1, 1, 50, 50))]))
    with open(root / "ImageSets" / "Main" / "trainval.txt", "a") as f:
        f.write("../../outside\n/etc/hostname\n")
    report_path = tmp_path / "report.json"
    assert main.main(["check-data", str(root), "--json", str(report_path), "--quiet"]) == 0
    folder_report = json.loads(report_path.read_text())["folders"][0]
    assert folder_report["images"] == 2
    assert "stolen" not in report_path.read_text()
    assert any("2 image id(s)" in n and "'../../outside'" in n and "ignored" in n for n in folder_report["notes"])


@pytest.mark.parametrize("layout", ["voc2007", "flat", "side-by-side"])
def test_non_ascii_names_and_spaces_in_every_layout(tmp_path, layout, capsys):
    root = make_voc_folder(tmp_path / "dätä sets" / f"my {layout} ✓", 3, layout=layout, prefix="фото №")
    report_path = tmp_path / "répört.json"
    assert main.main(["check-data", str(root), "--json", str(report_path), "--strict"]) == 0
    folder_report = json.loads(report_path.read_text(encoding="utf-8"))["folders"][0]
    assert folder_report["images"] == 3 and folder_report["issues"] == []
    assert "problems: none" in capsys.readouterr().out


def test_check_data_on_a_folder_with_no_images_is_not_problems_none(tmp_path, capfd):
    """An empty VOC folder (or one whose labels name no existing image) has nothing to train
    on: it is a problem, named with the folder, and the check fails (before: "problems: none",
    exit 0)."""
    import main

    empty = tmp_path / "empty"
    (empty / "Annotations").mkdir(parents=True)
    (empty / "JPEGImages").mkdir()
    rc = main.main(["check-data", str(empty)])
    out = capfd.readouterr().out
    assert rc == 1
    assert "problems: none" not in out
    assert f"folders with no usable labelled image 1 ({empty})" in out

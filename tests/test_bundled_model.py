"""The bundled default model (assets/default_model.keras): what ships is what the README and
the model card say, it loads safely on both backends, the commands use it when no --model is
given, and it finds real animals in real photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from models import num_default_boxes
from models.box_coder import pairwise_iou
from models.bundled import BUNDLED_CLASSES, BUNDLED_MODEL
from models.model_file import load_model

ROOT = Path(__file__).resolve().parents[1]
# The shipped model gets 26 of 30 (measured 2026-12-03, stage 7; stage 3 got 24, the MobileNetV1
# model 12); about half of that
# leaves room for engine and library differences while a broken or untrained file (0 of 30)
# still fails.
HITS_AT_LEAST = 13
# Frames of vtest.avi (every 40th, 20 in all) where the model boxes a pedestrian at the issue's
# confidence 0.5, measured 2026-12-03 on the stage-7 model (python -m bench.pedestrians): 10 on
# the full frame (the pedestrians are about 15 pixels wide at 300x300), 20 with 2x2 tiles (the
# app's "Small objects", as in the README screenshot); the stage-6 model: 6 and 16. About half
# of each measured figure: room for engine differences, while a broken model still fails.
PEDESTRIAN_CASES = [(None, 0.5, 5), ("2x2", 0.5, 10)]  # tiles, confidence, frames at least


@pytest.fixture(scope="module")
def bundled():
    assert BUNDLED_MODEL.is_file(), f"{BUNDLED_MODEL} is missing: the checkout should carry the default model"
    return load_model(BUNDLED_MODEL)


def test_the_bundled_model_is_the_documented_one(bundled):
    assert BUNDLED_MODEL.stat().st_size < 30 * 2**20  # the limit for a committed model
    spec = bundled.spec
    assert list(spec.class_names) == list(BUNDLED_CLASSES)
    assert spec.layout == "lite0" and spec.backbone.kind == "efficientnet_lite0"
    assert tuple(spec.input_size) == (352, 352)  # since stage 12 (2026-12-05; 300x300 before)
    assert num_default_boxes(spec) == 11650
    card = (ROOT / "assets" / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert all(name in card for name in BUNDLED_CLASSES)


def test_detect_uses_the_bundled_model_without_model_option(tmp_path, capsys):
    image = np.full((240, 320, 3), 127, np.uint8)
    cv2.imwrite(str(tmp_path / "grey.png"), image)
    out = tmp_path / "d.jsonl"
    assert main.main(["detect", str(tmp_path / "grey.png"), "--json", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "RANDOMLY INITIALISED" not in err
    assert f"model: {BUNDLED_MODEL};" in err and "classes: " + ", ".join(BUNDLED_CLASSES) in err
    record = json.loads(out.read_text().splitlines()[0])
    assert record["file"].endswith("grey.png") and isinstance(record["detections"], list)


def test_the_bundled_model_loads_on_jax_with_the_same_outputs(tmp_path, bundled):
    pytest.importorskip("jax")
    x = np.random.default_rng(0).integers(0, 256, (1, *bundled.spec.input_size, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "ref.npy", np.asarray(bundled(x)[0]))
    code = ("import numpy as np, keras; from models.bundled import BUNDLED_MODEL; from models.model_file import load_model;"
            "assert keras.backend.backend() == 'jax'; m = load_model(BUNDLED_MODEL);"
            f"out = np.asarray(m(np.load(r'{tmp_path / 'x.npy'}'))[0]);"
            f"np.testing.assert_allclose(out, np.load(r'{tmp_path / 'ref.npy'}'), rtol=1e-3, atol=1e-3); print('ok')")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def large_single_animals(folder: Path, count: int) -> list[tuple[Path, str, tuple[float, ...]]]:
    """The first ``count`` photos (by name) with exactly one labelled animal covering at least
    a fifth of the picture: (image, class, box as pixel x1, y1, x2, y2)."""
    from trainer.voc_xml import parse_annotation

    picked = []
    for xml in sorted((folder / "Annotations").glob("*.xml")):
        ann = parse_annotation(xml)
        if len(ann.objects) != 1 or ann.objects[0].box is None or not ann.size:
            continue
        x1, y1, x2, y2 = ann.objects[0].box
        if (x2 - x1) * (y2 - y1) >= 0.2 * ann.size[0] * ann.size[1]:
            picked.append((folder / "JPEGImages" / f"{xml.stem}.jpg", ann.objects[0].name, ann.objects[0].box))
        if len(picked) == count:
            break
    return picked


def test_the_bundled_model_finds_animals_in_real_photos(shared_dir):
    """A smoke test of the weights, not a measurement (the model card has the held-out mAP):
    these photos may be training photos."""
    from runtime.predictor import Predictor

    photos = large_single_animals(shared_dir / "datasets" / "animals", 30)
    assert len(photos) == 30
    predictor = Predictor.from_file(BUNDLED_MODEL)
    predictor.set_thresholds(conf=0.3)
    hits = 0
    for image, name, box in photos:
        found = predictor.predict(cv2.imread(str(image)))
        if len(found) and found.names[0] == name:
            hits += pairwise_iou(found.boxes[:1], np.array([box], np.float32))[0, 0] >= 0.5
    assert hits >= HITS_AT_LEAST, f"{hits} of 30 photos: the top detection is the labelled animal"


VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@pytest.mark.parametrize("tiles, conf, at_least", PEDESTRIAN_CASES, ids=["full-frame-0.5", "tiles-2x2-0.5"])
def test_the_bundled_model_boxes_pedestrians_in_vtest(tiles, conf, at_least):
    """The README's screenshot: on OpenCV's vtest.avi (not in the training data) the model boxes
    some of the walking pedestrians as person (every 40th frame)."""
    if not VTEST.is_file():
        pytest.skip(f"{VTEST} is absent (apt-get install opencv-doc)")
    from runtime.predictor import Predictor

    predictor = Predictor.from_file(BUNDLED_MODEL)
    predictor.set_thresholds(conf=conf)
    predictor.tiles = tiles
    capture = cv2.VideoCapture(str(VTEST))
    people, frames, index = [], 0, 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % 40 == 0:
            found = predictor.predict(frame)
            people.append(sum(1 for name in found.names if name == "person"))
            frames += 1
        index += 1
    capture.release()
    assert frames == 20
    with_people = sum(1 for n in people if n > 0)
    assert with_people >= at_least, people

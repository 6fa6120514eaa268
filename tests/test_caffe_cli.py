"""``main.py import-caffe``: a good import makes a model file that predicts like OpenCV-DNN;
bad inputs exit with status 2 and one line naming the file."""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import main
from detector_app.caffe_cli import add_import_caffe_arguments, run_import_caffe
from models.caffe import random_blobs, write_caffemodel, write_random_caffemodel
from models.caffe.prototxt import format_message, load
from models.model_file import load_model, read_spec

cv2 = pytest.importorskip("cv2")

ROOT = Path(__file__).resolve().parents[1]
SCORE_ATOL = 1e-4  # as in test_caffe_import.py (float32 in two implementations; measured ~1e-6)


@pytest.fixture(scope="module")
def prototxt(shared_dir) -> Path:
    return shared_dir / "reference/chuanqi305-mobilenet-ssd/MobileNetSSD_deploy.prototxt"


@pytest.fixture(scope="module")
def weights(prototxt, tmp_path_factory) -> Path:
    return write_random_caffemodel(prototxt, tmp_path_factory.mktemp("cli") / "random.caffemodel", seed=0)


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_import_caffe_arguments(parser)
    return run_import_caffe(parser.parse_args([str(a) for a in argv]))


def test_command_table_points_here():
    assert main.COMMANDS["import-caffe"][:2] == ("detector_app.caffe_cli", "import_caffe")


def test_import_makes_a_model_file_that_predicts_like_opencv(prototxt, weights, shared_dir, tmp_path, capsys):
    out = tmp_path / "voc.keras"
    assert run_cli(prototxt, weights, "--out", out) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "20 classes" in printed and "1,917 default boxes" in printed
    model = load_model(out)
    assert model.class_names[0] == "aeroplane" and model.spec.layout == "caffe-mobilenet-ssd"

    photos = sorted((shared_dir / "reference/chuanqi305-mobilenet-ssd/images").glob("*.jpg"))[:2]
    frames = np.stack([cv2.resize(cv2.imread(str(p)), (300, 300)) for p in photos])
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
    net.setInput(cv2.dnn.blobFromImages(list(frames), 0.007843, (300, 300), (127.5, 127.5, 127.5)))
    conf, loc = net.forward(["mbox_conf_flatten", "mbox_loc"])
    deltas, logits = (np.asarray(t) for t in model(frames))
    scores = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(scores, conf.reshape(2, -1, 21), rtol=0, atol=SCORE_ATOL)
    np.testing.assert_allclose(deltas, loc.reshape(2, -1, 4), rtol=0, atol=SCORE_ATOL)


def test_labels_name_the_classes_of_another_class_count(prototxt, tmp_path):
    net = load(prototxt)
    layers = {layer.get("name"): layer for layer in net.get_all("layer")}
    layers["detection_out"].message("detection_output_param").set("num_classes", 3)
    layers["mbox_conf_reshape"].message("reshape_param").message("shape").fields[2] = ("dim", 3)
    for name, layer in layers.items():
        if name.endswith("_mbox_conf"):
            p = layer.message("convolution_param")
            p.set("num_output", p.get("num_output") // 21 * 3)
    deploy = tmp_path / "hardhat.prototxt"
    deploy.write_text(format_message(net))
    caffemodel = write_caffemodel(tmp_path / "hardhat.caffemodel", random_blobs(net, seed=2), net)
    labels = tmp_path / "labels.txt"
    labels.write_text("background\nhelmet\nhead\n")
    out = tmp_path / "hardhat.keras"
    assert run_cli(deploy, caffemodel, "--out", out, "--labels", labels) == 0
    assert read_spec(out).class_names == ("helmet", "head")


def _truncated(weights: Path, tmp: Path) -> Path:
    path = tmp / "truncated.caffemodel"
    path.write_bytes(weights.read_bytes()[:1_000_000])
    return path


def _other_network(prototxt: Path, tmp: Path) -> Path:
    net = load(prototxt)
    conv5 = next(layer for layer in net.get_all("layer") if layer.get("name") == "conv5")
    conv5.message("convolution_param").set("num_output", 200)
    path = tmp / "other.prototxt"
    path.write_text(format_message(net))
    return path


@pytest.mark.parametrize(
    "case, culprit, match",
    [
        ("missing prototxt", "nope.prototxt", "no such prototxt file"),
        ("missing weights", "nope.caffemodel", "no such caffemodel file"),
        ("swapped", "random.caffemodel", "is a binary file, not a protobuf text .prototxt"),
        ("photo as weights", "000001.jpg", "is not a readable binary Caffe model"),
        ("truncated weights", "truncated.caffemodel", "truncated"),
        ("another network", "other.prototxt", r"layer 'conv5' \(MobileNetV1 block 5, pointwise 1x1\)"),
        ("class count", "MobileNetSSD_deploy.prototxt", "2 class names given"),
        ("output suffix", "out.h5", "must end in .keras"),
        ("labels file", "nope.txt", "no such label file"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(case, culprit, match, prototxt, weights, shared_dir, tmp_path, capsys):
    photo = shared_dir / "reference/chuanqi305-mobilenet-ssd/images/000001.jpg"
    out = tmp_path / "out.keras"
    argv = {
        "missing prototxt": [tmp_path / "nope.prototxt", weights, "--out", out],
        "missing weights": [prototxt, tmp_path / "nope.caffemodel", "--out", out],
        "swapped": [weights, prototxt, "--out", out],
        "photo as weights": [prototxt, photo, "--out", out],
        "truncated weights": [prototxt, _truncated(weights, tmp_path), "--out", out],
        "another network": [_other_network(prototxt, tmp_path), weights, "--out", out],
        "class count": [prototxt, weights, "--out", out, "--classes", "cat,dog"],
        "output suffix": [prototxt, weights, "--out", tmp_path / "out.h5"],
        "labels file": [prototxt, weights, "--out", out, "--labels", tmp_path / "nope.txt"],
    }[case]
    assert run_cli(*argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert culprit in lines[0]
    assert re.search(match, lines[0]), lines[0]
    assert not out.exists()


def test_main_reports_user_errors_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "main.py", "import-caffe", str(tmp_path / "deploy.prototxt"), str(tmp_path / "w.caffemodel"),
         "--out", str(tmp_path / "m.keras")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'deploy.prototxt'}: no such prototxt file"

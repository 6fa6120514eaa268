"""Importing the Caffe MobileNet-SSD, checked against OpenCV-DNN as an independent implementation.

A ``.caffemodel`` of seeded random weights is written for the reference deploy prototxt in
``../shared``; OpenCV-DNN (``cv2.dnn.readNetFromCaffe``) runs it, and the imported model must
reproduce its raw class scores (``mbox_conf_flatten``), raw box offsets (``mbox_loc``), default
boxes (``mbox_priorbox``) and final detections (``detection_out``) on the seven VOC photos.

Tolerances (absolute): 1e-4 on softmax scores, on box offsets (which reach about +-3.3 here)
and on normalised box corners (0.03 px on a 300 px side). Both sides compute in float32 with
different kernels (oneDNN vs OpenCV's own), so sums of up to 9,216 products per output are
added in different orders through 35 convolutions; we measured at most ~1e-6 on scores,
~6e-6 on offsets and ~5e-7 on corners, so 1e-4 leaves 15-100x room for other CPUs and
library builds. Any real mistake (channel order, mean, padding, weight layout, prior order,
head reordering) shows up as differences of 0.1 to 1: e.g. feeding OpenCV the classic
``blobFromImage(..., 127.5)`` (which subtracts the mean from the blue channel only) differs
by 0.38 in scores. Detections must agree one to one (class exactly, score and corners within the
tolerances), except a detection whose score is within 1e-4 of the 0.25 threshold, which the
two float32 implementations may legitimately place on either side (see
test_final_detections_match).
"""

from pathlib import Path

import numpy as np
import pytest

from models import PostprocessConfig, caffe_spec, decode, default_boxes, select_detections
from models.box_coder import _MAX_LOG_SCALE, centers_to_corners
from models.caffe import (
    NetworkMismatchError,
    convert,
    plan_from_prototxt,
    random_blobs,
    write_caffemodel,
    write_random_caffemodel,
)
from models.caffe.prototxt import Message, format_message, load, parse

cv2 = pytest.importorskip("cv2")

SCORE_ATOL = 1e-4
OFFSET_ATOL = 1e-4
BOX_ATOL = 1e-4
INPUT = (300, 300)
# chuanqi305's demo: (pixel - 127.5) * 0.007843 on all three channels. Pass the mean as a
# 3-tuple: a bare 127.5 becomes Scalar(127.5, 0, 0, 0) and only the blue channel is centred.
MEAN, SCALE = (127.5, 127.5, 127.5), 0.007843
# The prototxt's DetectionOutput settings, as the app's post-processing.
# Caffe's DetectionOutput rule exactly: no box voting
DETECTION = PostprocessConfig(conf_threshold=0.25, iou_threshold=0.45, top_k=100, max_detections=100, clip=False,
                             vote_iou=None)
OUTPUT_BLOBS = ["mbox_conf_flatten", "mbox_loc", "mbox_priorbox", "detection_out"]


@pytest.fixture(scope="module")
def reference_dir(shared_dir) -> Path:
    return shared_dir / "reference/chuanqi305-mobilenet-ssd"


@pytest.fixture(scope="module")
def prototxt(reference_dir) -> Path:
    return reference_dir / "MobileNetSSD_deploy.prototxt"


@pytest.fixture(scope="module")
def frames(reference_dir) -> np.ndarray:
    """The seven photos as the app feeds them: BGR uint8, resized to 300x300 (INTER_LINEAR)."""
    paths = sorted((reference_dir / "images").glob("*.jpg"))
    assert len(paths) == 7
    return np.stack([cv2.resize(cv2.imread(str(p)), INPUT, interpolation=cv2.INTER_LINEAR) for p in paths])


def run_opencv(prototxt: Path, caffemodel: Path, frames: np.ndarray) -> dict[str, np.ndarray]:
    """OpenCV-DNN's outputs for the batch, reshaped per image."""
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.setInput(cv2.dnn.blobFromImages(list(frames), SCALE, INPUT, MEAN))
    conf, loc, priors, detections = net.forward(OUTPUT_BLOBS)
    n = len(frames)
    return {
        "scores": conf.reshape(n, -1, 21),
        "offsets": loc.reshape(n, -1, 4),
        "priors": priors[0, 0].reshape(-1, 4),  # corners; priors[0, 1] holds the variances
        "variances": priors[0, 1].reshape(-1, 4),
        "detections": detections.reshape(-1, 7),  # image, label, score, x1, y1, x2, y2
    }


def run_ours(model, frames: np.ndarray) -> dict:
    """The imported model's scores, offsets and detections (our decoder and post-processing)."""
    deltas, logits = (np.asarray(t) for t in model(frames))
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    scores = shifted / shifted.sum(axis=-1, keepdims=True)
    priors = default_boxes(model.spec)
    detections = [
        select_detections(decode(d, priors, model.spec.variances), s, DETECTION, model.class_names, (1, 1))
        for d, s in zip(deltas, scores)
    ]
    return {"scores": scores, "offsets": deltas, "detections": detections}


@pytest.fixture(scope="module")
def random_caffemodel(prototxt, tmp_path_factory) -> Path:
    return write_random_caffemodel(prototxt, tmp_path_factory.mktemp("caffe") / "random.caffemodel", seed=0)


@pytest.fixture(scope="module")
def opencv_out(prototxt, random_caffemodel, frames):
    return run_opencv(prototxt, random_caffemodel, frames)


@pytest.fixture(scope="module")
def imported(prototxt, random_caffemodel):
    return convert(prototxt, random_caffemodel)


@pytest.fixture(scope="module")
def ours(imported, frames):
    return run_ours(imported.model, frames)


# -- the prototxt as a spec --------------------------------------------------------------


def test_parsed_spec_equals_the_preset(prototxt):
    plan = plan_from_prototxt(load(prototxt), path=prototxt)
    assert plan.spec == caffe_spec()
    assert plan.detection.confidence_threshold == 0.25 and plan.detection.nms_threshold == 0.45
    assert (plan.detection.top_k, plan.detection.keep_top_k) == (100, 100)
    assert len(plan.convs) == 47  # 27 backbone + 8 extra + 12 head convolutions
    assert plan.convs[0].caffe == "conv0" and plan.convs[0].keras == "conv1"
    assert [(m.caffe, m.keras, m.depthwise) for m in plan.convs if m.caffe.startswith("conv13")][:2] == [
        ("conv13/dw", "conv_dw_13", True), ("conv13", "conv_pw_13", False),
    ]
    heads = [(m.caffe, m.keras) for m in plan.convs if "mbox" in m.caffe]
    assert heads[:2] == [("conv11_mbox_loc", "box_block11"), ("conv11_mbox_conf", "cls_block11")]
    assert heads[-1] == ("conv17_2_mbox_conf", "cls_extra4")


def _layers(net: Message) -> dict[str, Message]:
    return {layer.get("name"): layer for layer in net.get_all("layer")}


def _drop(net: Message, name: str) -> None:
    net.fields = [(k, v) for k, v in net.fields if not (k == "layer" and v.get("name") == name)]


def _set(layer: str, block: str, field: str, value):
    return lambda net: _layers(net)[layer].message(block).set(field, value)


@pytest.mark.parametrize(
    "edit, match",
    [
        (_set("conv5", "convolution_param", "num_output", 200),
         r"layer 'conv5' \(MobileNetV1 block 5, pointwise 1x1\): expected num_output 256, found 200"),
        (_set("conv3/dw", "convolution_param", "stride", 2), r"layer 'conv3/dw' .*expected stride \(1, 1\)"),
        (_set("conv0", "convolution_param", "kernel_size", 5), r"layer 'conv0' \(stem\): expected kernel \(3, 3\)"),
        (lambda net: _drop(net, "conv7/relu"), r"layer 'conv7' .*expected a ReLU after it"),
        (lambda net: _layers(net)["conv9/dw"].set("type", "Deconvolution"), r"layer 'conv9/dw' has type 'Deconvolution'"),
        (_set("conv13_mbox_priorbox", "prior_box_param", "clip", True), r"layer 'conv13_mbox_priorbox' .*clip"),
        (_set("conv11_mbox_conf", "convolution_param", "num_output", 60),
         r"layer 'conv11_mbox_conf' \(class predictions of block11\): expected num_output 63"),
        (_set("detection_out", "detection_output_param", "code_type", "CORNER"), r"layer 'detection_out' .*code_type"),
        (lambda net: _layers(net)["conv14_2_mbox_loc_perm"].message("permute_param").set("order", 1),
         r"layer 'conv14_2_mbox_loc' .*Permute with order \[0, 2, 3, 1\]"),
        (lambda net: net.message("input_shape").fields.__setitem__(1, ("dim", 1)), r"input 'data' has 1 channels"),
        (lambda net: _drop(net, "mbox_conf_softmax"), r"layer 'mbox_conf_flatten' reads blob 'mbox_conf_softmax'"),
    ],
)
def test_other_networks_are_named_by_layer(prototxt, edit, match):
    net = load(prototxt)
    edit(net)
    with pytest.raises(NetworkMismatchError, match=match) as info:
        plan_from_prototxt(parse(format_message(net)), path="variant.prototxt")  # as an edited file reads
    assert str(info.value).startswith("variant.prototxt: ")


def test_input_layer_form(prototxt):
    """Newer prototxts declare the input as a layer of type Input instead of input/input_shape."""
    net = load(prototxt)
    shape = net.message("input_shape")
    net.remove("input")
    net.remove("input_shape")
    net.fields.insert(1, ("layer", Message([("name", "data"), ("type", "Input"), ("top", "data"),
                                            ("input_param", Message([("shape", shape)]))])))
    assert plan_from_prototxt(net, path="input_layer.prototxt").spec == caffe_spec()
    assert random_blobs(net)["conv0"][0].shape == (32, 3, 3, 3)


def test_not_a_network():
    with pytest.raises(NetworkMismatchError, match="has no layers"):
        plan_from_prototxt(Message([("name", "x")]), path="empty.prototxt")


def test_edited_prototxts_fail_cleanly(prototxt):
    """Deleted lines and values of the wrong kind: a NetworkMismatchError (or PrototxtError)
    naming the file, never another exception (the command line turns these into exit 2)."""
    import random

    from models.caffe import CaffeImportError

    lines = prototxt.read_text().splitlines()
    rng = random.Random(0)
    for _ in range(200):
        edited = list(lines)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(edited))
            if rng.random() < 0.3 or ":" not in edited[i]:
                del edited[i]
            else:
                edited[i] = edited[i].split(":")[0] + ": " + rng.choice(["7", "-1", "FOO", '"x"', "0.5"])
        try:
            plan_from_prototxt(parse("\n".join(edited), "edited.prototxt"), path="edited.prototxt")
        except CaffeImportError as exc:
            assert str(exc).startswith("edited.prototxt: ") or "class names" in str(exc)


def _four_class_variant(net: Message) -> Message:
    """The reference network re-headed for 3 classes + background."""
    layers = _layers(net)
    layers["detection_out"].message("detection_output_param").set("num_classes", 4)
    shape = layers["mbox_conf_reshape"].message("reshape_param").message("shape")
    shape.fields[2] = ("dim", 4)
    for name, layer in layers.items():
        if name.endswith("_mbox_conf"):
            p = layer.message("convolution_param")
            p.set("num_output", p.get("num_output") // 21 * 4)
    return net


def test_class_names_follow_the_network(prototxt):
    net = _four_class_variant(load(prototxt))
    plan = plan_from_prototxt(net, ["helmet", "head", "vest"], path="hardhat.prototxt")
    assert plan.spec == caffe_spec(["helmet", "head", "vest"])
    with pytest.raises(NetworkMismatchError, match="predicts 3 classes plus background.*--classes"):
        plan_from_prototxt(net, path="hardhat.prototxt")
    with pytest.raises(NetworkMismatchError, match="2 class names given.*predicts 3 classes"):
        plan_from_prototxt(net, ["a", "b"], path="hardhat.prototxt")


# -- random weights -----------------------------------------------------------------------


def test_random_weights_are_seeded_and_complete(prototxt):
    a, b, c = random_blobs(prototxt, seed=0), random_blobs(prototxt, seed=0), random_blobs(prototxt, seed=1)
    assert len(a) == 47 and sum(x.size for blobs in a.values() for x in blobs) == 5_783_417
    assert a["conv1/dw"][0].shape == (32, 1, 3, 3) and a["conv17_2_mbox_conf"][0].shape == (126, 128, 1, 1)
    assert all(np.array_equal(x, y) for k in a for x, y in zip(a[k], b[k]))
    assert not np.array_equal(a["conv0"][0], c["conv0"][0])


def test_opencv_reads_back_the_written_weights(prototxt, random_caffemodel):
    """The writer, checked by an independent protobuf reader: OpenCV's."""
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(random_caffemodel))
    written = random_blobs(prototxt, seed=0)
    for name in ("conv0", "conv1/dw", "conv13", "conv17_2", "conv11_mbox_conf"):
        layer_id = net.getLayerId(name)
        for i, blob in enumerate(written[name]):
            np.testing.assert_array_equal(net.getParam(layer_id, i).reshape(blob.shape), blob)


# -- equivalence with OpenCV-DNN -------------------------------------------------------------


def test_default_boxes_match_priorbox(imported, opencv_out):
    np.testing.assert_allclose(centers_to_corners(default_boxes(imported.model.spec)), opencv_out["priors"], atol=1e-6)
    np.testing.assert_allclose(opencv_out["variances"], np.tile(imported.model.spec.variances, (1917, 1)), atol=1e-7)


def test_raw_class_scores_match(ours, opencv_out):
    assert ours["scores"].shape == opencv_out["scores"].shape == (7, 1917, 21)
    np.testing.assert_allclose(ours["scores"], opencv_out["scores"], rtol=0, atol=SCORE_ATOL)


def test_raw_box_offsets_match(ours, opencv_out):
    assert ours["offsets"].shape == opencv_out["offsets"].shape == (7, 1917, 4)
    np.testing.assert_allclose(ours["offsets"], opencv_out["offsets"], rtol=0, atol=OFFSET_ATOL)
    # The decoder clamps exp() beyond log(1000/16); these weights never get near it, so the
    # clamp (which OpenCV does not have) cannot cause a difference.
    assert np.abs(opencv_out["offsets"][..., 2:]).max() * 0.2 < _MAX_LOG_SCALE / 4


def unmatched(rows: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair detections (label, score, x1, y1, x2, y2) of two implementations one to one: same
    label, score and corners within tolerance. Returns the rows of each side left unpaired."""
    free = np.ones(len(others), dtype=bool)
    lonely = []
    for row in rows:
        close = (
            free
            & (others[:, 0] == row[0])
            & (np.abs(others[:, 1] - row[1]) <= SCORE_ATOL)
            & (np.abs(others[:, 2:] - row[2:]).max(axis=1, initial=0) <= BOX_ATOL)
        )
        if close.any():
            free[np.flatnonzero(close)[0]] = False
        else:
            lonely.append(row)
    return np.array(lonely).reshape(-1, 6), others[free]


def test_final_detections_match(ours, opencv_out):
    """Same detections: count, classes, scores and boxes.

    A candidate whose score lies within the score tolerance of the 0.25 threshold may fall on
    either side of it in either implementation; only such borderline detections may be
    missing on one side (for seed 0 none is: the closest score is 1.2e-6 from the threshold
    and both implementations agree on it, so the counts are equal).
    """
    reference = opencv_out["detections"]
    fg = opencv_out["scores"][..., 1:]
    borderline_candidates = (np.abs(fg - DETECTION.conf_threshold) <= SCORE_ATOL).sum(axis=(1, 2))
    counts = []
    for i, dets in enumerate(ours["detections"]):
        expected = reference[(reference[:, 0] == i) & (reference[:, 1] > 0)][:, 1:]  # label 0 rows are padding
        got = np.column_stack([dets.class_ids + 1, dets.scores, dets.boxes])
        only_ours, only_opencv = unmatched(got, expected)
        for side, rows in (("only ours", only_ours), ("only OpenCV", only_opencv)):
            borderline = np.abs(rows[:, 1] - DETECTION.conf_threshold) <= SCORE_ATOL
            assert borderline.all(), f"image {i}: detections {side}: {rows[~borderline]}"
        assert abs(len(got) - len(expected)) <= borderline_candidates[i]
        counts.append(len(got))
    assert min(counts) > 10 and max(counts) < DETECTION.max_detections  # thresholds and NMS at work, no cap


# -- the trained snapshot's layout: BatchNorm + Scale not yet folded --------------------------


def _with_batch_norm(net: Message) -> Message:
    """chuanqi305's un-merged deploy.prototxt: conv (no bias) -> BatchNorm -> Scale -> ReLU."""
    out = Message()
    for key, value in net.fields:
        out.add(key, value)
        if key == "layer" and value.get("type") == "Convolution" and "mbox" not in value.get("name"):
            value.message("convolution_param").set("bias_term", False)
            name, top = value.get("name"), value.get("top")
            out.add("layer", Message([("name", f"{name}/bn"), ("type", "BatchNorm"), ("bottom", top), ("top", top)]))
            out.add("layer", Message([("name", f"{name}/scale"), ("type", "Scale"), ("bottom", top), ("top", top),
                                      ("scale_param", Message([("bias_term", True)]))]))
    return out


def test_batch_norm_snapshot_is_folded(prototxt, frames, tmp_path):
    """mobilenet_iter_73000.caffemodel keeps BatchNorm/Scale layers; both prototxts must import it."""
    bn_prototxt = tmp_path / "deploy_bn.prototxt"
    bn_prototxt.write_text(format_message(_with_batch_norm(load(prototxt))))
    weights = tmp_path / "snapshot.caffemodel"
    net = load(bn_prototxt)
    write_caffemodel(weights, random_blobs(net, seed=1), net)
    reference = run_opencv(bn_prototxt, weights, frames[:3])
    for deploy in (bn_prototxt, prototxt):  # the un-merged and the merged (reference) prototxt
        result = convert(deploy, weights)
        assert len(result.folded) == 35 and result.folded["conv0"] == ("conv0/bn", "conv0/scale")
        out = run_ours(result.model, frames[:3])
        np.testing.assert_allclose(out["scores"], reference["scores"], rtol=0, atol=SCORE_ATOL)
        np.testing.assert_allclose(out["offsets"], reference["offsets"], rtol=0, atol=OFFSET_ATOL)


def test_weights_of_another_network_are_named(prototxt, tmp_path):
    net = load(prototxt)
    blobs = random_blobs(net, seed=0)
    narrow = write_caffemodel(tmp_path / "narrow.caffemodel", dict(blobs, conv6=[blobs["conv6"][0][:500], blobs["conv6"][1]]), net)
    with pytest.raises(NetworkMismatchError, match=r"narrow.caffemodel: layer 'conv6' has weights of shape \(500, 256, 1, 1\)"):
        convert(prototxt, narrow)
    missing = write_caffemodel(tmp_path / "missing.caffemodel", {k: v for k, v in blobs.items() if k != "conv12/dw"}, net)
    with pytest.raises(NetworkMismatchError, match=r"missing.caffemodel: has no weights for layer 'conv12/dw'"):
        convert(prototxt, missing)
    no_bias = write_caffemodel(tmp_path / "no_bias.caffemodel", dict(blobs, conv0=blobs["conv0"][:1]), net)
    with pytest.raises(NetworkMismatchError, match=r"layer 'conv0' has no bias blob although the prototxt gives it one"):
        convert(prototxt, no_bias)

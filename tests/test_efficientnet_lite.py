"""EfficientNet-Lite0: the safe .pth reader, the converted ImageNet classifier, the detector."""

import io
import pickle
import struct

import numpy as np
import pytest

from models.torch_weights import TorchFileError, read_legacy_state_dict

CHIHUAHUA, SORREL = 151, 339  # ImageNet class indices


def _legacy_bytes(state_pickle: bytes, keys: list[str], storages: list[np.ndarray]) -> bytes:
    """A legacy .pth file: magic, protocol, sys info, the state pickle, keys, then the storages."""
    out = io.BytesIO()
    for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(obj, out, protocol=2)
    out.write(state_pickle)
    pickle.dump(keys, out, protocol=2)
    for arr in storages:
        out.write(struct.pack("<q", arr.size))
        out.write(arr.astype("<f4").tobytes())
    return out.getvalue()


def _text(value: str) -> bytes:
    raw = value.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"  # GLOBAL


def _small_tuple(*ints: int) -> bytes:
    return b"(" + b"".join(b"K" + bytes([i]) for i in ints) + b"t"  # MARK, BININT1..., TUPLE


def _state_pickle(rebuild: tuple[str, str] = ("torch._utils", "_rebuild_tensor_v2")) -> bytes:
    """The pickle torch writes for {'w': a 2x3 float tensor on storage '0' with strides (1, 2)},
    written opcode by opcode (no torch needed to make it)."""
    ordered_dict = _global("collections", "OrderedDict") + b")R"  # OrderedDict()
    storage_id = (b"(" + _text("storage") + _global("torch", "FloatStorage") + _text("0") + _text("cpu")
                  + b"K\x06" + b"t" + b"Q")  # persistent id tuple, BINPERSID
    args = b"(" + storage_id + b"K\x00" + _small_tuple(2, 3) + _small_tuple(1, 2) + b"\x89" + ordered_dict + b"t"
    tensor = _global(*rebuild) + args + b"R"
    return b"\x80\x02" + ordered_dict + _text("w") + tensor + b"s."


def test_reader_rebuilds_strided_tensors(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(_legacy_bytes(_state_pickle(), ["0"], [np.arange(6, dtype=np.float32)]))
    state = read_legacy_state_dict(path)
    # stride (1, 2) over [0..5]: a transposed 3x2 buffer read as 2x3
    np.testing.assert_array_equal(state["w"], np.array([[0, 2, 4], [1, 3, 5]], np.float32))


def test_reader_refuses_code_and_damage(tmp_path):
    path = tmp_path / "evil.pth"
    path.write_bytes(_legacy_bytes(_state_pickle(("os", "system")), ["0"], [np.zeros(6, np.float32)]))
    with pytest.raises(TorchFileError, match="evil.pth: refuses to load os.system"):
        read_legacy_state_dict(path)
    good = _legacy_bytes(_state_pickle(), ["0"], [np.arange(6, dtype=np.float32)])
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good[:-8])
    with pytest.raises(TorchFileError, match="cut.pth: storage 0 claims 6 elements past the end"):
        read_legacy_state_dict(cut)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(TorchFileError, match="junk.pth"):
        read_legacy_state_dict(junk)
    with pytest.raises(TorchFileError, match="SHA-256"):
        read_legacy_state_dict(tmp_path / "junk.pth", sha256_prefix="57934424")
    with pytest.raises(TorchFileError, match="cannot be read"):
        read_legacy_state_dict(tmp_path / "missing.pth")


@pytest.fixture(scope="module")
def state():
    from models.efficientnet_lite import load_state_dict

    return load_state_dict()


def test_published_weights_are_read_completely(state):
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    params = sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    n_bn = sum(v.size for k, v in state.items() if "running_" in k)
    assert params - n_bn == 4_652_008  # trainable parameters, classifier included


def _centre_crop(path, size=224) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path))[:, :, ::-1].astype(np.float32)
    h, w = image.shape[:2]
    s = min(h, w)
    crop = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def _probabilities(model, image):
    logits = np.asarray(model(image[None]))[0].astype(np.float64)
    e = np.exp(logits - logits.max())
    return e / e.sum()


@pytest.fixture(scope="module")
def reference_images(shared_dir):
    folder = shared_dir / "reference" / "chuanqi305-mobilenet-ssd" / "images"
    return {name: _centre_crop(folder / name) for name in ("000001.jpg", "004545.jpg")}


def test_imagenet_classifier_names_the_reference_photos(reference_images):
    """The converted network classifies as the original: a wrong transpose, padding, epsilon or
    normalisation each drops these answers (checked by the variants below)."""
    from models.efficientnet_lite import imagenet_classifier

    model = imagenet_classifier()
    dog = _probabilities(model, reference_images["000001.jpg"])
    horse = _probabilities(model, reference_images["004545.jpg"])
    assert dog.argmax() == CHIHUAHUA and dog[CHIHUAHUA] > 0.9
    assert horse.argmax() == SORREL and horse[SORREL] > 0.8


def test_wrong_transposes_fail_the_reference(reference_images, state, monkeypatch):
    """The check above has teeth: kernels copied with the spatial axes swapped lose both answers."""
    import models.efficientnet_lite as lite

    for name, wrong in (("_dw_kernel", lambda w: np.transpose(w, (3, 2, 0, 1))),
                        ("_conv_kernel", lambda w: np.transpose(w, (3, 2, 1, 0)))):
        with monkeypatch.context() as m:
            m.setattr(lite, name, wrong)
            model = lite.imagenet_classifier()
            assert _probabilities(model, reference_images["000001.jpg"])[CHIHUAHUA] < 0.5, name


def test_padding_and_epsilon_matter(shared_dir, monkeypatch):
    """Symmetric k//2 padding and PyTorch's epsilon 1e-5 keep these two photos' top answers (the
    network is robust there), so they are pinned differently: each changes the class
    probabilities of the seven reference photos by a clear margin (total variation), i.e. the
    choice made in models/efficientnet_lite.py (TensorFlow's, as the weights were trained) is
    not a no-op that a future edit could flip unnoticed."""
    import models.efficientnet_lite as lite

    folder = shared_dir / "reference" / "chuanqi305-mobilenet-ssd" / "images"
    images = np.stack([_centre_crop(p) for p in sorted(folder.glob("*.jpg"))])

    def probabilities():
        logits = np.asarray(lite.imagenet_classifier()(images)).astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    base = probabilities()
    original_pad = lite.pad_for
    variants = {
        "epsilon 1e-5": ("BN_EPSILON", 1e-5),
        "symmetric padding": ("pad_for", lambda x, stride, padding, name, kernel=3:
                              original_pad(x, stride, "symmetric", name, kernel)),
    }
    for label, (attr, value) in variants.items():
        with monkeypatch.context() as m:
            m.setattr(lite, attr, value)
            tv = 0.5 * np.abs(probabilities() - base).sum(axis=1)
        assert tv.max() > 0.1, (label, tv)  # epsilon 1e-5 measured 0.14 at most


def test_detector_backbone_carries_exactly_the_imagenet_weights(state):
    from models.efficientnet_lite import keras_weight_map, load_imagenet_weights
    from models.layouts import lite0_spec
    from models.ssd import build_model

    model = build_model(lite0_spec(["person", "car"]))
    assert model.outputs[0].shape[1] == 8752
    assert load_imagenet_weights(model, state) == 98
    expected = keras_weight_map(state)
    layers = {layer.name: layer for layer in model.layers}
    for name, weights in expected.items():
        if name == "lite_classifier":
            assert name not in layers
            continue
        for got, want in zip(layers[name].get_weights(), weights):
            np.testing.assert_array_equal(got, want)
    assert len([n for n in layers if n.startswith("lite_") and layers[n].weights]) == 98


def test_load_imagenet_weights_refuses_another_network(state):
    from models.efficientnet_lite import load_imagenet_weights
    from models.layouts import seed_spec
    from models.ssd import build_model

    with pytest.raises(ValueError, match="0 of the 98 EfficientNet-Lite0 backbone layers"):
        load_imagenet_weights(build_model(seed_spec(["a"], alpha=0.25)), state)


def test_lite0_spec_round_trips_and_rejects_other_backbone_options():
    import dataclasses

    import yaml

    from models.layouts import lite0_spec
    from models.spec import ModelSpec, SpecError

    spec = lite0_spec(["helmet", "head"])
    assert ModelSpec.from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict()))) == spec
    with pytest.raises(SpecError, match="efficientnet_lite0 has fixed options"):
        dataclasses.replace(spec, backbone=dataclasses.replace(spec.backbone, alpha=0.5)).validate()
    data = spec.to_dict()
    data["heads"][0]["source"] = "block17"
    with pytest.raises(SpecError, match="block17.*not a feature map.*top"):
        ModelSpec.from_dict(data)

"""The Caffe file formats without Caffe: protobuf text parsing and the binary wire format."""

import math

import numpy as np
import pytest

from models.caffe import wire
from models.caffe.caffemodel import (
    encode_blob,
    encode_caffemodel,
    encode_layer,
    parse_layers,
    read_caffemodel,
    read_layers,
    write_caffemodel,
)
from models.caffe.errors import CaffemodelError, PrototxtError
from models.caffe.labels import read_labels
from models.caffe.prototxt import Identifier, Message, format_message, load, parse

# -- text format -------------------------------------------------------------------------


def test_prototxt_nested_repeated_and_scalars():
    msg = parse(
        """
        name: "net"   # a comment
        layer {
          name: 'conv'
          type: "Convolution"
          bottom: "data" top: "conv"
          convolution_param { num_output: 32 pad: 1 kernel_size: 3 bias_term: false engine: CAFFE }
        }
        layer: { name: "b" prior_box_param < min_size: 60.0 aspect_ratio: 2 aspect_ratio: 3.0f > }
        """
    )
    layers = msg.get_all("layer")
    assert msg.get("name") == "net" and len(layers) == 2
    conv = layers[0].message("convolution_param")
    assert conv.get("num_output") == 32 and conv.get("bias_term") is False
    assert conv.get("engine") == "CAFFE" and isinstance(conv.get("engine"), Identifier)
    assert layers[0].get_all("bottom") == ["data"] and layers[0].get("top") == "conv"
    prior = layers[1].message("prior_box_param")
    assert prior.get_all("aspect_ratio") == [2, 3.0] and prior.get("min_size") == 60.0
    assert layers[1].message("absent").fields == []  # a missing block reads as all defaults


@pytest.mark.parametrize(
    "text, expected",
    [
        ("v: -3", -3),
        ("v: 0x1f", 31),
        ("v: 010", 8),  # octal, as in C and protobuf
        ("v: 1e-3", 1e-3),
        ("v: .5", 0.5),
        ("v: 2.", 2.0),
        ("v: -inf", -math.inf),
        ("v: true", True),
        ("v: False", False),
        (r'v: "a\"b\n\x41\101"', 'a"b\nAA'),
        ("v: 'x' \"y\"", "xy"),  # adjacent strings join
    ],
)
def test_prototxt_scalar_values(text, expected):
    assert parse(text).get("v") == expected


def test_prototxt_list_syntax_and_separators():
    msg = parse("dim: [1, 3, 300, 300]; other: 1, last { }")
    assert msg.get_all("dim") == [1, 3, 300, 300]
    assert msg.get("other") == 1 and isinstance(msg.get("last"), Message)


@pytest.mark.parametrize(
    "text, match",
    [
        ("layer {\n  name: 'x'\n", r"line 2: expected '\}' to close a block"),
        ("a b", r"line 1, column 3: expected ':' or '\{' after field name 'a'"),
        ("a: ", "expected a value for 'a'"),
        ("a: 1\n  5: 2", r"line 2, column 3: expected a field name, found '5'"),
        ('a: "unterminated', "unexpected character"),
        ("a: [1 2]", "expected ',' or ']'"),
        ("a: }", "expected a value"),
    ],
)
def test_prototxt_errors_say_where(text, match):
    with pytest.raises(PrototxtError, match=match) as info:
        parse(text, "bad.prototxt")
    assert str(info.value).startswith("bad.prototxt: line ")


def test_prototxt_file_errors(tmp_path):
    with pytest.raises(PrototxtError, match="missing.prototxt: no such file"):
        load(tmp_path / "missing.prototxt")
    binary = tmp_path / "weights.caffemodel"
    binary.write_bytes(b"\n\x04name\x00\x01\x02")
    with pytest.raises(PrototxtError, match="is a binary file.*the prototxt comes first"):
        load(binary)


def test_prototxt_reference_file_round_trips(shared_dir):
    path = shared_dir / "reference/chuanqi305-mobilenet-ssd/MobileNetSSD_deploy.prototxt"
    net = load(path)
    layers = net.get_all("layer")
    assert len(layers) == 119 and net.message("input_shape").get_all("dim") == [1, 3, 300, 300]
    assert layers[-1].message("detection_output_param").get("code_type") == "CENTER_SIZE"
    assert parse(format_message(net)) == net


# -- wire format ---------------------------------------------------------------------------


def test_wire_known_encodings():
    # The worked examples of the protobuf encoding guide.
    assert wire.varint_field(1, 150) == b"\x08\x96\x01"
    assert wire.string_field(2, "testing") == b"\x12\x07testing"
    assert wire.packed_varints_field(4, [3, 270, 86942]) == b"\x22\x06\x03\x8e\x02\x9e\xa7\x05"
    assert list(wire.iter_fields(b"\x08\x96\x01\x12\x07testing")) == [
        (1, wire.VARINT, 150),
        (2, wire.LENGTH, memoryview(b"testing")),
    ]
    assert wire.decode_varints(wire.LENGTH, memoryview(b"\x03\x8e\x02\x9e\xa7\x05")) == [3, 270, 86942]
    assert wire.encode_varint(-1) == b"\xff" * 9 + b"\x01"  # int64 -1: ten bytes
    assert wire.decode_varints(wire.VARINT, (1 << 64) - 1) == [-1]


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x08", "truncated varint"),
        (b"\x0a\x05ab", "claims 5 bytes"),
        (b"\x0b", "unsupported wire type 3"),
        (b"\x00\x01", "field number 0"),
        (b"\x0d\x00\x00", "truncated fixed-size field 1"),
    ],
)
def test_wire_rejects_malformed_bytes(data, match):
    with pytest.raises(wire.WireError, match=match):
        list(wire.iter_fields(data))


def _round_trip_net() -> Message:
    return parse(
        """
        name: "tiny"
        input: "data"
        input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
        layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
                convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
        layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
        layer { name: "dw" type: "Convolution" bottom: "conv" top: "dw"
                convolution_param { num_output: 4 kernel_size: 3 group: 4 bias_term: false } }
        """
    )


def test_caffemodel_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    blobs = {
        "conv": [rng.normal(size=(4, 3, 3, 3)).astype(np.float32), rng.normal(size=4).astype(np.float32)],
        "dw": [rng.normal(size=(4, 1, 3, 3)).astype(np.float32)],
    }
    path = write_caffemodel(tmp_path / "tiny.caffemodel", blobs, _round_trip_net())
    read = read_caffemodel(path)
    assert sorted(read) == ["conv", "dw"]
    for name, arrays in blobs.items():
        assert len(read[name]) == len(arrays)
        for got, want in zip(read[name], arrays):
            assert got.dtype == np.float32 and got.shape == want.shape
            np.testing.assert_array_equal(got, want)  # float32 is stored bit for bit
    layers = read_layers(path)
    assert [(l.name, l.type, l.bottom, l.top) for l in layers] == [
        ("conv", "Convolution", ["data"], ["conv"]),
        ("relu", "ReLU", ["conv"], ["conv"]),
        ("dw", "Convolution", ["conv"], ["dw"]),
    ]
    assert not list(tmp_path.glob("*.tmp"))


def test_caffemodel_writer_rejects_unknown_layers():
    with pytest.raises(ValueError, match=r"layers the prototxt does not have: \['typo'\]"):
        encode_caffemodel({"typo": [np.zeros(1)]}, _round_trip_net())


def test_caffemodel_reads_legacy_blobs_and_v1_layers():
    """Pre-2015 files: 4-D num/channels/height/width blobs, unpacked floats, V1 'layers' (field 2)."""
    values = np.arange(6, dtype=np.float32)
    legacy_blob = (
        wire.varint_field(1, 1) + wire.varint_field(2, 1) + wire.varint_field(3, 2) + wire.varint_field(4, 3)
        + b"".join(wire.key(5, wire.FIXED32) + np.float32(v).tobytes() for v in values)  # unpacked
    )
    v1_layer = (
        wire.string_field(2, "data") + wire.string_field(3, "fc") + wire.string_field(4, "fc")
        + wire.varint_field(5, 4)  # V1LayerParameter.LayerType CONVOLUTION
        + wire.length_field(6, legacy_blob)
    )
    (layer,) = parse_layers(wire.length_field(2, v1_layer))
    assert (layer.name, layer.type, layer.bottom, layer.top) == ("fc", "Convolution", ["data"], ["fc"])
    np.testing.assert_array_equal(layer.blobs[0], values.reshape(1, 1, 2, 3))


def test_caffemodel_reads_batch_norm_eps_and_double_data():
    eps_param = wire.key(3, wire.FIXED32) + np.float32(1e-3).tobytes()
    doubles = wire.length_field(8, np.array([1.5, -2.0], "<f8").tobytes())
    blob = wire.length_field(7, wire.packed_varints_field(1, [2])) + doubles
    layer = encode_layer("bn", "BatchNorm", ["x"], ["x"], []) + wire.length_field(7, blob)
    layer += wire.length_field(139, eps_param)
    (parsed,) = parse_layers(wire.length_field(100, layer))
    assert parsed.batch_norm_eps == pytest.approx(1e-3)
    np.testing.assert_array_equal(parsed.blobs[0], [1.5, -2.0])


def test_blob_shape_must_match_its_data():
    bad = wire.length_field(7, wire.packed_varints_field(1, [2, 3])) + wire.packed_floats_field(5, np.zeros(5))
    layer = wire.string_field(1, "conv") + wire.length_field(7, bad)
    with pytest.raises(CaffemodelError, match=r"layer 'conv': a blob of shape \(2, 3\) holds 5 values"):
        parse_layers(wire.length_field(100, layer), "w.caffemodel")
    assert encode_blob(np.zeros((2, 3))).startswith(b"\x3a\x04\x0a\x02\x02\x03")  # shape {dim: [2, 3]}


def test_caffemodel_file_errors(tmp_path):
    with pytest.raises(CaffemodelError, match="none.caffemodel: no such file"):
        read_layers(tmp_path / "none.caffemodel")
    text = tmp_path / "net.prototxt"
    text.write_text('name: "x"\nlayer { name: "a" }\n')
    with pytest.raises(CaffemodelError, match="net.prototxt: is not a readable binary Caffe model"):
        read_layers(text)
    empty = tmp_path / "empty.caffemodel"
    empty.write_bytes(wire.string_field(1, "net"))
    with pytest.raises(CaffemodelError, match="holds no layers with weights"):
        read_layers(empty)


# -- label files --------------------------------------------------------------------------


def test_label_files(tmp_path):
    plain = tmp_path / "labels.txt"
    plain.write_text("background\nhelmet\n\nhead  # people without one\n")
    assert read_labels(plain) == ["helmet", "head"]
    labelmap = tmp_path / "labelmap.prototxt"
    labelmap.write_text(
        'item { name: "none_of_the_above" label: 0 display_name: "background" }\n'
        'item { name: "c2" label: 2 display_name: "cat" }\n'
        'item { name: "c1" label: 1 display_name: "dog" }\n'
    )
    assert read_labels(labelmap) == ["dog", "cat"]
    blank = tmp_path / "blank.txt"
    blank.write_text("\n# nothing\n")
    with pytest.raises(ValueError, match="blank.txt: lists no class names"):
        read_labels(blank)


def test_damaged_caffemodels_fail_cleanly(tmp_path):
    """Flipped bytes and cut files give CaffemodelError (or still parse), never another exception."""
    rng = np.random.default_rng(0)
    weights = {"conv": [rng.normal(size=(4, 3, 3, 3)).astype(np.float32), np.zeros(4, np.float32)],
               "dw": [rng.normal(size=(4, 1, 3, 3)).astype(np.float32)]}
    good = encode_caffemodel(weights, _round_trip_net())
    for trial in range(300):
        data = bytearray(good)
        if trial % 3 == 0:
            data = data[: rng.integers(1, len(data))]
        for _ in range(rng.integers(1, 4)):
            data[rng.integers(len(data))] = rng.integers(256)
        try:
            parse_layers(bytes(data), "damaged.caffemodel")
        except CaffemodelError as exc:
            assert str(exc).startswith("damaged.caffemodel: ")


def test_random_text_fails_cleanly():
    rng = np.random.default_rng(1)
    alphabet = list('abc_{}<>[]:;,"#\n 0123456789.-+e')
    for _ in range(300):
        text = "".join(rng.choice(alphabet, size=rng.integers(1, 40)))
        try:
            parse(text, "fuzz.prototxt")
        except PrototxtError as exc:
            assert str(exc).startswith("fuzz.prototxt: ")

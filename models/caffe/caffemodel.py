"""Read and write ``.caffemodel`` files (binary Caffe ``NetParameter``) without Caffe or protobuf.

Only the part of caffe.proto that carries weights is decoded; everything else is skipped:

    NetParameter      name = 1 (string), layer = 100 (LayerParameter), layers = 2 (V1LayerParameter)
    LayerParameter    name = 1, type = 2, bottom = 3, top = 4 (strings), blobs = 7 (BlobProto),
                      batch_norm_param = 139 (BatchNormParameter: eps = 3, float)
    V1LayerParameter  bottom = 2, top = 3, name = 4, type = 5 (enum), blobs = 6 (the pre-2015 format)
    BlobProto         shape = 7 (BlobShape), data = 5 (packed float), double_data = 8 (packed
                      double), legacy num = 1, channels = 2, height = 3, width = 4 (int32)
    BlobShape         dim = 1 (packed int64)

Blobs keep Caffe's layout: convolution weights (out, in / group, kh, kw), biases (out,).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..atomic import write_bytes_atomic
from . import wire
from .errors import CaffemodelError
from .prototxt import Message
from .prototxt import load as load_prototxt

# NetParameter
NET_NAME, NET_LAYERS_V1, NET_LAYER = 1, 2, 100
# LayerParameter
LAYER_NAME, LAYER_TYPE, LAYER_BOTTOM, LAYER_TOP, LAYER_BLOBS, LAYER_BATCH_NORM = 1, 2, 3, 4, 7, 139
BATCH_NORM_EPS = 3
# V1LayerParameter
V1_BOTTOM, V1_TOP, V1_NAME, V1_TYPE, V1_BLOBS = 2, 3, 4, 5, 6
# BlobProto and BlobShape
BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH = 1, 2, 3, 4
BLOB_DATA, BLOB_SHAPE, BLOB_DOUBLE_DATA = 5, 7, 8
SHAPE_DIM = 1

# V1LayerParameter.LayerType values of the layers that can carry weights or matter around them.
V1_TYPES = {4: "Convolution", 14: "InnerProduct", 18: "ReLU", 20: "Softmax", 39: "Deconvolution",
            3: "Concat", 8: "Flatten", 17: "Pooling", 25: "Eltwise", 6: "Dropout", 15: "LRN"}


@dataclass
class BinaryLayer:
    """One layer of a weights file: its name, type, blob names and weights (Caffe layout)."""

    name: str
    type: str
    bottom: list[str]
    top: list[str]
    blobs: list[np.ndarray]
    batch_norm_eps: float | None = None  # BatchNormParameter.eps when the file stores it


# -- reading -----------------------------------------------------------------------------


def _blob(payload: memoryview, where: str) -> np.ndarray:
    """Decode one BlobProto into a float32 array of its declared shape."""
    fields = wire.group_fields(payload)
    chunks = [wire.decode_floats(t, v) for t, v in fields.get(BLOB_DATA, [])]
    chunks += [wire.decode_doubles(t, v).astype(np.float32) for t, v in fields.get(BLOB_DOUBLE_DATA, [])]
    data = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0,), np.float32)
    if BLOB_SHAPE in fields:
        dims = wire.group_fields(wire.decode_message(*fields[BLOB_SHAPE][-1], f"{where} blob shape")).get(SHAPE_DIM, [])
        shape = [d for t, v in dims for d in wire.decode_varints(t, v)]
    else:
        # Pre-2015 blobs are always 4-D (num, channels, height, width); a bias is (1, 1, 1, n).
        legacy = (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH)
        shape = [wire.decode_varints(*fields[n][-1])[-1] if n in fields else 0 for n in legacy]
        if not any(shape):
            shape = [data.size]
    if int(np.prod(shape)) != data.size:
        raise wire.WireError(f"{where}: a blob of shape {tuple(shape)} holds {data.size} values")
    return data.reshape(shape)


@dataclass(frozen=True)
class _LayerFields:
    """Field numbers of a layer message: LayerParameter, or V1LayerParameter (enum types)."""

    name: int
    type: int
    bottom: int
    top: int
    blobs: int
    batch_norm: int | None
    type_names: Mapping[int, str] | None  # V1 stores the type as an enum


_CURRENT = _LayerFields(LAYER_NAME, LAYER_TYPE, LAYER_BOTTOM, LAYER_TOP, LAYER_BLOBS, LAYER_BATCH_NORM, None)
_V1 = _LayerFields(V1_NAME, V1_TYPE, V1_BOTTOM, V1_TOP, V1_BLOBS, None, V1_TYPES)
# NetParameter field number -> the layout of the layer messages it holds
_NET_LAYER_FIELDS = {NET_LAYER: _CURRENT, NET_LAYERS_V1: _V1}


def _strings(fields: dict, number: int, what: str) -> list[str]:
    return [wire.decode_string(v, what) for _, v in fields.get(number, [])]


def _layer(payload: memoryview, numbers: _LayerFields) -> BinaryLayer:
    """Decode one layer message."""
    fields = wire.group_fields(payload)
    names = _strings(fields, numbers.name, "a layer name")
    name = names[-1] if names else ""
    where = f"layer {name!r}"
    if numbers.type_names is None:
        types = _strings(fields, numbers.type, f"{where} type")
        type_ = types[-1] if types else ""
    else:
        codes = [c for t, v in fields.get(numbers.type, []) for c in wire.decode_varints(t, v)]
        type_ = numbers.type_names.get(codes[-1], f"V1 type {codes[-1]}") if codes else ""
    eps = None
    if numbers.batch_norm is not None and numbers.batch_norm in fields:
        params = wire.group_fields(wire.decode_message(*fields[numbers.batch_norm][-1], f"{where} batch_norm_param"))
        if BATCH_NORM_EPS in params:
            eps = wire.decode_float(*params[BATCH_NORM_EPS][-1])
    return BinaryLayer(
        name=name,
        type=type_,
        bottom=_strings(fields, numbers.bottom, f"{where} bottom"),
        top=_strings(fields, numbers.top, f"{where} top"),
        blobs=[_blob(wire.decode_message(t, v, f"{where} blob"), where) for t, v in fields.get(numbers.blobs, [])],
        batch_norm_eps=eps,
    )


def parse_layers(data: bytes, path: str | os.PathLike | None = None) -> list[BinaryLayer]:
    """Decode the layers of a binary NetParameter (both the current and the V1 format)."""
    layers: list[BinaryLayer] = []
    try:
        for number, wire_type, value in wire.iter_fields(data):
            if number in _NET_LAYER_FIELDS and wire_type == wire.LENGTH:
                layers.append(_layer(value, _NET_LAYER_FIELDS[number]))  # type: ignore[arg-type]
    except wire.WireError as exc:
        raise CaffemodelError(
            path, f"is not a readable binary Caffe model (.caffemodel): {exc}; the file is truncated or "
            f"of another kind (the text .prototxt comes first, then the .caffemodel)"
        ) from exc
    if not any(layer.blobs for layer in layers):
        raise CaffemodelError(
            path, "holds no layers with weights, so it is not a .caffemodel (or it is an empty one)"
        )
    return layers


def read_layers(path: str | os.PathLike) -> list[BinaryLayer]:
    """Every layer of a ``.caffemodel`` file, in file order, with its blobs."""
    path = Path(path)
    if not path.exists():
        raise CaffemodelError(path, "no such file")
    if path.is_dir():
        raise CaffemodelError(path, "is a folder, not a .caffemodel file")
    return parse_layers(path.read_bytes(), path)


def read_caffemodel(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """``{layer_name: [blob, ...]}`` of every layer with weights (float32, Caffe layout)."""
    return {layer.name: layer.blobs for layer in read_layers(path) if layer.blobs}


# -- writing -----------------------------------------------------------------------------


def encode_blob(array: np.ndarray) -> bytes:
    """BlobProto bytes: the shape (BlobShape) and the values as packed float32."""
    array = np.asarray(array, dtype=np.float32)
    shape = wire.length_field(BLOB_SHAPE, wire.packed_varints_field(SHAPE_DIM, list(array.shape)))
    return shape + wire.packed_floats_field(BLOB_DATA, array.ravel())


def encode_layer(name: str, type_: str, bottom: Sequence[str], top: Sequence[str],
                 blobs: Sequence[np.ndarray]) -> bytes:
    """LayerParameter bytes with its name, type, blob names and weights."""
    parts = [wire.string_field(LAYER_NAME, name), wire.string_field(LAYER_TYPE, type_)]
    parts += [wire.string_field(LAYER_BOTTOM, b) for b in bottom]
    parts += [wire.string_field(LAYER_TOP, t) for t in top]
    parts += [wire.length_field(LAYER_BLOBS, encode_blob(b)) for b in blobs]
    return b"".join(parts)


def _net_message(prototxt: Message | str | os.PathLike) -> Message:
    return prototxt if isinstance(prototxt, Message) else load_prototxt(prototxt)


def encode_caffemodel(blobs: Mapping[str, Sequence[np.ndarray]], prototxt: Message | str | os.PathLike) -> bytes:
    """NetParameter bytes: every layer of ``prototxt`` in order, with ``blobs[name]`` where given.

    Raises ValueError when ``blobs`` names a layer the prototxt does not have (a typo would
    otherwise silently leave that layer without weights).
    """
    net = _net_message(prototxt)
    layers: list[Message] = net.get_all("layer")
    names = {layer.get("name") for layer in layers}
    unknown = sorted(set(blobs) - names)
    if unknown:
        raise ValueError(f"weights given for layers the prototxt does not have: {unknown}")
    parts = [wire.string_field(NET_NAME, str(net.get("name", "")))]
    for layer in layers:
        name = str(layer.get("name", ""))
        payload = encode_layer(name, str(layer.get("type", "")), layer.get_all("bottom"),
                               layer.get_all("top"), blobs.get(name, ()))
        parts.append(wire.length_field(NET_LAYER, payload))
    return b"".join(parts)


def write_caffemodel(path: str | os.PathLike, blobs: Mapping[str, Sequence[np.ndarray]],
                     prototxt: Message | str | os.PathLike) -> Path:
    """Write a ``.caffemodel`` for ``prototxt`` with the given weights (Caffe layout), atomically.

    OpenCV-DNN and Caffe match weights to the prototxt's layers by name, so the file lists the
    prototxt's layers (name, type, bottom, top) and each one's blobs.
    """
    return write_bytes_atomic(path, encode_caffemodel(blobs, prototxt))

"""Random weights for any Caffe prototxt of convolutions, batch norms and scales, as a ``.caffemodel``.

With such a file OpenCV-DNN becomes an independent reference for the importer (tests) and the
network can be timed without the real weights (benchmarks). Weights are drawn so the signal
keeps its size through MobileNet-SSD's 35 convolutions: He et al. 2015 ("Delving deep into
rectifiers", Eq. 10) scale std = gain / sqrt(fan_in), with gain sqrt(2) before a ReLU (which
zeroes half the signal); biases are small (std 0.05).

The convolutions that feed no ReLU (the SSD heads) get gain ``HEAD_GAIN`` = 3 instead of
LeCun's 1: MobileNet-SSD's deeper maps are weak (their 3x3 convolutions see mostly padding on
3x3, 2x2 and 1x1 maps), and with gain 1 or 2 almost every softmax score stays below 0.25, so
a 0.25 threshold keeps next to nothing. With 3 (seed 0, the seven VOC photos of ../shared)
class logits have std 0.3-0.9 across the six heads, 32-93 detections per photo pass the
threshold (below DetectionOutput's keep_top_k of 100, so thresholding, NMS and ordering are all
exercised), and box offsets stay within +-3.3 (the decoder's exp() clamp engages beyond 20).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from .caffemodel import write_caffemodel
from .errors import NetworkMismatchError
from .net import ConvParams, Layer, input_blob, net_layers
from .prototxt import Message
from .prototxt import load as load_prototxt

BIAS_STD = 0.05
HEAD_GAIN = 3.0
# Layers that carry no weights and keep the channel count of their input.
CHANNEL_PRESERVING = {"ReLU", "ReLU6", "BatchNorm", "Scale", "Dropout", "Split", "Sigmoid", "TanH"}
# Layers without weights whose output channels random weights never need.
WEIGHTLESS = CHANNEL_PRESERVING | {"Input", "Permute", "Flatten", "Reshape", "Softmax", "Concat",
                                   "PriorBox", "DetectionOutput", "Pooling", "Eltwise", "Silence"}


def _conv_blobs(layer: Layer, in_channels: int, gain: float, rng: np.random.Generator, path) -> list[np.ndarray]:
    p = ConvParams.of(layer, path)
    if in_channels % p.group:
        raise NetworkMismatchError(path, f"layer {layer.name!r}: {in_channels} input channels do not split into {p.group} groups")
    fan_in = in_channels // p.group * p.kernel[0] * p.kernel[1]
    weight = rng.normal(0.0, gain / np.sqrt(fan_in), (p.num_output, in_channels // p.group, *p.kernel))
    blobs = [weight.astype(np.float32)]
    if p.bias_term:
        blobs.append(rng.normal(0.0, BIAS_STD, p.num_output).astype(np.float32))
    return blobs


def _batch_norm_blobs(layer: Layer, channels: int, gain: float, rng: np.random.Generator, path) -> list[np.ndarray]:
    """Caffe stores running mean and variance multiplied by a moving-average factor (blob 2)."""
    factor = np.float32(rng.uniform(10.0, 1000.0))
    mean = rng.normal(0.0, 0.05, channels)
    var = rng.uniform(0.8, 1.25, channels)
    return [(mean * factor).astype(np.float32), (var * factor).astype(np.float32), np.array([factor], np.float32)]


def _scale_blobs(layer: Layer, channels: int, gain: float, rng: np.random.Generator, path) -> list[np.ndarray]:
    blobs = [rng.uniform(0.8, 1.25, channels).astype(np.float32)]
    if bool(layer.param("scale_param").get("bias_term", False)):
        blobs.append(rng.normal(0.0, BIAS_STD, channels).astype(np.float32))
    return blobs


# Caffe layer type -> generator(layer, input channels, gain, rng, path) of its blobs.
BLOB_MAKERS: dict[str, Callable[..., list[np.ndarray]]] = {
    "Convolution": _conv_blobs,
    "BatchNorm": _batch_norm_blobs,
    "Scale": _scale_blobs,
}


def _output_channels(layer: Layer, in_channels: int | None, path) -> int | None:
    """Channels of a layer's output, where a later convolution may need them (else None)."""
    if layer.type == "Convolution":
        return ConvParams.of(layer, path).num_output
    return in_channels if layer.type in CHANNEL_PRESERVING else None


def _rectified_blobs(layers: list[Layer]) -> set[str]:
    """Blobs that some ReLU reads (its convolution's output is rectified)."""
    return {b for layer in layers if layer.type in ("ReLU", "ReLU6") for b in layer.bottom}


def random_blobs(prototxt: Message | str | os.PathLike, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """``{layer_name: [blobs]}`` for every layer with weights, in Caffe layout, seeded.

    Supports Convolution (grouped and depthwise too), BatchNorm and Scale; any other layer
    type with weights raises :class:`NetworkMismatchError` naming it.
    """
    path = None if isinstance(prototxt, Message) else prototxt
    net = prototxt if isinstance(prototxt, Message) else load_prototxt(prototxt)
    layers = net_layers(net, path)
    name, shape = input_blob(net, layers, path)
    channels: dict[str, int | None] = {name: shape[1]}
    rectified = _rectified_blobs(layers)
    rng = np.random.default_rng(seed)
    blobs: dict[str, list[np.ndarray]] = {}
    for layer in layers:
        if layer.type not in BLOB_MAKERS and layer.type not in WEIGHTLESS:
            raise NetworkMismatchError(path, f"layer {layer.name!r}: random weights for type {layer.type!r} are not supported")
        if not layer.bottom:
            continue  # an Input layer: its shape is already known from input_blob
        in_channels = channels.get(layer.bottom[0])
        if layer.type in BLOB_MAKERS:
            if in_channels is None:
                raise NetworkMismatchError(path, f"layer {layer.name!r}: the channel count of its input {layer.bottom[:1]} is unknown")
            gain = np.sqrt(2.0) if any(t in rectified for t in layer.top) else HEAD_GAIN
            blobs[layer.name] = BLOB_MAKERS[layer.type](layer, in_channels, gain, rng, path)
        for top in layer.top:
            channels[top] = _output_channels(layer, in_channels, path)
    return blobs


def write_random_caffemodel(prototxt_path: str | os.PathLike, out_path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a ``.caffemodel`` of seeded random weights for ``prototxt_path`` (OpenCV-DNN loads it)."""
    net = load_prototxt(prototxt_path)
    return write_caffemodel(out_path, random_blobs(net, seed), net)

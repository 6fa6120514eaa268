"""MobileNetV1 (Howard et al. 2017) as a feature extractor for SSD.

Built with the Keras functional API from standard layers only. Layer names follow
``keras.applications.MobileNet`` (conv1, conv_dw_i, conv_pw_i, ...) so weights are easy to
map, and every block's output is returned by name (block1 .. block13) for the SSD heads.
"""

from __future__ import annotations

import keras
from keras import layers

from .geometry import MOBILENET_V1_BLOCKS, STEM_FILTERS, pad_amounts
from .spec import BackboneSpec


def activation(opts: BackboneSpec, name: str) -> layers.Layer:
    """ReLU6 (MobileNet) or ReLU (Caffe MobileNet-SSD)."""
    return layers.ReLU(max_value=6.0 if opts.activation == "relu6" else None, name=name)


def pad_for(x, stride: int, padding: str, name: str, kernel: int = 3):
    """Explicit zero padding before a "valid" k x k convolution (see geometry.pad_amounts).

    Explicit padding (rather than the framework's "same") keeps results identical on every
    backend and lets Caffe's symmetric padding be expressed too.
    """
    h, w = x.shape[1], x.shape[2]
    ph, pw = pad_amounts(h, stride, padding, kernel), pad_amounts(w, stride, padding, kernel)
    if ph == (0, 0) and pw == (0, 0):
        return x
    return layers.ZeroPadding2D(padding=(ph, pw), name=name)(x)


def conv_unit(x, filters: int, kernel: int, stride: int, padding: str, opts: BackboneSpec, name: str):
    """Convolution (+ batch norm) + activation. ``padding`` matters only for 3x3 kernels."""
    if kernel > 1:
        x = pad_for(x, stride, padding, name=f"{name}_pad")
    x = layers.Conv2D(filters, kernel, strides=stride, padding="valid", use_bias=opts.use_bias, name=name)(x)
    if opts.batch_norm:
        x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name=f"{name}_bn")(x)
    return activation(opts, f"{name}_relu")(x)


def separable_unit(x, filters: int, stride: int, padding: str, opts: BackboneSpec, dw_name: str, pw_name: str):
    """Depthwise 3x3 (+BN) + act, then pointwise 1x1 (+BN) + act (MobileNet Fig. 3)."""
    x = pad_for(x, stride, padding, name=f"{dw_name}_pad")
    x = layers.DepthwiseConv2D(3, strides=stride, padding="valid", use_bias=opts.use_bias, name=dw_name)(x)
    if opts.batch_norm:
        x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name=f"{dw_name}_bn")(x)
    x = activation(opts, f"{dw_name}_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=opts.use_bias, name=pw_name)(x)
    if opts.batch_norm:
        x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name=f"{pw_name}_bn")(x)
    return activation(opts, f"{pw_name}_relu")(x)


def mobilenet_v1(x, opts: BackboneSpec) -> dict[str, keras.KerasTensor]:
    """Apply MobileNetV1 to ``x`` (B, H, W, 3); return {"block1": ..., "block13": ...}.

    The stem is a 3x3 stride-2 convolution of 32 * alpha filters; block i is the i-th
    depthwise-separable block of Table 1 (filters scaled by ``alpha``).
    """
    feats: dict[str, keras.KerasTensor] = {}
    x = conv_unit(x, int(STEM_FILTERS * opts.alpha), 3, 2, opts.stride2_padding, opts, name="conv1")
    for i, (filters, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        padding = opts.stride2_padding if stride == 2 else "same"
        x = separable_unit(x, int(filters * opts.alpha), stride, padding, opts, f"conv_dw_{i}", f"conv_pw_{i}")
        feats[f"block{i}"] = x
    return feats

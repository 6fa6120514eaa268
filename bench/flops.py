"""Floating-point operations of a Keras model per frame, counted from its layers.

A multiply-add counts as 2 FLOPs. Convolutions (standard, depthwise) and dense layers are
counted exactly from their configs and output shapes; batch norm, activations, padding and
reshapes are left out (they are under 1% of a MobileNet-SSD's work and memory-bound).
"""

from __future__ import annotations

import numpy as np


def conv_flops(layer) -> int:
    """FLOPs of one Conv2D / DepthwiseConv2D / Dense layer for a batch of one."""
    out = layer.output.shape
    cls = type(layer).__name__
    if cls == "Conv2D":
        kh, kw = layer.kernel_size
        cin = layer.input.shape[-1]
        return 2 * out[1] * out[2] * kh * kw * cin * out[3] // (layer.groups or 1)
    if cls == "DepthwiseConv2D":
        kh, kw = layer.kernel_size
        return 2 * out[1] * out[2] * kh * kw * out[3]
    if cls == "Dense":
        return 2 * int(np.prod(layer.input.shape[1:])) * out[-1]
    return 0


def model_flops(model) -> int:
    """Total FLOPs of ``model`` for one input frame."""
    return sum(conv_flops(layer) for layer in model.layers)

"""Fold Caffe BatchNorm and Scale layers into the convolution before them.

Both are per-channel affine maps of the convolution's output, ``y = a * x + b``:

- BatchNorm (inference): ``a = 1 / sqrt(var + eps)``, ``b = -mean * a``, where Caffe stores
  mean and variance multiplied by a moving-average factor kept as a third blob (divide by it;
  a zero factor means zero statistics).
- Scale: ``a = gamma``, ``b = beta`` (0 without ``bias_term``).

So ``conv -> BN -> Scale`` equals one convolution with weights ``w * A`` (per output channel)
and bias ``bias * A + B``, for the composed (A, B). chuanqi305's training snapshot
(``mobilenet_iter_73000.caffemodel``) keeps these layers; its deploy prototxt has them folded.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

CAFFE_BN_EPS = 1e-5  # BatchNormParameter.eps default

Affine = tuple[np.ndarray, np.ndarray]


def batch_norm_affine(blobs: Sequence[np.ndarray], eps: float | None, channels: int) -> Affine:
    """(a, b) of a Caffe BatchNorm layer from its blobs [mean, variance, factor]."""
    mean = np.asarray(blobs[0], np.float64).reshape(-1)
    var = np.asarray(blobs[1], np.float64).reshape(-1)
    factor = float(np.asarray(blobs[2]).reshape(-1)[0]) if len(blobs) > 2 else 1.0
    inv_factor = 0.0 if factor == 0 else 1.0 / factor
    a = 1.0 / np.sqrt(var * inv_factor + (CAFFE_BN_EPS if eps is None else eps))
    return a, -mean * inv_factor * a


def scale_affine(blobs: Sequence[np.ndarray], eps: float | None, channels: int) -> Affine:
    """(a, b) of a Caffe Scale layer from its blobs [gamma] or [gamma, beta]."""
    a = np.asarray(blobs[0], np.float64).reshape(-1)
    b = np.asarray(blobs[1], np.float64).reshape(-1) if len(blobs) > 1 else np.zeros(channels)
    return a, b


# Caffe layer type -> (blobs, eps, channels) -> its per-channel affine map
AFFINE_OF: dict[str, Callable[[Sequence[np.ndarray], float | None, int], Affine]] = {
    "BatchNorm": batch_norm_affine,
    "Scale": scale_affine,
}
BLOB_COUNTS = {"BatchNorm": (2, 3), "Scale": (1, 2)}


def fold(weight: np.ndarray, bias: np.ndarray, affines: Sequence[Affine]) -> tuple[np.ndarray, np.ndarray]:
    """Apply per-channel affine maps (in order) to a Caffe convolution.

    weight: (O, I, kh, kw) Caffe layout; bias: (O,). Returns float32 (weight, bias).
    """
    a_total = np.ones(weight.shape[0])
    b_total = np.asarray(bias, np.float64).copy()
    for a, b in affines:
        a_total, b_total = a_total * a, b_total * a + b
    folded = np.asarray(weight, np.float64) * a_total.reshape(-1, *([1] * (weight.ndim - 1)))
    return folded.astype(np.float32), b_total.astype(np.float32)

"""Box formats and the SSD box encoding, in NumPy and in backend-agnostic ``keras.ops``.

Formats: "corners" is (x1, y1, x2, y2); "centers" is (cx, cy, w, h). Default boxes are always
normalised centers. The encoding (Liu et al. 2016, Eq. 2, with the variances of the Caffe
implementation) of a ground-truth box g against a default box d is

    t_x = (g_cx - d_cx) / d_w / v0     t_w = log(g_w / d_w) / v2
    t_y = (g_cy - d_cy) / d_h / v1     t_h = log(g_h / d_h) / v3

and decoding inverts it. The network's box outputs are these t values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# exp() of a wildly wrong width/height prediction must not overflow to inf: cap the log-scale
# at log(1000 / 16), as torchvision's BoxCoder does.
_MAX_LOG_SCALE = float(np.log(1000.0 / 16))


def corners_to_centers(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) x1, y1, x2, y2 -> cx, cy, w, h."""
    boxes = np.asarray(boxes)
    wh = boxes[..., 2:4] - boxes[..., 0:2]
    return np.concatenate([boxes[..., 0:2] + wh / 2, wh], axis=-1)


def centers_to_corners(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) cx, cy, w, h -> x1, y1, x2, y2."""
    boxes = np.asarray(boxes)
    half = boxes[..., 2:4] / 2
    return np.concatenate([boxes[..., 0:2] - half, boxes[..., 0:2] + half], axis=-1)


def encode(
    gt_corners: np.ndarray, priors: np.ndarray, variances: Sequence[float]
) -> np.ndarray:
    """Encode matched ground truth against default boxes.

    gt_corners: (N, 4) normalised x1, y1, x2, y2, one per default box; priors: (N, 4)
    normalised centers. Returns float32 (N, 4) offsets. Widths/heights are floored at 1e-6 so a
    degenerate box gives a finite (very negative) log instead of -inf.
    """
    v = np.asarray(variances, dtype=np.float64)
    g = corners_to_centers(np.asarray(gt_corners, dtype=np.float64))
    p = np.asarray(priors, dtype=np.float64)
    gw = np.maximum(g[:, 2:4], 1e-6)
    txy = (g[:, 0:2] - p[:, 0:2]) / p[:, 2:4] / v[0:2]
    twh = np.log(gw / p[:, 2:4]) / v[2:4]
    return np.concatenate([txy, twh], axis=1).astype(np.float32)


def decode(deltas: np.ndarray, priors: np.ndarray, variances: Sequence[float]) -> np.ndarray:
    """Decode network offsets to normalised corners.

    deltas: (..., N, 4) t_x, t_y, t_w, t_h; priors: (N, 4) normalised centers.
    Returns float32 (..., N, 4) x1, y1, x2, y2, not clipped.
    """
    v = np.asarray(variances, dtype=np.float32)
    d = np.asarray(deltas, dtype=np.float32)
    p = np.asarray(priors, dtype=np.float32)
    cxy = d[..., 0:2] * v[0:2] * p[:, 2:4] + p[:, 0:2]
    wh = np.exp(np.minimum(d[..., 2:4] * v[2:4], _MAX_LOG_SCALE)) * p[:, 2:4]
    return np.concatenate([cxy - wh / 2, cxy + wh / 2], axis=-1)


def decode_ops(deltas, priors, variances: Sequence[float]):
    """:func:`decode` with ``keras.ops``, for use inside a compiled inference function.

    deltas: tensor (B, N, 4); priors: array, tensor or variable (N, 4) of normalised centers.
    Returns (B, N, 4) normalised corners in the deltas' dtype.
    """
    from keras import ops

    dtype = deltas.dtype
    v = ops.convert_to_tensor(np.asarray(variances, dtype=np.float32), dtype=dtype)
    if isinstance(priors, (np.ndarray, list, tuple)):
        priors = np.asarray(priors, dtype=np.float32)
    p = ops.cast(ops.convert_to_tensor(priors), dtype)
    cxy = deltas[..., 0:2] * v[0:2] * p[:, 2:4] + p[:, 0:2]
    wh = ops.exp(ops.minimum(deltas[..., 2:4] * v[2:4], _MAX_LOG_SCALE)) * p[:, 2:4]
    return ops.concatenate([cxy - wh / 2, cxy + wh / 2], axis=-1)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), both corners.

    Returns float (N, M). Zero-area boxes have IoU 0 with everything (no division by zero).
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    lt = np.maximum(a[:, None, 0:2], b[None, :, 0:2])
    rb = np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return iou.astype(np.float32)

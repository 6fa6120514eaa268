"""Any decoded picture to the one format the predictor takes: (H, W, 3) BGR uint8."""

from __future__ import annotations

import os

import numpy as np


class ImageFormatError(ValueError):
    """A decoded image cannot be turned into a BGR picture (wrong shape or empty)."""


def decode_failure(exc: Exception) -> str:
    """Why OpenCV refused to decode a picture (``cv2.error`` from ``imdecode``/``imread``), in
    the user's terms; the caller prefixes the file's name. One text for the app and the trainer."""
    if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
        limit = int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", 2**30))
        return (f"has more pixels than the limit of {limit / 1e6:.0f} megapixels (decoding it would take "
                f"gigabytes; set OPENCV_IO_MAX_IMAGE_PIXELS to raise the limit)")
    return f"cannot be decoded as an image ({getattr(exc, 'err', None) or exc})"


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any decoded picture -> (H, W, 3) BGR uint8, the only format the predictor takes.

    Handles grayscale (H, W) or (H, W, 1), BGRA (alpha dropped), 16-bit and float images
    (scaled to 8 bits). Raises :class:`ImageFormatError` for anything else.
    """
    if image is None or not isinstance(image, np.ndarray) or image.size == 0:
        raise ImageFormatError("empty image (nothing was decoded)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageFormatError(f"expected an image of 1, 3 or 4 channels, got shape {image.shape}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype == np.uint16:
        return np.ascontiguousarray((image >> 8).astype(np.uint8))
    if np.issubdtype(image.dtype, np.floating):
        peak = 1.0 if float(np.nanmax(image)) <= 1.0 else 255.0
        scaled = np.nan_to_num(image.astype(np.float32) * (255.0 / peak))
        return np.ascontiguousarray(np.clip(scaled, 0, 255).astype(np.uint8))
    if np.issubdtype(image.dtype, np.integer):
        return np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))
    raise ImageFormatError(f"unsupported pixel type {image.dtype}")

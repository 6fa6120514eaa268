"""Reading image files the same way everywhere (data check, training, evaluation)."""

from __future__ import annotations

import hashlib
import os

import cv2
import numpy as np

from runtime.images import decode_failure

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class UnreadableImage(ValueError):
    """An image file exists but cannot be read or decoded."""


def is_image_file(name: str) -> bool:
    """True for the extensions OpenCV decodes that labelling tools save (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def decode_image(data: bytes, path: str | os.PathLike, exif_orientation: bool = False) -> np.ndarray:
    """Decode file bytes to (H, W, 3) BGR uint8; grey and RGBA images become BGR.

    ``exif_orientation``: apply the JPEG's EXIF orientation (as photo viewers do). Off by
    default because labelImg labels the stored pixel grid (Qt does not rotate), and its
    ``<size>`` describes that grid; :mod:`trainer.scan` turns it on for a file whose
    ``<size>`` matches the rotated picture instead. Raises :class:`UnreadableImage` naming
    ``path`` when the bytes are not an image.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    flags = cv2.IMREAD_COLOR if exif_orientation else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        image = cv2.imdecode(buf, flags) if buf.size else None
    except cv2.error as exc:  # some malformed files raise instead of returning None; so does the pixel limit
        raise UnreadableImage(f"{path}: {decode_failure(exc)}") from exc
    if image is None or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise UnreadableImage(f"{path}: cannot be decoded as an image ({len(data)} bytes)")
    return image


def _read_bytes(path: str | os.PathLike) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise UnreadableImage(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def read_image(path: str | os.PathLike, exif_orientation: bool = False) -> np.ndarray:
    """Read and decode one image file: (H, W, 3) BGR uint8. Raises :class:`UnreadableImage`."""
    return decode_image(_read_bytes(path), path, exif_orientation)


def read_image_bytes(path: str | os.PathLike) -> tuple[bytes, str]:
    """The file's bytes and their SHA-1 (for finding duplicates), in one read."""
    data = _read_bytes(path)
    return data, hashlib.sha1(data).hexdigest()

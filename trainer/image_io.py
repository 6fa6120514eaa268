"""Reading image files the same way everywhere (data check, training, evaluation)."""

from __future__ import annotations

import hashlib
import os

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class UnreadableImage(ValueError):
    """An image file exists but cannot be read or decoded."""


def is_image_file(name: str) -> bool:
    """True for the extensions OpenCV decodes that labelling tools save (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def decode_image(data: bytes, path: str | os.PathLike) -> np.ndarray:
    """Decode file bytes to (H, W, 3) BGR uint8; grey and RGBA images become BGR.

    Raises :class:`UnreadableImage` naming ``path`` when the bytes are not an image.
    OpenCV applies the EXIF orientation here, as photo viewers and labelImg show the photo.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if image is None or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise UnreadableImage(f"{path}: cannot be decoded as an image ({len(data)} bytes)")
    return image


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read and decode one image file: (H, W, 3) BGR uint8. Raises :class:`UnreadableImage`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise UnreadableImage(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return decode_image(data, path)


def read_image_and_hash(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """One read of the file: the decoded image and the SHA-1 of its bytes (for duplicates)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise UnreadableImage(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    digest = hashlib.sha1(data).hexdigest()
    return decode_image(data, path), digest

"""Snapshots: the annotated frame as PNG, plus the clean frame and a Pascal VOC XML of its
detections, ready to be corrected in labelImg and added to a training folder. Qt-free.

For a snapshot named STEM in FOLDER::

    FOLDER/STEM.png                 the frame as shown, boxes drawn
    FOLDER/labelled/STEM.jpg        the clean frame
    FOLDER/labelled/STEM.xml        its detections as VOC objects (labelImg's own format)

``FOLDER/labelled`` is a labelled folder in labelImg's side-by-side layout: open it in
labelImg ("Open Dir"), fix the boxes, then ``main.py check-data FOLDER/labelled`` and train
with ``--data FOLDER/labelled``. Every file is written atomically.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models import Detections
from runtime.voc_writer import annotation_text, append_object, blank_annotation

from ..pipeline import FrameResult
from ..writers import AtomicFile, OutputError

LABELLED_DIR = "labelled"


@dataclass(frozen=True)
class SnapshotFiles:
    annotated: Path
    image: Path
    xml: Path


def voc_annotation(detections: Detections | None, filename: str, folder: str,
                   image_size: tuple[int, int]) -> str:
    """A Pascal VOC annotation (as labelImg writes it) of ``detections``.

    ``image_size``: (height, width). Boxes are rounded to whole pixels, 1-based as VOC
    counts them, and clipped to the image; detections become ordinary (non-difficult)
    objects.
    """
    root = blank_annotation(filename, folder, image_size, database="detector-app snapshot")
    for record in (detections.to_records() if detections is not None else []):
        append_object(root, record["class"], record["box"], image_size)
    return annotation_text(root)


def snapshot_stem(result: FrameResult) -> str:
    """A file name for a snapshot: source name, frame index and the time it was taken."""
    label = Path(result.frame.meta.get("file") or result.frame.label).stem
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:40] or "frame"
    return f"{time.strftime('%Y%m%d-%H%M%S')}_{safe}_f{result.frame.index}"


def save_snapshot(result: FrameResult, folder: str | os.PathLike, stem: str | None = None) -> SnapshotFiles:
    """Write the annotated PNG, the clean JPEG and its VOC XML (see the module docstring).

    Raises writers.OutputError naming the file that could not be written.
    """
    folder = Path(folder)
    stem = stem or snapshot_stem(result)
    labelled = folder / LABELLED_DIR
    files = SnapshotFiles(folder / f"{stem}.png", labelled / f"{stem}.jpg", labelled / f"{stem}.xml")
    _write_bytes(files.annotated, _encode(result.image, ".png", files.annotated))
    _write_bytes(files.image, _encode(result.frame.image, ".jpg", files.image))
    xml = voc_annotation(result.detections, files.image.name, LABELLED_DIR, result.frame.image.shape[:2])
    _write_bytes(files.xml, xml.encode("utf-8"))
    return files


def _encode(image: np.ndarray, ext: str, path: Path) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == ".jpg" else []
    ok, data = cv2.imencode(ext, image, params)
    if not ok:
        raise OutputError(f"{path}: the image could not be encoded")
    return data.tobytes()


def _write_bytes(path: Path, data: bytes) -> None:
    atomic = AtomicFile(path)
    try:
        atomic.tmp.write_bytes(data)
    except OSError as exc:
        atomic.abort()
        raise OutputError(f"{path}: could not be written ({exc.strerror or exc})") from exc
    atomic.commit()

"""Generated test media and models (no files from outside the test's tmp folder)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: int = 24, size: tuple[int, int] = (320, 240), fps: float = 25.0) -> Path:
    """An MJPG .avi of ``frames`` frames (w, h = size): a white square moving over a gradient."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), f"cannot write {path}"
    base = np.tile(np.linspace(0, 200, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    for i in range(frames):
        img = base.copy()
        x = (i * 7) % max(1, w - 40)
        cv2.rectangle(img, (x, h // 3), (x + 40, h // 3 + 40), (255, 255, 255), -1)
        cv2.putText(img, str(i), (5, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2)
        writer.write(img)
    writer.release()
    return path


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def force_class(model, class_name: str, logit: float = 12.0):
    """Make ``model`` predict ``class_name`` with near certainty on every default box.

    Zeroes the class predictors' kernels and sets their biases so the chosen class wins, which
    makes detections predictable for tests (boxes still come from the random box regressors).
    """
    c = model.class_names.index(class_name) + 1  # +1: background is column 0
    k = model.spec.num_classes
    for layer in model.layers:
        if layer.name.startswith("cls_") and not layer.name.endswith("_flat"):
            kernel, bias = layer.get_weights()
            bias = np.zeros_like(bias)
            bias[c::k] = logit
            layer.set_weights([np.zeros_like(kernel), bias])
    return model

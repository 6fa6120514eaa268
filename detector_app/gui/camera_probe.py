"""Finding the cameras that actually open. Qt-free; the GUI runs it off its thread."""

from __future__ import annotations

import cv2

# Indices tried: USB cameras are numbered from 0; more than a handful is rare on a desktop.
MAX_INDEX = 6
OPEN_TIMEOUT_MS = 1500


def probe_cameras(max_index: int = MAX_INDEX) -> list[int]:
    """Indices 0..max_index-1 whose camera opens and delivers a frame."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # "can't open camera" noise
    try:
        return [i for i in range(max_index) if _opens(i)]
    finally:
        cv2.utils.logging.setLogLevel(previous)


def _opens(index: int) -> bool:
    cap = cv2.VideoCapture(index, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS])
    try:
        return bool(cap.isOpened() and cap.read()[0])
    finally:
        cap.release()

"""The video view: paints the newest annotated frame, keeping its aspect ratio.

Like labelImg's Canvas it only paints and emits signals: ``framePainted(tag, paint_ms)`` the
first time a new frame reaches the screen (the window measures display FPS and latency from
it) and ``fileDropped(path)`` when a file is dropped on it.
"""

from __future__ import annotations

import time

import numpy as np
from PyQt5.QtCore import QRect, QSize, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage, QPainter, QPaintEvent
from PyQt5.QtWidgets import QSizePolicy, QWidget


def fit_rect(image_w: int, image_h: int, area: QRect) -> QRect:
    """The largest rectangle of the image's aspect ratio centred in ``area``."""
    if image_w <= 0 or image_h <= 0:
        return QRect(area)
    scale = min(area.width() / image_w, area.height() / image_h)
    w, h = max(1, int(image_w * scale)), max(1, int(image_h * scale))
    return QRect(area.x() + (area.width() - w) // 2, area.y() + (area.height() - h) // 2, w, h)


def bgr_qimage(image: np.ndarray) -> QImage:
    """A QImage over a BGR uint8 (H, W, 3) array (no copy: keep the array alive)."""
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    return QImage(image.data, w, h, image.strides[0], QImage.Format_BGR888)


class VideoView(QWidget):
    framePainted = pyqtSignal(object, float)  # tag given with the frame, paint milliseconds
    fileDropped = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(320, 240)
        self.setAcceptDrops(True)
        self.setAttribute(Qt.WA_OpaquePaintEvent)
        self._array: np.ndarray | None = None
        self._qimage: QImage | None = None
        self._tag: object = None
        self._tag_pending = False
        self._placeholder = "Open a video, images, a camera or a stream (or drop a file here)"

    def sizeHint(self) -> QSize:
        return QSize(800, 600)

    def set_frame(self, image: np.ndarray, tag: object = None) -> None:
        """Show ``image`` (BGR uint8) at the next paint; ``tag`` comes back in framePainted."""
        self._array = np.ascontiguousarray(image)
        self._qimage = bgr_qimage(self._array)
        self._tag, self._tag_pending = tag, True
        self.update()

    def clear(self, placeholder: str | None = None) -> None:
        self._array = self._qimage = None
        self._tag, self._tag_pending = None, False
        if placeholder is not None:
            self._placeholder = placeholder
        self.update()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def image(self) -> np.ndarray | None:
        """The frame shown now (BGR), if any."""
        return self._array

    def image_rect(self) -> QRect:
        """Where the frame is painted inside the widget."""
        if self._qimage is None:
            return QRect()
        return fit_rect(self._qimage.width(), self._qimage.height(), self.rect())

    def paintEvent(self, event: QPaintEvent) -> None:
        started = time.perf_counter()
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 24))
        if self._qimage is None:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignCenter | Qt.TextWordWrap, self._placeholder)
            painter.end()
            return
        painter.setRenderHint(QPainter.SmoothPixmapTransform, True)
        painter.drawImage(self.image_rect(), self._qimage)
        painter.end()
        if self._tag_pending:
            self._tag_pending = False
            self.framePainted.emit(self._tag, (time.perf_counter() - started) * 1e3)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _local_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = _local_paths(event)
        if paths:
            event.acceptProposedAction()
            self.fileDropped.emit(paths[0])


def _local_paths(event) -> list[str]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]

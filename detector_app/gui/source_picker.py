"""The camera drop-down: cameras that actually open, found off the GUI thread."""

from __future__ import annotations

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QWidget


class CameraPicker(QWidget):
    cameraChosen = pyqtSignal(int)
    refreshRequested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.combo = QComboBox(toolTip="Cameras that opened when last looked for")
        self.refresh_button = QPushButton("↻", toolTip="Look for cameras again")
        self.refresh_button.setMaximumWidth(32)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.refresh_button)
        self.combo.activated.connect(self._activated)
        self.refresh_button.clicked.connect(self.refreshRequested)
        self.set_probing()

    def set_probing(self) -> None:
        self._fill(["Looking for cameras…"], [None])
        self.combo.setEnabled(False)
        self.refresh_button.setEnabled(False)

    def set_cameras(self, indices: list[int]) -> None:
        if indices:
            self._fill(["Choose a camera…", *(f"Camera {i}" for i in indices)], [None, *indices])
        else:
            self._fill(["No camera found"], [None])
        self.combo.setEnabled(bool(indices))
        self.refresh_button.setEnabled(True)

    def _fill(self, labels: list[str], data: list) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        for label, value in zip(labels, data):
            self.combo.addItem(label, value)
        self.combo.blockSignals(False)

    def _activated(self, index: int) -> None:
        value = self.combo.itemData(index)
        if value is not None:
            self.cameraChosen.emit(int(value))

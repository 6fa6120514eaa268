"""The model picker: the bundled model, imported models and trained models from the registry
(missing files greyed out), plus "Open…" for any model file."""

from __future__ import annotations

import os

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..model_registry import ModelEntry, list_models


class _RefreshingCombo(QComboBox):
    """A combo box that re-reads its entries each time it opens (training or
    ``main.py import-caffe`` may have added a model meanwhile)."""

    aboutToShow = pyqtSignal()

    def showPopup(self) -> None:
        self.aboutToShow.emit()
        super().showPopup()


class ModelPicker(QWidget):
    modelChosen = pyqtSignal(str)  # a model file path
    openRequested = pyqtSignal()

    def __init__(self, registry: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.registry = registry
        self.combo = _RefreshingCombo(toolTip="Swap the model; the stream keeps running")
        self.combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(16)
        self.open_button = QPushButton("Open…", toolTip="Load another model file (Ctrl+M)")
        self.state = QLabel("")
        self.state.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.combo, 1)
        row.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.state)
        self.entries: list[ModelEntry] = []
        self._current: str | None = None
        self._current_label: str | None = None
        self.combo.activated.connect(self._activated)
        self.combo.aboutToShow.connect(self.refresh)
        self.open_button.clicked.connect(self.openRequested)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the registry (a training run may have added a model)."""
        self.entries = list_models(self.registry)
        self.combo.blockSignals(True)
        self.combo.clear()
        for i, entry in enumerate(self.entries):
            self.combo.addItem(entry.label(), entry.path)
            self.combo.setItemData(i, entry.path, 3)  # tooltip role: the full path
            if entry.missing:
                self.combo.model().item(i).setEnabled(False)
        self.combo.blockSignals(False)
        self.set_current(self._current, self._current_label)

    def set_current(self, path: str | None, label: str | None = None) -> None:
        """Select the entry of ``path`` (the model running now; None with a ``label`` for the
        random stand-in); files not listed are added."""
        self._current, self._current_label = path, label
        self.combo.blockSignals(True)
        if path is None and label is None:
            self.combo.setCurrentIndex(-1)
        else:
            self.combo.setCurrentIndex(self._index_of(path, label or os.path.basename(path)))
        self.combo.blockSignals(False)

    def _index_of(self, path: str | None, label: str) -> int:
        for i in range(self.combo.count()):
            data = self.combo.itemData(i)
            if path is not None and data and os.path.abspath(data) == os.path.abspath(path):
                return i
            if path is None and data is None and self.combo.itemText(i) == label:
                return i
        self.combo.addItem(label, path)
        return self.combo.count() - 1

    def set_state(self, text: str) -> None:
        self.state.setText(text)

    def _activated(self, index: int) -> None:
        path = self.combo.itemData(index)
        if path and path != self._current:
            self.modelChosen.emit(path)

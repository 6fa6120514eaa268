"""Confidence and NMS IoU sliders and the small-object tiling choice; a change applies from
the next frame."""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QSlider, QWidget

STEPS = 100  # slider positions per unit
# Tiled inference (runtime.tiling): the setting's value and what the menu shows.
TILE_CHOICES = {"off": "off (full frame only)", "2x2": "2x2 tiles (about 5x the time)",
                "3x3": "3x3 tiles (about 10x the time)"}


class _Slider(QWidget):
    def __init__(self, low: int, high: int, tooltip: str):
        super().__init__()
        self.slider = QSlider(Qt.Horizontal, toolTip=tooltip)
        self.slider.setRange(low, high)
        self.slider.setPageStep(5)
        self.label = QLabel()
        self.label.setMinimumWidth(32)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        self.slider.valueChanged.connect(lambda v: self.label.setText(f"{v / STEPS:.2f}"))

    def value(self) -> float:
        return self.slider.value() / STEPS

    def set_value(self, value: float) -> None:
        self.slider.setValue(int(round(value * STEPS)))
        self.label.setText(f"{self.slider.value() / STEPS:.2f}")


class ThresholdPanel(QWidget):
    thresholdsChanged = pyqtSignal(float, float)  # confidence, IoU
    tilesChanged = pyqtSignal(str)  # a key of TILE_CHOICES

    def __init__(self, conf: float = 0.5, iou: float = 0.45, tiles: str = "off", parent: QWidget | None = None):
        super().__init__(parent)
        self.conf = _Slider(0, STEPS - 1, "Minimum score of a detection ([ and ] change it)")
        self.iou = _Slider(1, STEPS, "NMS: boxes of one class overlapping more than this are merged")
        self.tiles = QComboBox(toolTip="Small objects (distant people, hard hats): also look at overlapping "
                                       "tiles of the frame, each at the model's full input size")
        for key, text in TILE_CHOICES.items():
            self.tiles.addItem(text, key)
        layout = QFormLayout(self)
        layout.addRow("Confidence", self.conf)
        layout.addRow("NMS IoU", self.iou)
        layout.addRow("Small objects", self.tiles)
        self.set_values(conf, iou)
        self.set_tiles(tiles)
        for slider in (self.conf.slider, self.iou.slider):
            slider.valueChanged.connect(self._changed)
        self.tiles.currentIndexChanged.connect(lambda _: self.tilesChanged.emit(self.tiles_value()))

    def tiles_value(self) -> str:
        return str(self.tiles.currentData())

    def set_tiles(self, key: str) -> None:
        index = self.tiles.findData(key if key in TILE_CHOICES else "off")
        self.tiles.setCurrentIndex(index)

    def _changed(self) -> None:
        self.thresholdsChanged.emit(self.conf.value(), self.iou.value())

    def set_values(self, conf: float, iou: float) -> None:
        self.conf.set_value(conf)
        self.iou.set_value(iou)

    def values(self) -> tuple[float, float]:
        return self.conf.value(), self.iou.value()

    def nudge_conf(self, steps: int) -> None:
        self.conf.slider.setValue(self.conf.slider.value() + steps)

"""Confidence and NMS IoU sliders; a change applies from the next frame."""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QSlider, QWidget

STEPS = 100  # slider positions per unit


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

    def __init__(self, conf: float = 0.5, iou: float = 0.45, parent: QWidget | None = None):
        super().__init__(parent)
        self.conf = _Slider(0, STEPS - 1, "Minimum score of a detection ([ and ] change it)")
        self.iou = _Slider(1, STEPS, "NMS: boxes of one class overlapping more than this are merged")
        layout = QFormLayout(self)
        layout.addRow("Confidence", self.conf)
        layout.addRow("NMS IoU", self.iou)
        self.set_values(conf, iou)
        for slider in (self.conf.slider, self.iou.slider):
            slider.valueChanged.connect(self._changed)

    def _changed(self) -> None:
        self.thresholdsChanged.emit(self.conf.value(), self.iou.value())

    def set_values(self, conf: float, iou: float) -> None:
        self.conf.set_value(conf)
        self.iou.set_value(iou)

    def values(self) -> tuple[float, float]:
        return self.conf.value(), self.iou.value()

    def nudge_conf(self, steps: int) -> None:
        self.conf.slider.setValue(self.conf.slider.value() + steps)

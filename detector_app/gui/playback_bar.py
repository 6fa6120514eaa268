"""Play / pause, one-frame step, seek slider and the real-time switch for files."""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QAbstractSlider, QCheckBox, QHBoxLayout, QLabel, QSlider, QToolButton, QWidget


def time_text(index: int, fps: float | None) -> str:
    if not fps:
        return f"frame {index}"
    seconds = index / fps
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


class PlaybackBar(QWidget):
    playToggled = pyqtSignal(bool)  # True: play
    stepRequested = pyqtSignal()
    seekRequested = pyqtSignal(int)  # frame index
    realtimeToggled = pyqtSignal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.play_button = QToolButton(text="Pause", toolTip="Play / pause (Space)")
        self.step_button = QToolButton(text="Step", toolTip="Next frame (.)")
        self.slider = QSlider(Qt.Horizontal, toolTip="Seek")
        self.position = QLabel("")
        self.realtime = QCheckBox("Real time", toolTip="Play files at their own frame rate "
                                  "(unticked: as fast as detection allows, no frame dropped)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        for widget, stretch in ((self.play_button, 0), (self.step_button, 0), (self.slider, 1),
                                (self.position, 0), (self.realtime, 0)):
            layout.addWidget(widget, stretch)
        self._playing = True
        self._fps: float | None = None
        self._count = 0
        self._seekable = False
        self._wire()
        self.set_source(False, None, None)

    def _wire(self) -> None:
        self.play_button.clicked.connect(lambda: self.playToggled.emit(not self._playing))
        self.step_button.clicked.connect(self.stepRequested)
        self.slider.sliderReleased.connect(lambda: self.seekRequested.emit(self.slider.value()))
        self.slider.actionTriggered.connect(self._slider_action)
        self.slider.sliderMoved.connect(self._show_position)
        self.realtime.toggled.connect(self.realtimeToggled)

    def _slider_action(self, action: int) -> None:
        # Clicks on the groove and keys move the slider after this signal: read it then.
        if action != QAbstractSlider.SliderMove:
            self.slider.valueChanged.connect(self._emit_seek_once)

    def _emit_seek_once(self, value: int) -> None:
        self.slider.valueChanged.disconnect(self._emit_seek_once)
        self.seekRequested.emit(value)

    def set_source(self, seekable: bool, frame_count: int | None, fps: float | None) -> None:
        """Enable the controls a source supports (a camera cannot pause or seek)."""
        self._fps, self._count = fps, frame_count or 0
        self._seekable = seekable
        for widget in (self.play_button, self.step_button):
            widget.setEnabled(seekable)
        self.slider.setEnabled(seekable and self._count > 1)
        self.slider.setRange(0, max(0, self._count - 1))
        self.realtime.setEnabled(seekable and bool(fps))
        self.position.setText("live" if not seekable and frame_count is None else "")

    def set_playing(self, playing: bool) -> None:
        self._playing = playing
        self.play_button.setText("Pause" if playing else "Play")

    @property
    def playing(self) -> bool:
        return self._playing

    def set_position(self, index: int | None) -> None:
        if index is None or not self._seekable or self.slider.isSliderDown():
            return
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self._show_position(index)

    def _show_position(self, index: int) -> None:
        total = f" / {time_text(self._count - 1, self._fps)}" if self._count else ""
        self.position.setText(f"{time_text(index, self._fps)}{total}")

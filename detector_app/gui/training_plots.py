"""Live loss and mAP curves of a training run (matplotlib in a Qt canvas)."""

from __future__ import annotations

from matplotlib.backends.backend_qt5agg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PyQt5 import sip
from PyQt5.QtCore import QTimer

from .training_progress import TrainingState

# Per-epoch series drawn: (history key, axis, label).
SERIES = (
    ("train_loss", 0, "train loss"),
    ("val_loss", 0, "val loss"),
    ("val_map", 1, "val mAP"),
)


class TrainingPlots(FigureCanvasQTAgg):
    def __init__(self):
        self.figure = Figure(figsize=(4, 3.2), tight_layout=True)
        super().__init__(self.figure)
        # Redraws go through a timer owned by this widget: matplotlib's own draw_idle posts a
        # bare callback that can fire after the widget is deleted (closing the training panel),
        # printing "wrapped C/C++ object ... has been deleted". A child timer dies with it.
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(0)
        self._redraw.timeout.connect(self._redraw_now)
        self.loss_axis, self.map_axis = self.figure.subplots(2, 1, sharex=True)
        self.setMinimumHeight(220)
        self._drawn = (-1, -1)
        self.show_state(TrainingState())

    def draw_idle(self) -> None:
        """Redraw once control returns to the event loop (several requests, one redraw)."""
        timer = getattr(self, "_redraw", None)
        if timer is None:  # called by the base class before __init__ finished
            return
        if self.isVisible():  # else showEvent redraws: no timer left pending in a window
            timer.start()     # that is closed (or collected) without ever being shown

    def _redraw_now(self) -> None:
        # A timeout already queued when the panel closes can still arrive while or after the
        # C++ widget goes (seen in CI: "wrapped C/C++ object of type TrainingPlots has been
        # deleted", once even with sip.isdeleted() still False); matplotlib's own idle draw
        # guards the same way. A redraw of a widget that is going away is simply dropped.
        if sip.isdeleted(self):
            return
        try:
            self.draw()
        except RuntimeError as exc:
            if "has been deleted" not in str(exc):
                raise

    def hideEvent(self, event) -> None:
        """Hidden plots need no redraw (closing the window hides them before deleting them)."""
        self._redraw.stop()
        super().hideEvent(event)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.draw_idle()  # whatever changed while hidden

    def show_state(self, state: TrainingState) -> None:
        """Redraw if there is something new (an epoch or a step loss)."""
        key = (len(state.history), len(state.step_losses))
        if key == self._drawn:
            return
        self._drawn = key
        axes = (self.loss_axis, self.map_axis)
        for axis in axes:
            axis.clear()
            axis.grid(True, alpha=0.3)
        if state.step_losses:
            x, y = zip(*state.step_losses)
            self.loss_axis.plot(x, y, color="0.7", linewidth=0.8, label="step loss")
        for key_name, index, label in SERIES:
            epochs, values = state.series(key_name)
            if values:
                axes[index].plot(epochs, values, marker="o", markersize=3, label=label)
        self.loss_axis.set_ylabel("loss")
        self.map_axis.set_ylabel("mAP")
        self.map_axis.set_xlabel("epoch")
        for axis in axes:
            if axis.lines:
                axis.legend(fontsize="small", loc="best")
        self.draw_idle()

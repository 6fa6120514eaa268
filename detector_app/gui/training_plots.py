"""Live loss and mAP curves of a training run (pyqtgraph).

pyqtgraph items are Qt graphics items: setting a curve's data schedules an ordinary Qt paint
of this widget, owned by it and gone with it. The matplotlib canvas used before needed a
redraw timer of its own, and its deferred redraws reached deleted widgets three times
("wrapped C/C++ object ... has been deleted") before they were fenced off.
"""

from __future__ import annotations

import pyqtgraph as pg

from .training_progress import TrainingState

# Per-epoch series drawn: (history key, plot index, label, colour).
SERIES = (
    ("train_loss", 0, "train loss", "#1f77b4"),
    ("val_loss", 0, "val loss", "#ff7f0e"),
    ("val_map", 1, "val mAP", "#2ca02c"),
)


class TrainingPlots(pg.GraphicsLayoutWidget):
    """Two plots: the loss (step losses in grey, per-epoch train and val loss) and the val mAP.
    ``curves`` maps each series name (and ``"step_loss"``) to its curve."""

    def __init__(self):
        super().__init__()
        self.setBackground("w")
        self.setMinimumHeight(220)
        self.loss_plot = self.addPlot(row=0, col=0)
        self.map_plot = self.addPlot(row=1, col=0)
        self.map_plot.setXLink(self.loss_plot)
        plots = (self.loss_plot, self.map_plot)
        for plot, label in zip(plots, ("loss", "mAP")):
            plot.showGrid(x=True, y=True, alpha=0.3)
            plot.setLabel("left", label)
            plot.addLegend(offset=(-10, 10))
        self.map_plot.setLabel("bottom", "epoch")
        self.curves = {"step_loss": self.loss_plot.plot(pen=pg.mkPen("#b3b3b3", width=1), name="step loss")}
        for key, index, label, colour in SERIES:
            self.curves[key] = plots[index].plot(pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5,
                                                 symbolBrush=colour, name=label)
        self._drawn = (-1, -1)
        self.show_state(TrainingState())

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """What a curve shows now: (x, y)."""
        x, y = self.curves[key].getData()
        return ([] if x is None else [float(v) for v in x]), ([] if y is None else [float(v) for v in y])

    def show_state(self, state: TrainingState) -> None:
        """Show the run as it stands, if there is something new (an epoch or a step loss)."""
        key = (len(state.history), len(state.step_losses))
        if key == self._drawn:
            return
        self._drawn = key
        if state.step_losses:
            x, y = zip(*state.step_losses)
            self.curves["step_loss"].setData(list(x), list(y))
        else:
            self.curves["step_loss"].setData([], [])
        for key_name, _, _, _ in SERIES:
            epochs, values = state.series(key_name)
            self.curves[key_name].setData(epochs, values)

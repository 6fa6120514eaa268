"""PNG plots: training curves and precision-recall curves (matplotlib, no display needed).

Figures are drawn with ``matplotlib.figure.Figure`` and the Agg canvas directly, never
pyplot: no global state, no GUI backend, safe in any thread. Files are written atomically.
"""

from __future__ import annotations

import io
import os
from typing import Any, Sequence

from .atomic import write_atomic


def _save(fig, path: str | os.PathLike) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    write_atomic(path, lambda f: f.write(buf.getvalue()))


def _epoch_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_losses(history: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Train loss (total, localisation, confidence) and validation loss per epoch."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot(1, 1, 1)
    epochs = [h["epoch"] for h in history]
    for key, label, style in (("train_loss", "train loss", "-"), ("train_loc", "train localisation", ":"),
                              ("train_conf", "train confidence", "--"), ("val_loss", "validation loss", "-")):
        points = [(e, h[key]) for e, h in zip(epochs, history) if h.get(key) is not None]
        if points:
            ax.plot(*zip(*points), style, marker="o", markersize=3, label=label)
    _epoch_axis(ax)
    ax.set_ylabel("loss (per positive default box)")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_map(history: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Validation mAP per epoch (VOC2010+ all-point and VOC2007 11-point), in %."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot(1, 1, 1)
    for key, label in (("val_map", "val mAP (all-point)"), ("val_map07", "val mAP (VOC07 11-point)")):
        points = [(h["epoch"], 100 * h[key]) for h in history if h.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o", markersize=3, label=label)
    _epoch_axis(ax)
    ax.set_ylabel("mAP @ IoU 0.5 (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no validation images", ha="center", va="center", transform=ax.transAxes)
    _save(fig, path)


def plot_pr_curves(result, path: str | os.PathLike) -> None:
    """Precision against recall for every class of a :class:`trainer.voc_eval.VOCResult`."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot(1, 1, 1)
    for c in result.classes:
        if c.ap is None or not len(c.recall):
            continue
        ax.plot(c.recall, c.precision, label=f"{c.name} (AP {100 * c.ap:.1f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    title = "precision-recall at IoU 0.5"
    if result.map is not None:
        title += f", mAP {100 * result.map:.1f}"
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(loc="lower left", fontsize="small")
    _save(fig, path)

"""A training run as the panel sees it: its progress events and the files it leaves. Qt-free.

``main.py train`` appends one JSON object per line to ``RUN_DIR/progress.jsonl`` (see
trainer/run_files.py): ``start``, ``step`` (about once a second), ``epoch``, ``checkpoint``
and, at the end, ``done``, ``stopped`` or ``error``. :class:`ProgressReader` reads what was
appended since the last call (a half-written last line waits for the next call) and
:class:`TrainingState` folds the events into what the panel shows. Unknown events and
missing fields are ignored, so the panel keeps working as the trainer grows.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable

import yaml

PROGRESS_FILE = "progress.jsonl"
SUMMARY_FILE = "summary.yaml"
CONFIG_FILE = "config.yaml"
# Model files a finished run leaves, best first.
RUN_MODELS = ("best.keras", "last.keras")
FINAL_STATES = ("done", "stopped", "error")


def _first(record: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present (not None) in ``record``."""
    return next((record[k] for k in keys if record.get(k) is not None), None)


class TrainingStatus(StrEnum):
    """Where a training run shown in the panel is."""

    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    DONE = "done"
    STOPPED = "stopped"
    ERROR = "error"

    @property
    def ended(self) -> bool:
        return self in (TrainingStatus.DONE, TrainingStatus.STOPPED, TrainingStatus.ERROR)


@dataclass
class TrainingState:
    """What is known about a run. ``history``: one dict per finished epoch (epoch,
    train_loss, val_loss, val_map, ...); ``status``: idle, running, done, stopped, error."""

    status: TrainingStatus = TrainingStatus.IDLE
    epoch: int = 0
    epochs: int | None = None
    step: int = 0
    steps: int | None = None
    loss: float | None = None
    message: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    step_losses: list[tuple[float, float]] = field(default_factory=list)  # (fractional epoch, loss)
    events: int = 0

    def apply(self, record: dict[str, Any]) -> None:
        """Fold one progress event in."""
        self.events += 1
        handler = EVENT_HANDLERS.get(str(record.get("event")))
        if handler is not None:
            handler(self, record)

    @property
    def fraction(self) -> float:
        """Done part of the run in [0, 1] (epochs, refined by steps inside the epoch)."""
        if not self.epochs:
            return 0.0
        inside = (self.step / self.steps) if self.steps else 0.0
        done = len(self.history) if self.history else max(0, self.epoch - 1)
        return min(1.0, (done + min(inside, 1.0)) / self.epochs)

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of one per-epoch figure, skipping epochs without it."""
        points = [(h.get("epoch"), h.get(key)) for h in self.history]
        kept = [(e, v) for e, v in points if isinstance(e, (int, float)) and isinstance(v, (int, float))]
        return [e for e, _ in kept], [v for _, v in kept]


def _on_start(state: TrainingState, record: dict[str, Any]) -> None:
    state.status = TrainingStatus.RUNNING
    state.epochs = _first(record, "epochs", "total_epochs") or state.epochs
    state.epoch = int(_first(record, "epoch", "start_epoch") or state.epoch or 0)
    resumed = " (resumed)" if record.get("resumed") else ""
    state.message = f"training started{resumed}"


def _on_step(state: TrainingState, record: dict[str, Any]) -> None:
    state.status = TrainingStatus.RUNNING
    state.epoch = int(_first(record, "epoch") or state.epoch)
    state.epochs = _first(record, "epochs") or state.epochs
    state.step = int(_first(record, "step") or 0)
    state.steps = _first(record, "steps", "steps_per_epoch") or state.steps
    state.loss = _first(record, "loss", "train_loss")
    if isinstance(state.loss, (int, float)) and state.steps:
        state.step_losses.append((state.epoch - 1 + state.step / state.steps, float(state.loss)))


def _on_epoch(state: TrainingState, record: dict[str, Any]) -> None:
    state.status = TrainingStatus.RUNNING
    epoch = int(_first(record, "epoch") or len(state.history) + 1)
    state.epoch, state.step = epoch, 0
    state.epochs = _first(record, "epochs") or state.epochs
    entry = {k: v for k, v in record.items() if k not in ("event", "time")}
    entry["epoch"] = epoch
    # A resumed run repeats the epochs it redoes: keep the latest of each.
    state.history = [h for h in state.history if h.get("epoch") != epoch] + [entry]
    state.message = f"epoch {epoch}" + (f" of {state.epochs}" if state.epochs else "")


def _on_end(status: TrainingStatus) -> Callable[[TrainingState, dict[str, Any]], None]:
    def handle(state: TrainingState, record: dict[str, Any]) -> None:
        state.status = status
        state.message = str(_first(record, "message", "reason", "error") or status)

    return handle


# Keyed by the ``event`` field of progress.jsonl as the trainer writes it (its ProgressEvent
# values; the file is the contract between the two processes, so no import of the trainer).
EVENT_HANDLERS: dict[str, Callable[[TrainingState, dict[str, Any]], None]] = {
    "start": _on_start,
    "step": _on_step,
    "epoch": _on_epoch,
    "done": _on_end(TrainingStatus.DONE),
    "stopped": _on_end(TrainingStatus.STOPPED),
    "error": _on_end(TrainingStatus.ERROR),
}


class ProgressReader:
    """Reads the lines appended to a progress file since the last :meth:`read`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._offset = 0
        self.bad_lines = 0

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        records = []
        for line in complete.splitlines():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.bad_lines += 1
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML mapping, or {} if the file is missing or unreadable."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def run_model(run_dir: str | os.PathLike) -> Path | None:
    """The model file a run produced (best validation mAP first), if any."""
    for name in RUN_MODELS:
        path = Path(run_dir) / name
        if path.is_file():
            return path
    return None


def can_resume(run_dir: str | os.PathLike) -> bool:
    """A run folder with a checkpoint and a recorded config can be continued."""
    run = Path(run_dir)
    return (run / CONFIG_FILE).is_file() and (run / "checkpoint.npz").is_file()


def evaluation_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary as (name, value) rows: scalars first, then per-class figures."""
    rows: list[tuple[str, str]] = []
    nested: list[tuple[str, dict]] = []
    for key, value in summary.items():
        if isinstance(value, dict):
            nested.append((key, value))
        elif isinstance(value, float):
            rows.append((key, f"{value:.4f}"))
        elif isinstance(value, (int, str, bool)) or value is None:
            rows.append((key, str(value)))
        elif isinstance(value, list) and len(value) <= 20:
            rows.append((key, ", ".join(map(str, value))))
    for key, table in nested:
        for sub, value in table.items():
            if not isinstance(value, (dict, list)):
                rows.append((f"{key}: {sub}", f"{value:.4f}" if isinstance(value, float) else str(value)))
    return rows


def ap_rows(state: TrainingState, epoch: int | None = None) -> list[tuple[str, str]]:
    """Average precision per class at ``epoch`` (default: the latest epoch that has it)."""
    entries = [h for h in state.history if isinstance(h.get("val_ap"), dict)]
    chosen = next((h for h in entries if h.get("epoch") == epoch), entries[-1] if entries else None)
    if chosen is None:
        return []
    return [(f"AP {name} (epoch {chosen['epoch']})", "n/a" if ap is None else f"{ap:.4f}")
            for name, ap in chosen["val_ap"].items()]

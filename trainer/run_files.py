"""The files of a run folder, and the writers of its logs.

    RUN_DIR/
      config.yaml         settings and resolved values (classes, network spec), at start
      data_report.json    the check-data report of the training folders
      train_images.txt    the split (image paths), at start
      val_images.txt
      checkpoint.npz      training state for resuming (trainer.checkpoint)
      last.keras          model after the latest epoch
      best.keras          model with the best validation mAP (the one to use)
      log.csv             one row per epoch
      loss.png, map.png   curves per epoch
      progress.jsonl      one JSON object per line: start, step, epoch, done/stopped/error
      summary.yaml        classes, images, epochs, time, final and best validation mAP

Everything except ``progress.jsonl`` (append-only) is replaced atomically.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from enum import StrEnum
from pathlib import Path
from typing import Any, Sequence

from .atomic import write_text_atomic
from .config import CHECKPOINT_FILE, CONFIG_FILE

LOG_COLUMNS = (
    "epoch", "lr", "train_loss", "train_loc", "train_conf", "train_l2", "val_loss", "val_map", "val_map07",
    "images", "seconds", "images_per_s", "frozen_backbone",
)


class RunFiles:
    """Paths of a run folder."""

    def __init__(self, root: str | os.PathLike, progress_jsonl: str | os.PathLike | None = None):
        self.root = Path(root)
        self.config = self.root / CONFIG_FILE
        self.checkpoint = self.root / CHECKPOINT_FILE
        self.data_report = self.root / "data_report.json"
        self.last_model = self.root / "last.keras"
        self.best_model = self.root / "best.keras"
        self.log_csv = self.root / "log.csv"
        self.loss_png = self.root / "loss.png"
        self.map_png = self.root / "map.png"
        self.summary = self.root / "summary.yaml"
        self.progress = Path(progress_jsonl) if progress_jsonl else self.root / "progress.jsonl"
        self.lock = self.root / ".lock"


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    import yaml

    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def write_log_csv(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """The whole history as CSV (rewritten each epoch, so a resumed run has one clean log)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else _round(row.get(k))) for k in LOG_COLUMNS})
    write_text_atomic(path, buf.getvalue())


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON: they become null (the message says what happened)."""
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return None
    return value


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


class ProgressEvent(StrEnum):
    """The ``event`` of a line of ``progress.jsonl`` (the GUI's training panel reads them)."""

    START = "start"
    STEP = "step"
    CHECKPOINT = "checkpoint"
    EPOCH = "epoch"
    DONE = "done"
    STOPPED = "stopped"
    ERROR = "error"


class ProgressLog:
    """Machine-readable progress for the GUI: one JSON object per line, flushed at once.

    Every line has ``event`` and ``time`` (Unix seconds). Events: ``start``, ``step``
    (at most about once a second), ``epoch``, ``checkpoint``, and one of ``done``,
    ``stopped``, ``error`` at the end.
    """

    def __init__(self, path: Path, min_step_interval_s: float = 1.0):
        self.path = path
        self.min_step_interval_s = min_step_interval_s
        self._last_step = 0.0
        path.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, event: ProgressEvent, **fields: Any) -> None:
        record = {"event": str(event), "time": round(time.time(), 3), **{k: _finite(v) for k, v in fields.items()}}
        line = json.dumps(record, allow_nan=False, default=str)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()

    def step(self, **fields: Any) -> None:
        """A step event, unless one was written less than ``min_step_interval_s`` ago."""
        now = time.monotonic()
        if now - self._last_step >= self.min_step_interval_s:
            self._last_step = now
            self.emit(ProgressEvent.STEP, **fields)

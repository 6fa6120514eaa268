"""The training state: everything an interrupted run needs to continue exactly.

One file, ``RUN_DIR/checkpoint.npz``, written atomically (temporary file, fsync,
``os.replace``), so the model weights, the optimiser state and the counters in it always
belong together:

- ``model__NNNN``: every detector variable (trainable and not, batch-norm statistics
  included), in ``detector.weights`` order, with their paths in the metadata;
- ``opt__<path>``: every optimiser variable (step counter, momenta or Adam moments, loss
  scale), by path (see :mod:`trainer.optim`);
- ``meta``: JSON (epoch, step inside the epoch, history, best mAP, running sums, elapsed
  time, the run's settings).

There is no random-number state to save: every random draw (shuffle, augmentation) is
seeded from (run seed, epoch, image), so the position (epoch, step) *is* the RNG state.
The model files ``last.keras`` / ``best.keras`` are for people and the app; resuming reads
only this file. Arrays are stored without pickling (``allow_pickle=False`` on load).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from .atomic import write_atomic
from .errors import DataError

CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, detector, optimizer_state: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write the training state atomically; the previous checkpoint stays until the new one is complete."""
    arrays: dict[str, np.ndarray] = {}
    for i, v in enumerate(detector.weights):
        arrays[f"model__{i:04d}"] = np.asarray(keras.ops.convert_to_numpy(v))
    for p, value in optimizer_state.items():
        arrays[f"opt__{p}"] = value
    full_meta = {**meta, "version": CHECKPOINT_VERSION, "model_paths": [v.path for v in detector.weights]}
    arrays["meta"] = np.frombuffer(json.dumps(full_meta).encode("utf-8"), dtype=np.uint8)

    def write(f) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        f.write(buf.getbuffer())

    return write_atomic(path, write)


def load_checkpoint(path: str | os.PathLike) -> tuple[list[np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """(model weights in order, optimiser state by path, metadata). Raises DataError naming
    the file when it is damaged."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode("utf-8"))
            n = len(meta["model_paths"])
            weights = [data[f"model__{i:04d}"] for i in range(n)]
            opt = {k[len("opt__"):]: data[k] for k in data.files if k.startswith("opt__")}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataError(path, f"the training checkpoint is damaged ({type(exc).__name__}: {exc}); "
                              "delete it to restart the run, or use another --out") from exc
    if meta.get("version") != CHECKPOINT_VERSION:
        raise DataError(path, f"checkpoint version {meta.get('version')} is not supported (expected {CHECKPOINT_VERSION})")
    return weights, opt, meta


def restore_model(detector, weights: list[np.ndarray], paths: list[str], where: str | os.PathLike) -> None:
    """Assign checkpoint weights to a detector built from the same spec, checking paths/shapes."""
    current = detector.weights
    if len(current) != len(weights) or [v.path for v in current] != list(paths):
        raise DataError(where, "the checkpoint holds another network than this run builds (layers differ); "
                               "use another --out")
    for v, w in zip(current, weights):
        if tuple(v.shape) != tuple(w.shape):
            raise DataError(where, f"checkpoint weight {v.path} has shape {w.shape}, the network {tuple(v.shape)}")
        v.assign(w)

"""The predictor: frames in, :class:`models.Detections` out, in three timed stages. Qt-free.

1. preprocess (CPU, OpenCV): resize each BGR frame to the model's input size; nothing else,
   since normalisation is a layer inside the model;
2. inference: network + softmax + box decoding as one graph run by an engine (see
   :mod:`detector_app.engines`: LiteRT/XNNPACK on a CPU, else ``tf.function`` or
   ``jax.jit``), never ``model.predict`` per frame;
3. postprocess (NumPy, vectorised): per-class threshold, top-k, NMS, scaling to the frame.

Thresholds and the class filter can change between frames (they are read once per call).
The predictor is not shared between threads: one inference worker owns it.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import cv2
import keras
import numpy as np

from models import Detections, PostprocessConfig, SSDModel, select_detections
from models.model_file import load_model

from .engines import make_engine
from .frames import to_bgr8

STAGES = ("preprocess", "inference", "postprocess")


@dataclass(frozen=True)
class StageTimes:
    """Milliseconds spent in each stage for one call (a batch counts once)."""

    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0
    batch: int = 1

    @property
    def total(self) -> float:
        return self.preprocess + self.inference + self.postprocess


class TimingStats:
    """Rolling per-stage figures over the last ``window`` calls (thread-safe reads)."""

    def __init__(self, window: int = 300):
        self._times: deque[StageTimes] = deque(maxlen=window)
        self._lock = threading.Lock()

    def add(self, t: StageTimes) -> None:
        with self._lock:
            self._times.append(t)

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"p50": ms, "p95": ms, "mean": ms}} per frame, over the window."""
        with self._lock:
            times = list(self._times)
        out: dict[str, dict[str, float]] = {}
        for stage in (*STAGES, "total"):
            values = sorted(getattr(t, stage) / t.batch for t in times)
            if not values:
                continue
            out[stage] = {
                "p50": statistics.median(values),
                "p95": values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))],
                "mean": statistics.fmean(values),
            }
        return out


def _tensorflow_device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return f"GPU ({gpus[0].name})" if gpus else "CPU"


def _jax_device() -> str:
    import jax

    dev = jax.devices()[0]
    return "CPU" if dev.platform == "cpu" else f"GPU ({dev.device_kind})"


def _torch_device() -> str:
    import torch

    return f"GPU ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "CPU"


DEVICES: dict[str, Callable[[], str]] = {
    "tensorflow": _tensorflow_device,
    "jax": _jax_device,
    "torch": _torch_device,
}


class Predictor:
    """Run a detector on BGR frames of any size.

    ``predict(frame) -> Detections`` and ``predict_batch(frames) -> list[Detections]``; the
    figures of the last call are in ``last_times`` and rolling ones in ``stats``.
    """

    def __init__(
        self,
        model: SSDModel,
        config: PostprocessConfig | None = None,
        classes: Iterable[str] | None = None,
        warmup: bool = True,
        source: str = "",
        engine: str = "auto",
        convert_in_child: bool = False,
    ):
        if not isinstance(model, SSDModel):
            raise TypeError(f"Predictor needs an SSDModel, got {type(model).__name__}")
        self.model = model
        self.spec = model.spec
        self.source = source  # where the model came from (a path), for display
        self.config = config or PostprocessConfig()
        self.class_filter = classes
        self.backend = keras.backend.backend()
        self.device = DEVICES[self.backend]()
        # convert_in_child: a first-time LiteRT conversion runs in a child process, so a GUI
        # that builds predictors on a worker thread never freezes (the converter holds the GIL).
        self.engine, self._infer = make_engine(model, engine, convert_in_child=convert_in_child)
        self.last_times = StageTimes()
        self.stats = TimingStats()
        h, w = self.spec.input_size
        self._input = np.zeros((1, h, w, 3), np.uint8)  # reused input buffer
        if warmup:
            self.warmup()

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kwargs) -> "Predictor":
        """Load a model file (raises models.model_file.ModelFileError naming it)."""
        return cls(load_model(path), source=str(path), **kwargs)

    # -- settings --------------------------------------------------------------------------

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    @property
    def class_filter(self) -> frozenset[str] | None:
        return self._class_filter

    @class_filter.setter
    def class_filter(self, classes: Iterable[str] | None) -> None:
        if classes is None:
            self._class_filter, self._class_mask = None, None
            return
        classes = frozenset(classes)
        unknown = classes - set(self.class_names)
        if unknown:
            raise ValueError(
                f"unknown classes {sorted(unknown)}; this model detects {list(self.class_names)}"
            )
        self._class_filter = classes
        self._class_mask = np.array([c in classes for c in self.class_names])

    def set_thresholds(self, conf: float | None = None, iou: float | None = None) -> None:
        """Change thresholds; they apply from the next call."""
        changes = {k: v for k, v in (("conf_threshold", conf), ("iou_threshold", iou)) if v is not None}
        self.config = dataclasses.replace(self.config, **changes)

    # -- the three stages -----------------------------------------------------------------

    def preprocess(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Resize BGR frames to the model input: uint8 (B, H, W, 3), a reused buffer."""
        h, w = self.spec.input_size
        if self._input.shape[0] != len(frames):
            self._input = np.zeros((len(frames), h, w, 3), np.uint8)
        for i, frame in enumerate(frames):
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                frame = to_bgr8(frame)
            if frame.shape[0] == h and frame.shape[1] == w:
                self._input[i] = frame
            else:
                cv2.resize(frame, (w, h), dst=self._input[i], interpolation=cv2.INTER_LINEAR)
        return self._input

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Compiled network + softmax + decoding: corners (B, N, 4), probs (B, N, C+1)."""
        return self._infer(batch)

    def postprocess(
        self, corners: np.ndarray, probs: np.ndarray, sizes: Sequence[tuple[int, int]]
    ) -> list[Detections]:
        config, mask = self.config, self._class_mask
        return [
            select_detections(corners[i], probs[i], config, self.class_names, sizes[i], mask)
            for i in range(len(sizes))
        ]

    # -- public calls ---------------------------------------------------------------------

    def predict(self, frame: np.ndarray) -> Detections:
        """Detections in one BGR frame (any size), boxes in the frame's pixels."""
        return self.predict_batch([frame])[0]

    def predict_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for several frames at once (one compiled call)."""
        if len(frames) == 0:
            return []
        t0 = time.perf_counter()
        sizes = [(f.shape[0], f.shape[1]) for f in frames]
        batch = self.preprocess(frames)
        t1 = time.perf_counter()
        corners, probs = self.infer(batch)
        t2 = time.perf_counter()
        results = self.postprocess(corners, probs, sizes)
        t3 = time.perf_counter()
        self.last_times = StageTimes((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, len(frames))
        self.stats.add(self.last_times)
        return results

    def warmup(self, batch_sizes: Iterable[int] = (1,)) -> None:
        """Trace/compile once so the first real frame is not slow."""
        h, w = self.spec.input_size
        for b in batch_sizes:
            self.infer(np.zeros((b, h, w, 3), np.uint8))

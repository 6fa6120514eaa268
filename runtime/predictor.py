"""The predictor: frames in, :class:`models.Detections` out, in three timed stages. Qt-free.

1. preprocess (CPU, OpenCV): resize each BGR frame to the model's input size; nothing else,
   since normalisation is a layer inside the model;
2. inference: network + softmax + box decoding as one graph run by an engine (see
   :mod:`runtime.engines`: LiteRT/XNNPACK on a CPU, else ``tf.function`` or ``jax.jit``),
   never ``model.predict`` per frame;
3. selection (NumPy, vectorised): per-class threshold, top-k, NMS, scaling to the frame.

One call runs at a time: a predictor owns a lock around its stages, because its resize
buffer and a LiteRT interpreter must not be used by two threads at once (the GUI briefly has
two pipelines on one predictor while switching sources). Each call returns its own timings
and, when asked, the raw outputs, so a caller can re-run selection with other thresholds
without running the network again. Thresholds and the class filter can change from any
thread between calls; a call reads them once.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence

import cv2
import keras
import numpy as np

from models import Detections, PostprocessConfig, SSDModel, select_detections
from models.model_file import load_model

from .engines import (
    ChildConversion,
    auto_engine,
    litert_cache_path,
    litert_runner,
    make_engine,
    resolve_engine,
    store_litert,
)
from .images import to_bgr8
from .stats import summarise
from .tiling import TileGrid, merge_batch

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


@dataclass(frozen=True)
class RawOutputs:
    """What the network said about one frame, before selection.

    ``corners``: (N, 4) float32 normalised x1, y1, x2, y2 (decoded default boxes);
    ``probs``: (N, C + 1) float32 softmax with background in column 0; ``image_size``:
    (height, width) of the frame the boxes are scaled to.
    """

    corners: np.ndarray
    probs: np.ndarray
    image_size: tuple[int, int]


@dataclass(frozen=True)
class Prediction:
    """The result of one call: one :class:`Detections` per frame, the call's stage times, and
    (if asked) each frame's :class:`RawOutputs`."""

    detections: tuple[Detections, ...]
    times: StageTimes
    raw: tuple[RawOutputs, ...] = ()


class TimingStats:
    """Rolling per-stage figures over the last ``window`` calls (thread-safe)."""

    def __init__(self, window: int = 300):
        self._times: deque[StageTimes] = deque(maxlen=window)
        self._lock = threading.Lock()

    def add(self, t: StageTimes) -> None:
        with self._lock:
            self._times.append(t)

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"p50", "p95", "mean", "n"}} in ms per frame, over the window."""
        with self._lock:
            times = list(self._times)
        if not times:
            return {}
        return {stage: summarise(getattr(t, stage) / t.batch for t in times) for stage in (*STAGES, "total")}


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


class Detector(Protocol):
    """What the pipeline, ``detect`` and the GUI need of a predictor (tests pass fakes)."""

    source: str
    device: str
    engine: str

    @property
    def class_names(self) -> tuple[str, ...]: ...

    @property
    def class_filter(self) -> frozenset[str] | None: ...

    @class_filter.setter
    def class_filter(self, classes: Iterable[str] | None) -> None: ...

    @property
    def tiles(self) -> TileGrid | None: ...

    @tiles.setter
    def tiles(self, grid: TileGrid | str | None) -> None: ...

    def set_thresholds(self, conf: float | None = None, iou: float | None = None) -> None: ...

    def run(self, frames: Sequence[np.ndarray], keep_raw: bool = False) -> Prediction: ...

    def select(self, raw: RawOutputs) -> Detections: ...


class Predictor:
    """Run a detector on BGR frames of any size.

    ``run(frames) -> Prediction`` (detections, times, optional raw outputs) is the one call;
    ``predict(frame)`` and ``predict_batch(frames)`` are its shorthands. Rolling figures are in
    ``stats``. Safe to call from several threads: calls are serialised by the predictor's lock.
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
        self.backend = keras.backend.backend()
        self.device = DEVICES[self.backend]()
        # One lock for the stages (the resize buffer, the engine); a separate small one for
        # settings, so a threshold change from the GUI never waits for an inference.
        self._run_lock = threading.Lock()
        self._settings_lock = threading.Lock()
        self._config = config or PostprocessConfig()
        self._class_filter: frozenset[str] | None = None
        self._class_mask: np.ndarray | None = None
        self._tiles: TileGrid | None = None
        self.class_filter = classes
        # convert_in_child: a first-time LiteRT conversion runs in a child process, so a GUI
        # that builds predictors on a worker thread never freezes (the converter holds the GIL).
        self.engine, self._infer = make_engine(model, engine, convert_in_child=convert_in_child)
        self.stats = TimingStats()
        h, w = self.spec.input_size
        self._input = np.zeros((1, h, w, 3), np.uint8)  # reused input buffer
        if warmup:
            self.warmup()

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kwargs) -> "Predictor":
        """Load a model file (raises models.model_file.ModelFileError naming it)."""
        return cls(load_model(path), source=str(path), **kwargs)

    # -- settings (any thread) ---------------------------------------------------------------

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    @property
    def config(self) -> PostprocessConfig:
        return self._config

    @config.setter
    def config(self, config: PostprocessConfig) -> None:
        with self._settings_lock:
            self._config = config

    @property
    def class_filter(self) -> frozenset[str] | None:
        return self._class_filter

    @class_filter.setter
    def class_filter(self, classes: Iterable[str] | None) -> None:
        if classes is None:
            with self._settings_lock:
                self._class_filter, self._class_mask = None, None
            return
        chosen = frozenset(classes)
        unknown = chosen - set(self.class_names)
        if unknown:
            raise ValueError(
                f"unknown classes {sorted(unknown)}; this model detects {list(self.class_names)}"
            )
        mask = np.array([c in chosen for c in self.class_names])
        with self._settings_lock:
            self._class_filter, self._class_mask = chosen, mask

    def set_thresholds(self, conf: float | None = None, iou: float | None = None) -> None:
        """Change thresholds; they apply from the next call."""
        with self._settings_lock:
            old = self._config
            self._config = dataclasses.replace(old, conf_threshold=old.conf_threshold if conf is None else conf,
                                               iou_threshold=old.iou_threshold if iou is None else iou)

    @property
    def tiles(self) -> TileGrid | None:
        """Tiled inference for small objects (see :mod:`runtime.tiling`), or None."""
        return self._tiles

    @tiles.setter
    def tiles(self, grid: TileGrid | str | None) -> None:
        if isinstance(grid, str):
            grid = TileGrid.parse(grid)
        with self._settings_lock:
            self._tiles = grid

    def _selection(self) -> tuple[PostprocessConfig, np.ndarray | None]:
        """The settings of one call, read together."""
        with self._settings_lock:
            return self._config, self._class_mask

    # -- the three stages (callers hold the run lock) ------------------------------------------

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
        config, mask = self._selection()
        return [
            select_detections(corners[i], probs[i], config, self.class_names, sizes[i], mask)
            for i in range(len(sizes))
        ]

    # -- public calls ---------------------------------------------------------------------

    def run(self, frames: Sequence[np.ndarray], keep_raw: bool = False,
            sizes: Sequence[tuple[int, int]] | None = None) -> Prediction:
        """Detections for ``frames`` (BGR, any size; one compiled call), with this call's times.

        ``keep_raw``: also return each frame's :class:`RawOutputs` (copies) for :meth:`select`.
        ``sizes``: the (height, width) to scale boxes to, when the frames were resized already
        (validation batches); default: each frame's own size.
        """
        if len(frames) == 0:
            return Prediction((), StageTimes(batch=0))
        grid = self._tiles  # read once: a change from another thread applies to the next call
        if sizes is None:
            sizes = [(f.shape[0], f.shape[1]) for f in frames]
        elif len(sizes) != len(frames):
            raise ValueError(f"{len(frames)} frames but {len(sizes)} sizes")
        elif grid is not None:
            raise ValueError("tiled inference needs the frames themselves, not frames resized already (sizes)")
        views = [grid.views(f.shape[0], f.shape[1]) for f in frames] if grid is not None else []
        with self._run_lock:
            t0 = time.perf_counter()
            if grid is None:
                batch = self.preprocess(frames)
            else:  # every view of every frame in one batch
                batch = self.preprocess([f[v.y:v.y + v.height, v.x:v.x + v.width]
                                         for f, frame_views in zip(frames, views) for v in frame_views])
            t1 = time.perf_counter()
            corners, probs = self.infer(batch)
            t2 = time.perf_counter()
        if grid is not None:
            corners, probs = merge_batch(np.asarray(corners), np.asarray(probs), views, sizes)
        results = self.postprocess(corners, probs, sizes)
        t3 = time.perf_counter()
        times = StageTimes((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, len(frames))
        self.stats.add(times)
        raw: tuple[RawOutputs, ...] = ()
        if keep_raw:
            raw = tuple(RawOutputs(np.array(corners[i], np.float32), np.array(probs[i], np.float32),
                                   (int(sizes[i][0]), int(sizes[i][1]))) for i in range(len(frames)))
        return Prediction(tuple(results), times, raw)

    def select(self, raw: RawOutputs) -> Detections:
        """Selection alone, with the current thresholds and class filter, on the raw outputs
        of an earlier call (a paused frame re-thresholded without running the network)."""
        config, mask = self._selection()
        return select_detections(raw.corners, raw.probs, config, self.class_names, raw.image_size, mask)

    def predict(self, frame: np.ndarray) -> Detections:
        """Detections in one BGR frame (any size), boxes in the frame's pixels."""
        return self.run([frame]).detections[0]

    def predict_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for several frames at once (one compiled call)."""
        return list(self.run(frames).detections)

    def swap_engine(self, name: str, infer: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> None:
        """Run the following calls on another engine (of the same model): the call in progress
        finishes on the old one, no call waits longer than that."""
        with self._run_lock:
            self.engine, self._infer = name, infer

    def warmup(self, batch_sizes: Iterable[int] = (1,)) -> None:
        """Trace/compile once so the first real frame is not slow."""
        h, w = self.spec.input_size
        with self._run_lock:
            for b in batch_sizes:
                self.infer(np.zeros((b, h, w, 3), np.uint8))


class EngineUpgrade:
    """Move a predictor from the compiled Keras graph to LiteRT once the graph, converted in a
    child process, is ready: the first launch of a model shows and detects at once (about
    2.5x slower per frame for the minute the conversion takes) instead of waiting for it.

    :meth:`run` blocks (call it on a worker thread); :meth:`cancel` (from any thread) kills
    the child and removes its files, so closing the app mid-conversion leaves nothing behind.
    """

    def __init__(self, predictor: Predictor, conversion: ChildConversion, cache_path: os.PathLike | str):
        self.predictor = predictor
        self.conversion = conversion
        self.cache_path = cache_path

    def run(self) -> str:
        """Wait for the conversion, cache it, switch the predictor; returns the engine name.
        Raises RuntimeError if the conversion failed or was cancelled (the predictor keeps
        the Keras graph)."""
        from pathlib import Path

        data = self.conversion.result()
        store_litert(Path(self.cache_path), data)
        infer = litert_runner(data, self.predictor.spec.input_size)  # warmed up before the swap
        self.predictor.swap_engine("litert", infer)
        return "litert"

    def cancel(self) -> None:
        self.conversion.cancel()


def start_predictor(model: SSDModel, source: str = "", engine: str = "auto",
                    **kwargs) -> tuple[Predictor, EngineUpgrade | None]:
    """A predictor that is ready now, and (when LiteRT is the engine to use but this model was
    never converted) the upgrade that switches it to LiteRT later. Otherwise the predictor
    uses its engine at once (a cached conversion loads in a fraction of a second)."""
    name = resolve_engine(engine)
    if name == "litert" and auto_engine() == "litert" and not litert_cache_path(model).exists():
        predictor = Predictor(model, source=source, engine="keras", **kwargs)
        return predictor, EngineUpgrade(predictor, ChildConversion(model), litert_cache_path(model))
    return Predictor(model, source=source, engine=name, convert_in_child=True, **kwargs), None

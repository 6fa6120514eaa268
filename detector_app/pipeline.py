"""The headless pipeline: capture thread -> queue -> one inference worker -> results. Qt-free.

::

    pipeline = HeadlessPipeline(open_source("vtest.avi"), predictor, on_result=print)
    stats = pipeline.run(max_frames=200)          # blocks; or start() ... stop()

The worker takes one frame at a time from the capture queue (at most one frame in flight),
runs the predictor, draws the overlay (so the GUI thread only has to paint a ready picture),
and calls ``on_result`` and every listener with a :class:`FrameResult` carrying the frame's
id, its capture time and per-stage milliseconds. An error on one frame is reported in that
frame's result and the stream goes on. Threshold, class-filter and model changes made from
any thread take effect before the next frame. The GUI and the benchmarks use this class
alike; callbacks run on the worker thread.
"""

from __future__ import annotations

import collections
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from models import Detections
from runtime.predictor import Detector, RawOutputs
from runtime.stats import percentile
from runtime.tiling import TileGrid

from .capture import (
    Backoff,
    CapturedFrame,
    CaptureEvent,
    CaptureState,
    CaptureThread,
    EndOfStream,
    EventKind,
    RateMeter,
)
from .frames import Frame
from .overlay import draw_detections
from .sources import FrameSource

STAGES = ("capture", "preprocess", "inference", "postprocess", "draw")
# How many recent frames the latency and stage figures cover.
WINDOW = 300


@dataclass
class FrameResult:
    """One processed frame.

    ``id``: capture number (unique per run). ``frame``: the source frame (``image`` is the raw
    BGR picture, ``captured_at`` its ``perf_counter`` read time). ``image``: the annotated
    picture (BGR uint8, the raw one when nothing was drawn). ``detections``: None when no
    model is loaded yet or detection failed (then ``error`` says why). ``stage_ms``: the
    milliseconds of each of :data:`STAGES`. ``done_at``: ``perf_counter`` when finished.
    """

    id: int
    frame: Frame
    image: np.ndarray
    detections: Detections | None
    stage_ms: dict[str, float]
    done_at: float
    model: str = ""
    error: str | None = None

    @property
    def latency_ms(self) -> float:
        """Capture to end of processing, in milliseconds."""
        return (self.done_at - self.frame.captured_at) * 1e3


@dataclass(frozen=True)
class PipelineStats:
    """A snapshot of the pipeline's figures (rates over the last 2 s, the rest over the
    last :data:`WINDOW` frames).

    ``dropped``: frames the capture queue replaced before the worker took them (live sources,
    real-time files). ``latency_ms``: {"p50", "p95"} from capture to result.
    """

    state: CaptureState
    captured: int
    processed: int
    dropped: int
    skipped: int
    errors: int
    reconnects: int
    capture_fps: float
    inference_fps: float
    latency_ms: dict[str, float]
    stage_ms: dict[str, float]
    device: str
    elapsed_s: float
    position: int | None = None
    frame_count: int | None = None

    @property
    def mean_fps(self) -> float:
        """Processed frames per second over the whole run."""
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def lines(self) -> list[str]:
        """Human-readable summary, for benchmarks and logs."""
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.stage_ms.items())
        return [
            f"{self.processed} frames processed in {self.elapsed_s:.1f} s ({self.mean_fps:.1f} FPS), "
            f"{self.dropped} dropped, {self.skipped} skipped, {self.errors} errors",
            f"latency capture->result p50 {self.latency_ms.get('p50', 0):.1f} ms, "
            f"p95 {self.latency_ms.get('p95', 0):.1f} ms; device {self.device}",
            f"ms per frame (median): {stages}",
        ]


Listener = Callable[[FrameResult], None]
OnEvent = Callable[[CaptureEvent], None]


@dataclass
class _Pending:
    """Changes asked from other threads, applied by the worker before its next frame."""

    predictor: object = None  # a Predictor waiting to be swapped in
    conf: float | None = None
    iou: float | None = None
    hidden: frozenset[str] | None = None
    tiles: TileGrid | None | bool = False  # False: unchanged; None: tiling off
    dirty: bool = False


@dataclass
class _Figures:
    processed: int = 0
    errors: int = 0
    latencies: collections.deque = field(default_factory=lambda: collections.deque(maxlen=WINDOW))
    stages: dict = field(default_factory=lambda: {s: collections.deque(maxlen=WINDOW) for s in STAGES})


class HeadlessPipeline:
    """Frames from ``source`` through ``predictor`` to ``on_result``, in two threads.

    ``predictor`` may be None (frames pass through undetected until :meth:`set_predictor`).
    ``realtime``: pace files at their FPS (dropping only when inference lags). ``draw``: draw
    the overlay in the worker. ``hold_at_end``: keep the threads at the end of a file so a
    seek can continue (a player); otherwise the pipeline finishes there. ``on_event`` hears
    capture events (warnings, reconnection, end) and per-frame errors, on the worker or
    capture thread.
    """

    def __init__(
        self,
        source: FrameSource,
        predictor=None,
        on_result: Listener | None = None,
        *,
        realtime: bool = False,
        draw: bool = True,
        on_event: OnEvent | None = None,
        hold_at_end: bool = False,
        backoff: Backoff | None = None,
        keep_raw: bool = False,
        lossless: bool = False,
    ):
        self.source = source
        self.draw = draw
        # keep_raw: keep the last frame's raw network outputs so :meth:`reselect` can apply new
        # thresholds to a paused frame without running the network again (the GUI's players).
        self.keep_raw = keep_raw
        self._last_raw: tuple[CapturedFrame, RawOutputs, Detector] | None = None
        self._reselect = threading.Event()
        self._reselects = [0, 0]  # [asked, answered]: a re-selection in progress is not idle
        self._predictor = predictor
        self._on_event = on_event
        self._listeners: list[Listener] = [on_result] if on_result else []
        self._lock = threading.Lock()
        self._pending = _Pending()
        self._hidden: frozenset[str] = frozenset()
        self._tiles: TileGrid | None = None
        self._conf_iou: tuple[float | None, float | None] = (None, None)
        self._figures = _Figures()
        self._rate = RateMeter()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._max_frames: int | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._end: EndOfStream | None = None
        self.capture = CaptureThread(source, realtime=realtime, on_event=self._event,
                                     hold_at_end=hold_at_end, backoff=backoff, lossless=lossless)
        self._worker = threading.Thread(target=self._work, name="inference-worker", daemon=True)

    # -- life cycle -------------------------------------------------------------------------

    def start(self, max_frames: int | None = None) -> "HeadlessPipeline":
        """Start both threads; the pipeline finishes after ``max_frames`` frames if given."""
        self._max_frames = max_frames
        self._started_at = time.perf_counter()
        self.capture.start()
        self._worker.start()
        return self

    def run(self, max_frames: int | None = None, timeout: float | None = None) -> PipelineStats:
        """Start, wait until the source ends (or ``max_frames``, or ``timeout`` seconds), stop,
        and return the figures."""
        self.start(max_frames)
        try:
            self.wait(timeout)
        finally:
            self.stop()
        return self.stats()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the pipeline finished by itself; True if it did."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        # Short waits in a loop so Ctrl-C reaches the main thread.
        while not self._done.wait(0.2):
            if deadline is not None and time.perf_counter() >= deadline:
                return False
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop both threads cooperatively and join them; True if both ended."""
        self._stop.set()
        capture_ended = self.capture.stop(timeout)
        if self._worker.is_alive() and self._worker is not threading.current_thread():
            self._worker.join(timeout)
        if self._ended_at is None and self._started_at is not None:
            self._ended_at = time.perf_counter()
        return capture_ended and not self._worker.is_alive()

    @property
    def running(self) -> bool:
        return self._worker.is_alive() or self.capture.is_alive()

    @property
    def finished(self) -> bool:
        """True once the source ended (or max_frames was reached)."""
        return self._done.is_set()

    @property
    def end(self) -> EndOfStream | None:
        """How the source ended, if it did (for a held file, the latest end)."""
        return self._end

    # -- listeners --------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(result)`` for every processed frame (on the worker thread)."""
        with self._lock:
            self._listeners = [*self._listeners, listener]

    def remove_listener(self, listener: Listener) -> None:
        """After this returns, ``listener`` is not called again."""
        with self._lock:
            self._listeners = [x for x in self._listeners if x is not listener]

    # -- settings (any thread; applied before the next frame) --------------------------------

    @property
    def predictor(self):
        return self._predictor

    def set_predictor(self, predictor) -> None:
        """Swap the model in between frames (the current frame finishes with the old one)."""
        self._update(predictor=predictor)

    def set_thresholds(self, conf: float | None = None, iou: float | None = None) -> None:
        changes = {k: v for k, v in (("conf", conf), ("iou", iou)) if v is not None}
        self._update(**changes)

    def set_tiles(self, tiles: TileGrid | str | None) -> None:
        """Tiled inference for small objects from the next frame ("3x3", a TileGrid, or
        None / "off"); a paused frame must be run again (seek), not re-selected."""
        self._update(tiles=TileGrid.parse(tiles) if isinstance(tiles, str) else tiles)

    def set_hidden_classes(self, names: Iterable[str]) -> None:
        """Do not report these classes (names the model does not know are ignored, so the
        choice carries over to another model)."""
        self._update(hidden=frozenset(names))

    def reselect(self) -> bool:
        """Show the last frame again with the current thresholds and class filter, re-running
        only the selection step on its cached raw outputs (on the worker thread, which then
        publishes a new result for the same frame). False when that is not possible (no
        ``keep_raw``, no frame yet, or the model changed): then seek to the frame instead."""
        with self._lock:
            cached = self._last_raw
            swapping = self._pending.predictor is not None and self._pending.predictor is not self._predictor
        if cached is None or swapping or cached[2] is not self._predictor:
            return False
        with self._lock:
            self._reselects[0] += 1
        self._reselect.set()
        self.capture.queue.wake()
        return True

    def idle(self) -> bool:
        """True when the worker has nothing left to do: no frame queued or being processed,
        no re-selection or setting change waiting. Together with a paused capture, this is
        "every frame read so far has been published" (what a test or a player waits for)."""
        with self._lock:
            busy = self._reselects[0] != self._reselects[1] or self._pending.dirty
        return not busy and self.capture.queue.settled

    def _update(self, **changes) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self._pending, name, value)
            self._pending.dirty = True

    # -- file controls (delegated to the capture thread) ---------------------------------------

    def pause(self) -> None:
        self.capture.pause()

    def resume(self) -> None:
        self.capture.resume()

    def step(self) -> None:
        self.capture.step()

    def seek(self, index: int) -> None:
        self.capture.seek(index)

    def set_realtime(self, realtime: bool) -> None:
        self.capture.set_realtime(realtime)

    # -- figures ----------------------------------------------------------------------------

    def stats(self) -> PipelineStats:
        cap = self.capture.stats()
        with self._lock:
            figures = self._figures
            latencies = list(figures.latencies)
            stages = {s: statistics.median(v) for s, v in figures.stages.items() if v}
            processed, errors = figures.processed, figures.errors
        stages["capture"] = cap.read_ms if cap.read else stages.get("capture", 0.0)
        end = self._ended_at or time.perf_counter()
        predictor = self._predictor
        return PipelineStats(
            state=self._state(cap.state),
            captured=cap.read,
            processed=processed,
            dropped=cap.dropped,
            skipped=cap.skipped,
            errors=errors,
            reconnects=cap.reconnects,
            capture_fps=cap.fps,
            inference_fps=self._rate.rate(),
            latency_ms={"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
            stage_ms={s: stages[s] for s in STAGES if s in stages},
            device=getattr(predictor, "device", "no model"),
            elapsed_s=(end - self._started_at) if self._started_at else 0.0,
            position=cap.position,
            frame_count=cap.frame_count,
        )

    def _state(self, capture_state: CaptureState) -> CaptureState:
        if self._done.is_set():
            return CaptureState.FINISHED if self._end is None or self._end.reason == "end" else CaptureState.FAILED
        if self._stop.is_set():
            return CaptureState.STOPPED
        return capture_state

    # -- the worker -------------------------------------------------------------------------

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                if self._reselect.is_set():
                    self._reselect.clear()
                    with self._lock:
                        asked = self._reselects[0]
                    self._apply_pending()
                    again = self._reselected()
                    if again is not None:
                        self._publish(again, count=False)
                    with self._lock:
                        self._reselects[1] = asked
                item = self.capture.get(timeout=0.1)
                if item is None:
                    continue
                try:
                    if isinstance(item, EndOfStream):
                        self._end = item
                        if not self.capture.hold_at_end:
                            break
                        continue
                    self._apply_pending()
                    self._publish(self._process(item))
                finally:
                    self.capture.queue.done()
                if self._max_frames is not None and self._figures.processed >= self._max_frames:
                    break
        finally:
            self._ended_at = time.perf_counter()
            self._done.set()

    def _apply_pending(self) -> None:
        with self._lock:
            if not self._pending.dirty:
                return
            pending, self._pending = self._pending, _Pending()
        if pending.predictor is not None and pending.predictor is not self._predictor:
            self._predictor = pending.predictor
            name = getattr(pending.predictor, "source", "") or "the new model"
            self._event(CaptureEvent(EventKind.MODEL, f"now detecting with {name}"))
        if pending.hidden is not None:
            self._hidden = pending.hidden
        if pending.tiles is not False:
            self._tiles = pending.tiles
        conf, iou = self._conf_iou
        self._conf_iou = (conf if pending.conf is None else pending.conf,
                          iou if pending.iou is None else pending.iou)
        self._configure(self._predictor)

    def _configure(self, predictor) -> None:
        """Give the worker's predictor the current thresholds and class filter."""
        if predictor is None:
            return
        conf, iou = self._conf_iou
        try:
            predictor.set_thresholds(conf=conf, iou=iou)
        except ValueError as exc:
            self._event(CaptureEvent(EventKind.ERROR, f"thresholds not applied: {exc}"))
        predictor.tiles = self._tiles
        shown = [c for c in predictor.class_names if c not in self._hidden]
        predictor.class_filter = None if len(shown) == len(predictor.class_names) else shown

    def _process(self, item: CapturedFrame) -> FrameResult:
        stage_ms = {"capture": item.read_ms}
        detections, error = self._detect(item, stage_ms)
        return self._finish(item, detections, error, stage_ms)

    def _finish(self, item: CapturedFrame, detections: Detections | None, error: str | None,
                stage_ms: dict[str, float]) -> FrameResult:
        frame = item.frame
        t0 = time.perf_counter()
        if self.draw and detections is not None and len(detections):
            image = draw_detections(frame.image, detections)
        else:
            image = frame.image
        done = time.perf_counter()
        stage_ms["draw"] = (done - t0) * 1e3
        predictor = self._predictor
        return FrameResult(item.id, frame, image, detections, stage_ms, done,
                           getattr(predictor, "source", ""), error)

    def _reselected(self) -> FrameResult | None:
        """The last frame again, its cached raw outputs through the current selection."""
        cached, predictor = self._last_raw, self._predictor
        if cached is None or predictor is None or cached[2] is not predictor:
            return None
        item, raw, _ = cached
        t0 = time.perf_counter()
        try:
            detections = predictor.select(raw)
        except Exception as exc:  # as for a frame: report, keep running
            self._event(CaptureEvent(EventKind.ERROR, f"{item.frame.label}: selection failed ({exc})"))
            return None
        stage_ms = {"postprocess": (time.perf_counter() - t0) * 1e3}
        return self._finish(item, detections, None, stage_ms)

    def _detect(self, item: CapturedFrame, stage_ms: dict[str, float]) -> tuple[Detections | None, str | None]:
        predictor, frame = self._predictor, item.frame
        if predictor is None:
            return None, None
        try:
            prediction = predictor.run([frame.image], keep_raw=self.keep_raw)
        except Exception as exc:  # one bad frame must not end the stream: report it and go on
            message = f"{frame.label}: detection failed ({type(exc).__name__}: {exc}); shown without boxes"
            self._event(CaptureEvent(EventKind.ERROR, message))
            return None, message
        times = prediction.times
        stage_ms.update(preprocess=times.preprocess, inference=times.inference, postprocess=times.postprocess)
        if prediction.raw:
            self._last_raw = (item, prediction.raw[0], predictor)
        return prediction.detections[0], None

    def _publish(self, result: FrameResult, count: bool = True) -> None:
        """Hand ``result`` to the listeners; ``count``: a newly processed frame (a re-selected
        one is not: it would distort the rates and the latency)."""
        with self._lock:
            if count:
                self._rate.tick(result.done_at)
                figures = self._figures
                figures.processed += 1
                figures.errors += result.error is not None
                figures.latencies.append(result.latency_ms)
                for stage, ms in result.stage_ms.items():
                    figures.stages[stage].append(ms)
            listeners = self._listeners
        for listener in listeners:
            try:
                listener(result)
            except Exception as exc:  # a failing consumer (disk full) must not stop detection
                self._event(CaptureEvent(EventKind.ERROR, f"{getattr(listener, '__name__', listener)}: "
                                                  f"{type(exc).__name__}: {exc}"))

    def _event(self, event: CaptureEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

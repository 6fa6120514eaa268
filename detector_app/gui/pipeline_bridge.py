"""The pipeline as the GUI sees it: a QObject that runs a :class:`HeadlessPipeline` and turns
its callbacks (on worker and capture threads) into signals on the GUI thread.

Results are coalesced: the worker leaves its newest result in a one-slot mailbox and emits
``frameReady`` only when the slot was empty, so a busy GUI thread never accumulates a backlog
of frames (a result replaced before it was painted is counted in ``superseded``). The GUI
thread takes the result with :meth:`take_latest`; it never runs the model and never waits on
the worker, except to join threads at shutdown or when stopping a file pipeline.
"""

from __future__ import annotations

import threading

from PyQt5.QtCore import QObject, pyqtSignal

from ..capture import Backoff, CaptureEvent
from ..pipeline import FrameResult, HeadlessPipeline
from ..sources import FrameSource


class PipelineBridge(QObject):
    frameReady = pyqtSignal()
    event = pyqtSignal(object)  # CaptureEvent

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.pipeline: HeadlessPipeline | None = None
        self._latest: FrameResult | None = None
        self._lock = threading.Lock()
        self.superseded = 0
        self._retired: list[HeadlessPipeline] = []
        self._generation = 0

    def start(self, source: FrameSource, predictor, realtime: bool, backoff: Backoff | None = None) -> HeadlessPipeline:
        """Start a pipeline on ``source`` (the previous one must have been stopped)."""
        with self._lock:
            self._latest = None
            self.superseded = 0
            self._generation += 1
            generation = self._generation
        self.pipeline = HeadlessPipeline(source, predictor, realtime=realtime,
                                         on_event=lambda event: self._on_event(event, generation),
                                         on_result=lambda result: self._on_result(result, generation),
                                         hold_at_end=True, backoff=backoff, keep_raw=True)
        return self.pipeline

    def _on_result(self, result: FrameResult, generation: int) -> None:
        """Worker thread: leave the result in the mailbox; signal if the mailbox was empty.
        Results of a pipeline that has been replaced are dropped."""
        with self._lock:
            if generation != self._generation:
                return
            empty = self._latest is None
            if not empty:
                self.superseded += 1
            self._latest = result
        if empty:
            self.frameReady.emit()

    def _on_event(self, event: CaptureEvent, generation: int) -> None:
        """Capture or worker thread: pass the event on unless its pipeline was replaced."""
        if generation == self._generation:
            self.event.emit(event)

    @property
    def pending(self) -> bool:
        """A result waits in the mailbox (the GUI has not taken it yet)."""
        with self._lock:
            return self._latest is not None

    def take_latest(self) -> FrameResult | None:
        with self._lock:
            result, self._latest = self._latest, None
            return result

    def retire(self) -> HeadlessPipeline | None:
        """Ask the current pipeline to stop without waiting for it (a stream read may block
        for seconds); :meth:`join_retired` waits for them. Returns the pipeline."""
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is not None:
            pipeline.stop(timeout=0)
            self._retired.append(pipeline)
        with self._lock:
            self._latest = None
            self._generation += 1
        self._retired = [p for p in self._retired if p.running]
        return pipeline

    def join_retired(self, timeout: float = 10.0) -> bool:
        """Wait for every stopped pipeline's threads to end; True if all did."""
        ok = all(p.stop(timeout) for p in self._retired)
        self._retired = [p for p in self._retired if p.running]
        return ok

    def shutdown(self, timeout: float = 10.0) -> bool:
        self.retire()
        return self.join_retired(timeout)


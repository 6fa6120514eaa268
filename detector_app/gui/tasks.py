"""One-shot background tasks (model loading, opening a source, probing cameras) in QThreads.

A task is a plain function run by a worker object moved to its own QThread; its result or
exception comes back to the GUI thread by signal (X-AnyLabeling's worker + QThread wiring).
Tasks are never terminated: :meth:`TaskRunner.wait_all` waits for them to return.
"""

from __future__ import annotations

from typing import Callable

from PyQt5.QtCore import QObject, QThread, pyqtSignal, pyqtSlot


class _Worker(QObject):
    done = pyqtSignal(object)
    failed = pyqtSignal(object)

    def __init__(self, fn: Callable[[], object]):
        super().__init__()
        self._fn = fn

    @pyqtSlot()
    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:  # every failure goes back to the GUI to be shown, none is lost
            self.failed.emit(exc)
        else:
            self.done.emit(result)
        finally:
            # Quit from this thread: a queued quit would wait for the GUI thread, which may be
            # blocked in wait() at shutdown.
            self.thread().quit()


class TaskRunner(QObject):
    """Runs functions in threads of their own; ``on_done(result)`` or ``on_failed(exc)`` is
    called on the GUI thread (unless the runner was closed meanwhile)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._running: dict[QThread, _Worker] = {}
        self._closed = False

    def run(self, name: str, fn: Callable[[], object], on_done: Callable[[object], None],
            on_failed: Callable[[Exception], None]) -> None:
        thread = QThread(self)
        thread.setObjectName(name)
        worker = _Worker(fn)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.done.connect(lambda result: self._deliver(on_done, result))
        worker.failed.connect(lambda exc: self._deliver(on_failed, exc))
        thread.finished.connect(lambda: self._forget(thread))
        self._running[thread] = worker
        thread.start()

    def _deliver(self, callback: Callable[[object], None], value: object) -> None:
        if not self._closed:
            callback(value)

    def _forget(self, thread: QThread) -> None:
        # ``finished`` is emitted from the thread just before it exits: wait for the exit
        # (microseconds) so the QThread is never deleted while still running.
        thread.wait()
        worker = self._running.pop(thread, None)
        if worker is not None:
            worker.deleteLater()
        thread.deleteLater()

    def busy(self, name: str | None = None) -> bool:
        return any(name is None or t.objectName() == name for t in self._running)

    def threads(self) -> list[QThread]:
        return list(self._running)

    def close(self, timeout_ms: int = 30000) -> bool:
        """Drop pending results and wait for running tasks; True if all ended."""
        self._closed = True
        ok = True
        for thread in list(self._running):
            ok = thread.wait(timeout_ms) and ok
        return ok

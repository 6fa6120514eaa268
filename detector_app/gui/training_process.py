"""One command-line process (``main.py train`` or ``check-data``) run from the GUI.

A QProcess, so the window never waits on it: its output arrives line by line by signal and
its end by ``finished``. Cancelling is cooperative: SIGINT first (the trainer saves a
checkpoint and reports "stopped", as after Ctrl-C in a terminal), a kill only if it has not
ended after a grace period.
"""

from __future__ import annotations

import os
import signal
import sys

from PyQt5.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, pyqtSignal

from ..model_store import ROOT

GRACE_MS = 30000


class CommandProcess(QObject):
    line = pyqtSignal(str)
    finished = pyqtSignal(int, bool)  # exit code, True if it crashed or was killed

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.MergedChannels)
        self.process.setWorkingDirectory(str(ROOT))
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        self.process.setProcessEnvironment(env)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)
        self._partial = ""
        self._kill_timer = QTimer(self, singleShot=True, timeout=self._kill)
        self.lines: list[str] = []

    @property
    def running(self) -> bool:
        return self.process.state() != QProcess.NotRunning

    def start(self, args: list[str]) -> None:
        self.lines = []
        self._partial = ""
        self.process.start(args[0], args[1:])

    def interrupt(self, grace_ms: int = GRACE_MS) -> None:
        """Ask the process to stop (SIGINT), then kill it after ``grace_ms``."""
        if not self.running:
            return
        pid = int(self.process.processId())
        if sys.platform != "win32" and pid > 0:
            os.kill(pid, signal.SIGINT)
        else:
            self.process.terminate()
        self._kill_timer.start(grace_ms)

    def wait(self, ms: int) -> bool:
        return self.process.waitForFinished(ms) or not self.running

    def _kill(self) -> None:
        if self.running:
            self.line.emit("(did not stop in time; killed)")
            self.process.kill()

    def _read(self) -> None:
        text = self._partial + bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
        # tqdm redraws with carriage returns: keep the latest state of each line.
        parts = text.replace("\r\n", "\n").split("\n")
        self._partial = parts.pop()
        for part in parts:
            self._emit_line(part.split("\r")[-1])

    def _emit_line(self, text: str) -> None:
        if text.strip():
            self.lines = [*self.lines[-199:], text]
            self.line.emit(text)

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        self._read()
        if self._partial:
            self._emit_line(self._partial.split("\r")[-1])
            self._partial = ""
        self.finished.emit(code, status != QProcess.NormalExit)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.FailedToStart:
            self._emit_line(f"could not start {self.process.program()}: {self.process.errorString()}")
            self.finished.emit(-1, True)

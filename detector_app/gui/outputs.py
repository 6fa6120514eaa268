"""Snapshots, recording and export of the current run, for the main window.

Writing happens off the GUI thread where it is per-frame work (the recorder is a pipeline
listener on the worker thread); a snapshot or an export is one short write on demand.
Every file is written atomically (see detector_app.writers).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from PyQt5.QtCore import QObject, QStandardPaths, pyqtSignal

from ..pipeline import FrameResult, HeadlessPipeline
from ..writers import OutputError
from .recording import StreamRecorder
from .run_log import EXPORTERS, RunLog
from .snapshot import SnapshotFiles, save_snapshot


def default_output_dir() -> Path:
    documents = QStandardPaths.writableLocation(QStandardPaths.DocumentsLocation) or str(Path.home())
    return Path(documents) / "Detector"


class Outputs(QObject):
    """Owns the recorder and the run log of the current pipeline.

    ``report(text, level)`` tells the user what happened ("info" goes to the status bar,
    "error" to the message bar).
    """

    recordingChanged = pyqtSignal(bool)

    def __init__(self, report: Callable[[str, str], None], output_dir: str | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.report = report
        self.output_dir = Path(output_dir) if output_dir else default_output_dir()
        self.run_log = RunLog()
        self.recorder: StreamRecorder | None = None
        self._pipeline: HeadlessPipeline | None = None

    def attach(self, pipeline: HeadlessPipeline) -> None:
        """A new run starts: stop recording the old one, start a fresh log."""
        self.stop_recording()
        self._pipeline = pipeline
        self.run_log = RunLog(keyed_by_index=pipeline.source.seekable)
        pipeline.add_listener(self.run_log)

    def detach(self) -> None:
        self.stop_recording()
        if self._pipeline is not None:
            self._pipeline.remove_listener(self.run_log)
        self._pipeline = None

    # -- snapshot ---------------------------------------------------------------------------

    def snapshot(self, result: FrameResult | None, folder: str | Path | None = None) -> SnapshotFiles | None:
        if result is None:
            self.report("Nothing to snapshot yet: open a source first.", "warning")
            return None
        try:
            files = save_snapshot(result, Path(folder) if folder else self.output_dir / "snapshots")
        except OutputError as exc:
            self.report(f"Snapshot not saved: {exc}", "error")
            return None
        self.report(f"Snapshot saved: {files.annotated} (labelled copy for labelImg: {files.xml})", "info")
        return files

    # -- recording --------------------------------------------------------------------------

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    def start_recording(self, path: str | Path | None = None) -> bool:
        if self._pipeline is None:
            self.report("Nothing to record: open a source first.", "warning")
            self.recordingChanged.emit(False)
            return False
        if self.recorder is not None:
            return True
        path = Path(path) if path else self._recording_path()
        try:
            self.recorder = StreamRecorder(path, self._pipeline.source.fps)
        except OutputError as exc:
            self.report(f"Recording not started: {exc}", "error")
            self.recordingChanged.emit(False)
            return False
        self._pipeline.add_listener(self.recorder)
        self.report(f"Recording to {path}…", "info")
        self.recordingChanged.emit(True)
        return True

    def _recording_path(self) -> Path:
        name = Path(self._pipeline.source.name).stem if self._pipeline else "stream"
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "stream"
        return self.output_dir / "recordings" / f"{time.strftime('%Y%m%d-%H%M%S')}_{safe}.mp4"

    def stop_recording(self) -> Path | None:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        if self._pipeline is not None:
            self._pipeline.remove_listener(recorder)
        try:
            path = recorder.close()
        except OutputError as exc:
            self.report(f"Recording lost: {exc}", "error")
            path = None
        if recorder.error:
            self.report(f"Recording stopped: {recorder.error}", "error")
        elif path is not None:
            self.report(f"Recorded {recorder.frames} frames to {path}", "info")
        self.recordingChanged.emit(False)
        return path

    # -- export -----------------------------------------------------------------------------

    def export(self, path: str | Path) -> int | None:
        """Write this run's detections to ``path`` (.jsonl or .csv); returns frames written."""
        path = Path(path)
        exporter = EXPORTERS.get(path.suffix.lower())
        if exporter is None:
            self.report(f"{path}: export as .jsonl or .csv", "error")
            return None
        try:
            frames = exporter(self.run_log, path)
        except OutputError as exc:
            self.report(f"Export failed: {exc}", "error")
            return None
        self.report(f"Exported the detections of {frames} frames to {path}", "info")
        return frames

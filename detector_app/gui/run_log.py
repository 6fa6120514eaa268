"""The detections of the current run, for export as JSON Lines and CSV. Qt-free.

A pipeline listener keeps each processed frame's detections (for a file, the latest result
per frame index, so seeking back and forth gives one record per frame). Export writes the
same JSON Lines as ``main.py detect --json`` and the CSV of :class:`writers.CsvWriter`,
atomically.
"""

from __future__ import annotations

import os
import threading

from models import Detections

from ..pipeline import FrameResult
from ..writers import CsvWriter, JsonlWriter

# A guard for very long live runs: the oldest records go beyond this many frames.
MAX_FRAMES = 1_000_000


class RunLog:
    """Detections per frame of one run. ``keyed_by_index``: files (seekable) keep one record
    per frame index; live sources one per captured frame."""

    def __init__(self, keyed_by_index: bool = True):
        self.keyed_by_index = keyed_by_index
        self._records: dict[int, tuple[int, float, Detections, str | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, result: FrameResult) -> None:
        if result.detections is None:
            return
        frame = result.frame
        key = frame.index if self.keyed_by_index else result.id
        with self._lock:
            self._records[key] = (frame.index, frame.time_s, result.detections, frame.meta.get("file"))
            if len(self._records) > MAX_FRAMES:
                del self._records[next(iter(self._records))]

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def _sorted(self) -> list[tuple[int, float, Detections, str | None]]:
        with self._lock:
            return [self._records[k] for k in sorted(self._records)]

    def export_jsonl(self, path: str | os.PathLike) -> int:
        """Write one JSON line per frame; returns the number of frames."""
        return self._export(JsonlWriter(path))

    def export_csv(self, path: str | os.PathLike) -> int:
        """Write one CSV row per detection; returns the number of frames."""
        return self._export(CsvWriter(path))

    def _export(self, writer) -> int:
        records = self._sorted()
        ok = False
        try:
            for index, time_s, detections, file in records:
                writer.write(index, time_s, detections, file)
            ok = True
        finally:
            writer.close(commit=ok)
        return len(records)


EXPORTERS = {".jsonl": RunLog.export_jsonl, ".json": RunLog.export_jsonl, ".csv": RunLog.export_csv}

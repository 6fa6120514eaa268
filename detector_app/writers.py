"""Output files of a run: detections as JSON Lines and CSV, annotated video. Qt-free.

Every writer writes to a temporary file beside its target and renames it into place when
closed, so an interrupted run never replaces a good earlier file with half of a new one.
The contract for a run that does not finish (Ctrl-C, SIGTERM on a file source): what was
done so far is kept under a name that says so, :func:`partial_path` (``dets.partial.jsonl``),
and the target itself is left as it was.
The JSON Lines format is shared by ``main.py detect`` and the GUI's export:

    {"frame": 0, "time_s": 0.0, "detections": [{"class": "dog", "score": 0.91, "box": [x1, y1, x2, y2]}]}

with boxes in pixels of the source frame (plus "file" for images from a folder).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models import Detections, atomic

VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


class OutputError(OSError):
    """An output file cannot be created or written; the message names it."""


def partial_path(target: str | os.PathLike) -> Path:
    """Where an interrupted run keeps its output: ``NAME.partial.EXT`` beside ``NAME.EXT``."""
    target = Path(target)
    return target.with_name(f"{target.stem}.partial{target.suffix}")


class AtomicFile(atomic.AtomicFile):
    """:class:`models.atomic.AtomicFile` for detection outputs: the temporary keeps the
    target's extension (the video writer picks its container by it) and commits either to the
    target or, for an interrupted run, to its :func:`partial_path`."""

    def __init__(self, target: str | os.PathLike):
        target = Path(target)
        try:
            super().__init__(target, suffix=f".partial{target.suffix}", prefix=target.stem)
        except atomic.AtomicWriteError as exc:
            raise OutputError(f"{target}: cannot write here ({exc.reason})") from exc

    def commit(self, partial: bool = False) -> Path:  # type: ignore[override]
        """Rename into place: the target, or with ``partial`` its :func:`partial_path`."""
        try:
            return super().commit(partial_path(self.target) if partial else self.target)
        except atomic.AtomicWriteError as exc:
            raise OutputError(str(exc)) from exc


def detection_record(index: int, time_s: float, detections: Detections, file: str | None = None) -> dict[str, Any]:
    """One JSON Lines record (see the module docstring)."""
    record: dict[str, Any] = {"frame": int(index), "time_s": round(float(time_s), 4)}
    if file is not None:
        record["file"] = file
    record["detections"] = detections.to_records()
    return record


class _TextWriter:
    def __init__(self, path: str | os.PathLike):
        self._atomic = AtomicFile(path)
        self.path = self._atomic.target
        self._f = open(self._atomic.tmp, "w", encoding="utf-8", newline="")
        self.closed = False

    def _write(self, text: str) -> None:
        try:
            self._f.write(text)
        except OSError as exc:
            raise OutputError(f"{self.path}: write failed ({exc.strerror or exc}); the previous file is kept") from exc

    def close(self, commit: bool = True, partial: bool = False) -> Path | None:
        """Finish the file; ``commit=False`` throws it away (the old file stays); ``partial``
        keeps it as :func:`partial_path` instead of the target. Returns where it went."""
        if self.closed:
            return None
        self.closed = True
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
        except OSError as exc:
            self._atomic.abort()
            raise OutputError(f"{self.path}: could not be finished ({exc.strerror or exc}); the previous file is kept") from exc
        if commit:
            return self._atomic.commit(partial)
        self._atomic.abort()
        return None


class JsonlWriter(_TextWriter):
    def write(self, index: int, time_s: float, detections: Detections, file: str | None = None) -> None:
        self._write(json.dumps(detection_record(index, time_s, detections, file)) + "\n")


class CsvWriter(_TextWriter):
    HEADER = ("frame", "time_s", "file", "class", "score", "x1", "y1", "x2", "y2")

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._csv = csv.writer(self._f)
        self._row(self.HEADER)

    def _row(self, values) -> None:
        try:
            self._csv.writerow(values)
        except OSError as exc:
            raise OutputError(f"{self.path}: write failed ({exc.strerror or exc}); the previous file is kept") from exc

    def write(self, index: int, time_s: float, detections: Detections, file: str | None = None) -> None:
        for rec in detections.to_records():
            self._row([index, round(time_s, 4), file or "", rec["class"], rec["score"], *rec["box"]])


class VideoRecorder:
    """Annotated frames to a video file (MP4 by default). Frames of another size are resized
    to the first frame's size."""

    def __init__(self, path: str | os.PathLike, fps: float | None):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise OutputError(f"{self.path}: unknown video type {suffix!r}; use one of {sorted(VIDEO_CODECS)}")
        self._atomic = AtomicFile(self.path)
        self.fps = fps if fps and 0 < fps < 1000 else 25.0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0
        self.closed = False

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            h, w = image.shape[:2]
            self._size = (w, h)
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._atomic.tmp), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                self._atomic.abort()
                self.closed = True
                raise OutputError(self._refusal(w, h))
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames += 1

    def _refusal(self, width: int, height: int) -> str:
        """Why the writer did not open: the folder was writable (the temporary file exists), so
        the encoder refused the frame size (MPEG-4 takes 2 to 4096 pixels a side here)."""
        codec = VIDEO_CODECS[self.path.suffix.lower()]
        if width < 2 or height < 2 or max(width, height) > 4096:
            hint = "use .avi (MJPEG takes any size)" if codec != "MJPG" else "resize the source"
            return (f"{self.path}: the {codec} encoder refuses frames of {width}x{height} pixels (too small or too "
                    f"large for it); {hint}")
        return f"{self.path}: the {codec} encoder could not be opened for {width}x{height} frames here"

    def close(self, commit: bool = True, partial: bool = False) -> Path | None:
        """As :meth:`_TextWriter.close`; the video is read back before it may replace anything."""
        if self.closed:
            return None
        self.closed = True
        if self._writer is not None:
            self._writer.release()
        if not commit or self.frames == 0:
            self._atomic.abort()
            return None
        if not self._atomic.tmp.exists() or self._atomic.tmp.stat().st_size == 0:
            self._atomic.abort()
            raise OutputError(f"{self.path}: the video could not be written (disk full or not writable?)")
        if not _complete(self._atomic.tmp, self.frames):
            # OpenCV's writer does not report failed writes (a full disk): the file is checked
            # before it may replace anything. What was written stays, in case it can be salvaged.
            raise OutputError(f"{self.path}: the video is incomplete (its {self.frames} frames cannot all be read "
                              f"back; disk full?); the previous file is kept and the partial one left at "
                              f"{self._atomic.tmp}")
        return self._atomic.commit(partial)


def _complete(path: Path, frames: int) -> bool:
    """Whether a just-written video declares at least ``frames`` frames and its last frame
    decodes: an MP4 whose index was never written does not open, a cut AVI or MKV fails one
    of the two. Reads the container's header and one frame, not the whole file."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened() or int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) < frames:
            return False
        cap.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
        ok, image = cap.read()
        return bool(ok) and image is not None and image.size > 0
    finally:
        cap.release()

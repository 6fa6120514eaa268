"""Recording the annotated stream to a video file, as a pipeline listener. Qt-free.

The worker thread hands every processed frame to :class:`StreamRecorder`. Video files have a
constant frame rate while processed frames do not (a live source drops frames when
detection is slower than the camera), so each frame is written as many times as keeps the
recording's clock with the source's clock (``Frame.time_s``): the recording plays at the
speed things happened. The file appears (atomically, via :class:`writers.VideoRecorder`)
when the recording stops.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..pipeline import FrameResult
from ..writers import OutputError, VideoRecorder

# At most this many seconds of repeated frames fill a gap (a stream that paused).
MAX_GAP_S = 2.0


class StreamRecorder:
    """Write annotated frames to ``path`` at ``fps`` (the source's FPS, else 25)."""

    def __init__(self, path: str | os.PathLike, fps: float | None):
        self._video = VideoRecorder(path, fps)
        self.path = Path(path)
        self.fps = self._video.fps
        self.error: str | None = None
        self._lock = threading.Lock()
        self._start_s: float | None = None
        self._closed = False

    @property
    def frames(self) -> int:
        return self._video.frames

    def __call__(self, result: FrameResult) -> None:
        """Record one processed frame (called on the worker thread)."""
        with self._lock:
            if self._closed or self.error is not None:
                return
            try:
                for _ in range(self._copies(result.frame.time_s)):
                    self._video.write(result.image)
            except OutputError as exc:
                self.error = str(exc)
                raise

    def _copies(self, time_s: float) -> int:
        if self._start_s is None or time_s < self._start_s:  # first frame, or a seek back
            self._start_s = time_s - self._video.frames / self.fps
            return 1
        due = int((time_s - self._start_s) * self.fps + 1e-6) + 1
        return max(1, min(due - self._video.frames, int(MAX_GAP_S * self.fps)))

    def close(self) -> Path | None:
        """Finish the file; returns its path, or None when nothing was recorded.

        Raises writers.OutputError if the file could not be finished.
        """
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            frames = self._video.frames
            self._video.close(commit=self.error is None)
        return self.path if frames and self.error is None else None

"""Recording the annotated stream to a video file, as a pipeline listener. Qt-free.

The worker thread hands every processed frame to :class:`StreamRecorder`, which queues it for
its own writer thread: encoding (several ms a frame for MP4) never runs on the inference
thread. If the encoder falls more than :data:`QUEUE_FRAMES` behind, frames are left out and
the clock below fills the gap by repeating the last one written. Video files have a
constant frame rate while processed frames do not (a live source drops frames when
detection is slower than the camera), so each frame is written as many times as keeps the
recording's clock with the source's clock (``Frame.time_s``): the recording plays at the
speed things happened. The file appears (atomically, via :class:`writers.VideoRecorder`)
when the recording stops.
"""

from __future__ import annotations

import collections
import os
import threading
from pathlib import Path

from ..pipeline import FrameResult
from ..writers import OutputError, VideoRecorder

# At most this many seconds of repeated frames fill a gap (a stream that paused).
MAX_GAP_S = 2.0
# Frames waiting for the encoder before new ones are left out (the clock repeats frames).
QUEUE_FRAMES = 32


class StreamRecorder:
    """Write annotated frames to ``path`` at ``fps`` (the source's FPS, else 25)."""

    def __init__(self, path: str | os.PathLike, fps: float | None):
        self._video = VideoRecorder(path, fps)
        self.path = Path(path)
        self.fps = self._video.fps
        self.error: str | None = None
        self.left_out = 0  # frames the encoder was too far behind to take
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._start_s: float | None = None
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="recording-writer", daemon=True)
        self._writer.start()

    @property
    def frames(self) -> int:
        """Frames written to the file so far."""
        return self._video.frames

    def __call__(self, result: FrameResult) -> None:
        """Queue one processed frame (called on the worker thread; returns at once). Raises
        writers.OutputError once the writer failed, so the pipeline reports it."""
        with self._cond:
            if self.error is not None:
                raise OutputError(self.error)
            if self._closed:
                return
            if len(self._queue) >= QUEUE_FRAMES:
                self.left_out += 1
                return
            self._queue.append((result.image, result.frame.time_s))
            self._cond.notify()

    def _write_loop(self) -> None:
        """The writer thread: encode queued frames until closed and drained."""
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                image, time_s = self._queue.popleft()
            if self.error is not None:
                continue  # drain without writing
            try:
                for _ in range(self._copies(time_s)):
                    self._video.write(image)
            except OutputError as exc:
                with self._cond:
                    self.error = str(exc)

    def _copies(self, time_s: float) -> int:
        if self._start_s is None or time_s < self._start_s:  # first frame, or a seek back
            self._start_s = time_s - self._video.frames / self.fps
            return 1
        due = int((time_s - self._start_s) * self.fps + 1e-6) + 1
        return max(1, min(due - self._video.frames, int(MAX_GAP_S * self.fps)))

    def close(self) -> Path | None:
        """Write what is queued, finish the file; returns its path, or None when nothing was
        recorded.

        Raises writers.OutputError if the file could not be finished.
        """
        with self._cond:
            if self._closed:
                return None
            self._closed = True
            self._cond.notify_all()
        self._writer.join()
        frames = self._video.frames
        self._video.close(commit=self.error is None)
        return self.path if frames and self.error is None else None

"""Frame sources: video files, images and folders, cameras, network streams. Qt-free.

``open_source(text)`` turns what a user typed ("video.mp4", "photos/", "0",
"rtsp://host/cam") into a :class:`FrameSource`. Every source yields :class:`Frame` objects
with BGR uint8 images, never raises from ``read()`` for a bad frame (it reports and skips it
through ``on_warning``), and raises :class:`SourceError` naming the source when it cannot be
opened at all. ``cv2.VideoCapture`` never raises and its frame counts of damaged files lie,
so every call is checked here.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from runtime.images import decode_failure

from .frames import Frame, ImageFormatError, to_bgr8

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")

# How many unreadable frames in a row a file may have before we call it the end.
MAX_CONSECUTIVE_BAD_FRAMES = 25


class SourceError(RuntimeError):
    """A source cannot be opened or read; the message names it and says why."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


Warn = Callable[[str], None]


def _ignore(_: str) -> None:
    pass


class FrameSource(ABC):
    """A sequence of frames. ``read()`` returns the next :class:`Frame`, or None at the end."""

    kind: str = "source"
    is_live: bool = False
    seekable: bool = False

    def __init__(self, name: str, on_warning: Warn | None = None):
        self.name = name
        self.on_warning: Warn = on_warning or _ignore
        self.skipped = 0  # frames that could not be decoded and were skipped

    @property
    def fps(self) -> float | None:
        """Nominal frames per second (None if unknown)."""
        return None

    @property
    def frame_count(self) -> int | None:
        """Number of frames if known (may be an estimate for damaged files)."""
        return None

    @abstractmethod
    def read(self) -> Frame | None: ...

    def seek(self, index: int) -> None:
        raise SourceError(self.name, f"a {self.kind} cannot seek")

    def close(self) -> None:  # noqa: B027 - optional hook: most sources have something to release
        pass

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self):
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def _warn(self, message: str) -> None:
        self.skipped += 1
        self.on_warning(f"{self.name}: {message}")


class VideoFileSource(FrameSource):
    """A video file. Frames that fail to decode are reported and skipped, not fatal."""

    kind = "video"
    seekable = True

    def __init__(self, path: str | os.PathLike, on_warning: Warn | None = None):
        super().__init__(str(path), on_warning)
        path = Path(path)
        if not path.exists():
            raise SourceError(str(path), "no such file")
        if path.is_file() and path.stat().st_size == 0:
            raise SourceError(str(path), "the file is empty")
        unreadable = why_unreadable(path)
        if unreadable:  # OpenCV would only say it cannot open it
            raise SourceError(str(path), unreadable)
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise SourceError(str(path), "cannot be opened as a video (unknown format or damaged file)")
        self._fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._count = count if count > 0 else None
        self._index = 0
        # Decode the first frame now: a file that opens but has no decodable frame is an error
        # the user should see at once, not an empty run.
        self._pending = self._next_image()
        if self._pending is None:
            self._cap.release()
            raise SourceError(str(path), "no frame could be decoded (damaged or not a video)")

    @property
    def fps(self) -> float | None:
        return self._fps if 0 < self._fps < 1000 else None

    @property
    def frame_count(self) -> int | None:
        return self._count

    def _next_image(self) -> np.ndarray | None:
        """Decode the frame at ``self._index``, skipping undecodable ones.

        Failures are reported only once a later frame decodes (then they were damaged frames
        mid-file); a run of failures up to the end is just the end, since the frame counts
        of damaged files lie.
        """
        bad_start: int | None = None
        while True:
            ok, image = self._cap.read()
            if ok and image is not None and image.size:
                try:
                    image = to_bgr8(image)
                except ImageFormatError as exc:
                    self._warn(f"frame {self._index}: {exc}; skipped")
                    self._index += 1
                    continue
                if bad_start is not None:
                    self._report_bad(bad_start, self._index - 1)
                return image
            if self._count is None or self._index >= self._count:
                if bad_start:  # frames decoded before (at frame 0 the open itself fails, and says so)
                    self.on_warning(
                        f"{self.name}: frames {bad_start}-{self._index - 1} could not be decoded, although the "
                        f"file claims {self._count} frames; treating it as the end (truncated or damaged?)"
                    )
                return None
            if bad_start is None:
                bad_start = self._index
            self._index += 1
            if self._index - bad_start >= MAX_CONSECUTIVE_BAD_FRAMES:
                self.on_warning(
                    f"{self.name}: no frame decodes from frame {bad_start} on, although the file "
                    f"claims {self._count} frames; treating it as the end (truncated or damaged?)"
                )
                return None

    def _report_bad(self, first: int, last: int) -> None:
        what = f"frame {first}" if first == last else f"frames {first}-{last}"
        self.skipped += last - first
        self._warn(f"{what} could not be decoded; skipped")

    def read(self) -> Frame | None:
        image = self._pending if self._pending is not None else self._next_image()
        self._pending = None
        if image is None:
            return None
        index = self._index
        self._index += 1
        time_s = index / self._fps if self.fps else float(self._cap.get(cv2.CAP_PROP_POS_MSEC) or 0) / 1000
        return Frame(index=index, image=image, time_s=time_s, captured_at=time.perf_counter())

    def seek(self, index: int) -> None:
        index = max(0, int(index))
        if self._count is not None:
            index = min(index, self._count - 1)
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        self._index = index
        self._pending = None

    def close(self) -> None:
        self._cap.release()


class ImageSource(FrameSource):
    """One image file or every image in a folder (sorted by name). Unreadable images are
    reported and skipped."""

    kind = "images"
    seekable = True

    def __init__(self, path: str | os.PathLike, on_warning: Warn | None = None):
        super().__init__(str(path), on_warning)
        path = Path(path)
        if not path.exists():
            raise SourceError(str(path), "no such file or folder")
        if path.is_dir():
            self._files = sorted(
                (p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
                key=lambda p: p.name,
            )
            if not self._files:
                exts = ", ".join(sorted(IMAGE_EXTENSIONS))
                raise SourceError(str(path), f"the folder holds no images ({exts})")
        else:
            self._files = [path]
            unreadable = why_unreadable(path)
            if unreadable:
                raise SourceError(str(path), unreadable)
            try:
                readable = read_image(path) is not None
            except ImageFormatError as exc:
                raise SourceError(str(path), str(exc)) from exc
            if not readable:
                raise SourceError(str(path), "cannot be read as an image (unknown format or damaged file)")
        self._index = 0

    @property
    def frame_count(self) -> int | None:
        return len(self._files)

    def read(self) -> Frame | None:
        while self._index < len(self._files):
            path = self._files[self._index]
            index = self._index
            self._index += 1
            try:
                image = read_image(path)
                if image is None:
                    raise ImageFormatError("cannot be decoded as an image")
                image = to_bgr8(image)
            except ImageFormatError as exc:
                self._warn(f"{path.name}: {exc}; skipped")
                continue
            return Frame(index=index, image=image, time_s=0.0, captured_at=time.perf_counter(),
                         label=path.name, meta={"file": str(path)})
        return None

    def seek(self, index: int) -> None:
        self._index = min(max(0, int(index)), len(self._files))


def why_unreadable(path: str | os.PathLike) -> str | None:
    """Why the file cannot be read at all (permission denied, an I/O error), or None."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def read_image(path: str | os.PathLike) -> np.ndarray | None:
    """Decode an image file (any path, non-ASCII too) as OpenCV does, honouring EXIF rotation.

    Returns the decoded array (BGR, BGRA, grayscale, 8 or 16 bit) or None if undecodable.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:  # permission denied, an I/O error: not "unknown format"
        raise ImageFormatError(f"cannot be read ({exc.strerror or exc})") from exc
    if data.size == 0:
        return None
    # IMREAD_ANYDEPTH keeps 16-bit images for to_bgr8 to scale; IMREAD_COLOR applies EXIF
    # orientation (IMREAD_UNCHANGED would not).
    try:
        return cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error as exc:
        raise ImageFormatError(decode_failure(exc)) from exc


class LiveSource(FrameSource):
    """A camera or network stream: frames are as fresh as the device gives them.

    ``read()`` returns None when the device stops delivering; :meth:`reopen` tries again
    (the capture thread calls it with back-off).
    """

    is_live = True

    def __init__(self, name: str, target: int | str, on_warning: Warn | None = None,
                 open_timeout_s: float = 5.0, read_timeout_s: float = 5.0):
        super().__init__(name, on_warning)
        self._target = target
        self._open_timeout_ms = int(open_timeout_s * 1000)
        self._read_timeout_ms = int(read_timeout_s * 1000)
        self._cap: cv2.VideoCapture | None = None
        self._count = 0
        self._opened_at = time.perf_counter()
        if not self._open():
            raise SourceError(name, self._open_failure())

    def _open_failure(self) -> str:
        return "could not be opened"

    def _make_capture(self) -> cv2.VideoCapture:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._open_timeout_ms,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._read_timeout_ms]
        return cv2.VideoCapture(self._target, cv2.CAP_ANY, params)

    def _open(self) -> bool:
        cap = self._make_capture()
        if not cap.isOpened():
            cap.release()
            return False
        self._cap = cap
        return True

    @property
    def fps(self) -> float | None:
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0) if self._cap is not None else 0.0
        return fps if 0 < fps < 1000 else None

    def read(self) -> Frame | None:
        if self._cap is None:
            return None
        ok, image = self._cap.read()
        if not ok or image is None or image.size == 0:
            return None
        try:
            image = to_bgr8(image)
        except ImageFormatError as exc:
            self._warn(f"frame {self._count}: {exc}; skipped")
            return None
        frame = Frame(index=self._count, image=image, time_s=time.perf_counter() - self._opened_at,
                      captured_at=time.perf_counter())
        self._count += 1
        return frame

    def reopen(self) -> bool:
        """Close and open again (after the device dropped). True if it opened."""
        self.close()
        return self._open()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CameraSource(LiveSource):
    kind = "camera"

    def __init__(self, index: int, on_warning: Warn | None = None, **kwargs):
        super().__init__(f"camera {index}", int(index), on_warning, **kwargs)

    def _open_failure(self) -> str:
        return "no camera at this index, or it is in use by another program"


class StreamSource(LiveSource):
    kind = "stream"

    def __init__(self, url: str, on_warning: Warn | None = None, **kwargs):
        super().__init__(url, url, on_warning, **kwargs)

    def _open_failure(self) -> str:
        return "the stream could not be opened (refused, unreachable, timed out or not a video stream)"


# Cameras are numbered from 0 in the order the system lists them; OpenCV takes the index as a
# C int, and a larger one raised a traceback. No machine has a thousand cameras.
MAX_CAMERA_INDEX = 1023


def is_stream_url(text: str) -> bool:
    return text.lower().startswith(STREAM_SCHEMES)


def open_source(text: str | int | os.PathLike, on_warning: Warn | None = None) -> FrameSource:
    """Open what the user named: a camera index, a stream URL, an image, a folder or a video.

    Raises :class:`SourceError` (naming the source and why) if it cannot be opened.
    """
    if isinstance(text, int) or (isinstance(text, str) and text.strip().isdigit()):
        if not 0 <= int(text) <= MAX_CAMERA_INDEX:
            raise SourceError(str(text).strip(), f"is not a camera index: cameras are numbered 0 to {MAX_CAMERA_INDEX} "
                                                 "(0 is the first camera the system lists)")
        return CameraSource(int(text), on_warning)
    text = os.fspath(text)
    if is_stream_url(text):
        return StreamSource(text, on_warning)
    path = Path(text)
    if not path.exists():
        raise SourceError(text, "no such file or folder")
    if not (path.is_dir() or path.is_file()):  # OpenCV blocks forever on a FIFO and reads devices without end
        raise SourceError(text, "is not a regular file or folder (a pipe, device or socket); give a video, an "
                                "image, a folder, a camera index or a stream URL")
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(path, on_warning)
    return VideoFileSource(path, on_warning)

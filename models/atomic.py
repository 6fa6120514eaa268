"""The one atomic-write helper: a temporary file beside the target, fsync, then ``os.replace``.

Every file the project writes (model files, run logs and checkpoints, reports, detection
outputs, recordings, converted-model caches, Caffe weights) goes through :class:`AtomicFile`,
so a crash, Ctrl-C or a full disk never leaves a half-written file in place of a good one:
readers see the old file or the new one.

Permissions are those the user expects of a new file: ``0o666`` less the umask, as ``open``
gives (``tempfile.mkstemp`` alone would leave every output ``0600``); a file that is replaced
keeps its own mode. Standard library only.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import IO, Callable

_umask_lock = threading.Lock()


class AtomicWriteError(OSError):
    """The target cannot be written; ``reason`` says why and whether the old file is kept."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux reports it
    in /proc; elsewhere it is set and restored under a lock)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        old = os.umask(0o022)
        os.umask(old)
    return old


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: 0o666 less the umask."""
    return 0o666 & ~current_umask()


class AtomicFile:
    """A temporary path beside ``target`` that becomes ``target`` on :meth:`commit`.

    ``suffix``: the temporary file's ending (writers that choose a format by extension, like
    Keras or OpenCV's video writer, need the target's). The temporary is named
    ``.<prefix>.<random><suffix>`` so :func:`trainer.atomic.remove_stale_temporaries` can
    find what a killed process left. Use as a context manager to commit on success and
    remove the temporary on any error, or call :meth:`commit` / :meth:`abort`.
    """

    def __init__(self, target: str | os.PathLike, suffix: str = ".tmp", prefix: str | None = None):
        self.target = Path(target)
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{prefix or self.target.name}.", suffix=suffix, dir=self.target.parent)
        except OSError as exc:
            raise AtomicWriteError(self.target, f"cannot be written here ({exc.strerror or exc})") from exc
        os.close(fd)
        self.tmp = Path(tmp)
        self.done = False

    def commit(self, final: str | os.PathLike | None = None) -> Path:
        """fsync the temporary, give it the mode of the file it replaces (or of a new file),
        and rename it to ``final`` (default: the target). Returns where it went."""
        final = Path(final) if final is not None else self.target
        try:
            with open(self.tmp, "rb+") as f:
                os.fsync(f.fileno())
            try:
                mode = stat.S_IMODE(os.stat(final).st_mode)
            except FileNotFoundError:
                mode = new_file_mode()
            os.chmod(self.tmp, mode)
            os.replace(self.tmp, final)
        except OSError as exc:
            self.abort()
            kept = "the previous file is kept" if final.exists() else "nothing was written"
            raise AtomicWriteError(final, f"could not be written ({exc.strerror or exc}; disk full?); {kept}") from exc
        self.done = True
        return final

    def abort(self) -> None:
        """Remove the temporary; the target is left as it was."""
        self.tmp.unlink(missing_ok=True)
        self.done = True

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, kind, value, tb) -> None:
        if self.done:
            return
        if kind is None:
            self.commit()
        else:
            self.abort()


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], object], suffix: str = ".tmp") -> Path:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then rename it over
    ``path``. Raises :class:`AtomicWriteError` naming ``path``; ``path`` is then unchanged."""
    with AtomicFile(path, suffix) as atomic:
        try:
            with open(atomic.tmp, "wb") as f:
                write(f)
        except OSError as exc:
            kept = "the previous file is kept" if atomic.target.exists() else "nothing was written"
            raise AtomicWriteError(path, f"could not be written ({exc.strerror or exc}; disk full?); {kept}") from exc
    return atomic.target


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    return write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text to ``path``, atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))

"""Atomic file writes for run folders: :mod:`models.atomic` with the trainer's error type.

A crash or a full disk never leaves a half-written log, report or checkpoint in place of a
good one; readers see either the old file or the new one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Callable

from models import atomic

from .errors import WriteError

# Temporary files are named ".<target name>.<random>.tmp" (see remove_stale_temporaries).
TEMP_SUFFIX = ".tmp"


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then rename it over ``path``
    (:func:`models.atomic.write_atomic`).

    Raises :class:`~trainer.errors.WriteError` naming ``path`` when the disk is full or the
    folder is not writable; ``path`` is then left as it was.
    """
    try:
        return atomic.write_atomic(path, write, suffix=TEMP_SUFFIX)
    except atomic.AtomicWriteError as exc:
        raise WriteError(exc.path, exc.reason) from exc


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed process left in ``folder`` (``.name.XXXX.tmp`` and
    the model writer's ``.stem.XXXX.tmp.keras``); call it only while no one else writes there.
    Returns what was removed."""
    removed = []
    for pattern in (f".*{TEMP_SUFFIX}", f".*{TEMP_SUFFIX}.keras"):
        for stale in Path(folder).glob(pattern):
            if stale.is_file():
                stale.unlink(missing_ok=True)
                removed.append(stale)
    return removed


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text to ``path`` atomically."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda f: f.write(data))

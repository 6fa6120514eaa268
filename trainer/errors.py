"""The trainer's user-facing errors: each names the file or folder at fault."""

from __future__ import annotations

import os


class DataError(ValueError):
    """A data folder, annotation file, class list or run folder cannot be used as given.

    ``path`` is the item at fault; the message says what was expected, what was found and
    what to do about it. The command line prints it as one line and exits with status 2.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class WriteError(DataError, OSError):
    """A file could not be written (disk full, read-only folder); ``path`` is the file that was
    being replaced, which is left as it was. Also an ``OSError``."""

"""Errors of the Caffe importer: every one names the file (and the layer) and says why."""

from __future__ import annotations

import os


class CaffeImportError(ValueError):
    """A Caffe file cannot be imported: it is missing, malformed, or another network.

    ``path`` is the file at fault; the message is ``"<path>: <reason>"`` so a command line can
    print it as one line.
    """

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(reason if path is None else f"{path}: {reason}")


class PrototxtError(CaffeImportError):
    """A ``.prototxt`` is not valid protobuf text format (the message gives line and column)."""


class CaffemodelError(CaffeImportError):
    """A ``.caffemodel`` is not a readable binary Caffe ``NetParameter``."""


class NetworkMismatchError(CaffeImportError):
    """The prototxt or the weights describe a network this app's builder cannot express."""

"""Silence native (C++) log lines that bypass Python: TensorFlow's start-up chatter about oneDNN
and missing CUDA drivers and LiteRT's "Created TensorFlow Lite XNNPACK delegate" ignore
TF_CPP_MIN_LOG_LEVEL and write to file descriptor 2 directly. Standard library only, so
main.py can use it before anything heavy loads. ``DETECTOR_VERBOSE=1`` shows them."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point fd 2 at /dev/null for the duration; Python exceptions still surface afterwards."""
    if os.environ.get("DETECTOR_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)

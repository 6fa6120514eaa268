"""Helpers of the robustness tests: a model with known output, command-line checks, a
hand-written AVI, a file-size limit (a full disk without privileges), bounded waits."""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

# t_w, t_h of the "whole frame" model: exp(min(30 * 0.2, log(62.5))) * prior size >> 1, so every
# decoded box is centred and much larger than the frame, and clipping makes it the frame.
_HUGE_LOG_SCALE = 30.0


def whole_frame_model(classes: Sequence[str] = ("dog", "cat"), winner: str = "dog", logit: float = 8.0):
    """A tiny seed model whose every default box decodes to a box far larger than the frame,
    centred on its default box, with class ``winner`` at probability ~0.999.

    After clipping all boxes are the whole frame, so NMS keeps exactly one detection,
    ``[0, 0, width, height]`` in pixels of the frame as the predictor saw it: a direct check
    of which image size (and orientation) the boxes refer to.
    """
    from models import build_model, seed_spec

    model = build_model(seed_spec(list(classes), alpha=0.25))
    logits = np.zeros(len(classes) + 1, np.float32)
    logits[1 + list(classes).index(winner)] = logit
    for layer in model.layers:
        if not layer.name.startswith(("cls_", "box_")) or len(layer.get_weights()) != 2:
            continue
        kernel, bias = layer.get_weights()
        if layer.name.startswith("cls_"):
            bias = np.tile(logits, bias.size // logits.size)
        else:
            bias = np.tile(np.array([0, 0, _HUGE_LOG_SCALE, _HUGE_LOG_SCALE], np.float32), bias.size // 4)
        layer.set_weights([np.zeros_like(kernel), bias])
    return model


# -- command lines ----------------------------------------------------------------------------

def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_user_error(rc: int, stderr: str, *fragments: str) -> str:
    """Exit status 2, exactly one ``error:`` line that contains every fragment, no traceback.
    Returns the error line."""
    lines = error_lines(stderr)
    assert rc == 2, f"exit status {rc}, expected 2; stderr:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, stderr[-3000:]
    assert len(lines) == 1, f"expected one error line, got {lines}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def run_bounded(fn: Callable[[], object], limit_s: float, what: str):
    """Run ``fn`` in a thread and return its result; fail (instead of hanging the suite) if it
    has not returned within ``limit_s``. A hang check, not a timing assertion: the limit is
    many times what the call needs."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the test thread, which re-raises it
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"bounded:{what}", daemon=True)
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), f"{what} did not return within {limit_s:.0f} s (it hangs)"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("result")


# -- a full disk without privileges -----------------------------------------------------------

@contextlib.contextmanager
def file_size_limit(max_bytes: int):
    """While active, no file of this process can grow beyond ``max_bytes``: writes past it fail
    with EFBIG ("File too large"), as writes on a full disk fail with ENOSPC. RLIMIT_FSIZE
    needs no privileges (tests run as root, where a read-only folder does not stop writes,
    and mounting a small file system needs rights CI may not have). SIGXFSZ is ignored so the
    write fails instead of the process being killed. Linux/macOS only; main thread only."""
    resource = __import__("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def can_limit_file_size() -> bool:
    return sys.platform != "win32" and hasattr(signal, "SIGXFSZ")


# -- a hand-written MJPEG AVI ----------------------------------------------------------------

def _chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _list(kind: bytes, payload: bytes) -> bytes:
    return _chunk(b"LIST", kind + payload)


def mjpeg_avi(frames: Sequence[bytes], width: int, height: int, fps: int = 25) -> bytes:
    """An AVI file (RIFF: hdrl, movi, idx1) whose video frames are the given JPEG bytes as
    they are, so a test can put in what a writer never would (zero-length frames)."""
    n = len(frames)
    avih = struct.pack("<14I", 1_000_000 // fps, 0, 0, 0x10, n, 0, 1, 0, width, height, 0, 0, 0, 0)
    strh = b"vids" + b"MJPG" + struct.pack("<IHHIIIIIIII4h", 0, 0, 0, 0, 1, fps, 0, n, 0, 0xFFFFFFFF, 0,
                                          0, 0, width, height)
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    hdrl = _list(b"hdrl", _chunk(b"avih", avih) + _list(b"strl", _chunk(b"strh", strh) + _chunk(b"strf", strf)))
    movi, index, offset = b"", b"", 4
    for data in frames:
        chunk = _chunk(b"00dc", data)
        index += b"00dc" + struct.pack("<III", 0x10, offset, len(data))
        offset += len(chunk)
        movi += chunk
    body = b"AVI " + hdrl + _list(b"movi", movi) + _chunk(b"idx1", index)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def jpeg(value: int, width: int = 64, height: int = 48) -> bytes:
    """A flat grey JPEG of brightness ``value`` (frames recognisable after decoding)."""
    import cv2

    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), value, np.uint8))
    assert ok
    return data.tobytes()


# -- process figures --------------------------------------------------------------------------

def open_fds() -> int:
    """File descriptors of this process (Linux: /proc; else psutil)."""
    fd_dir = Path("/proc/self/fd")
    if fd_dir.is_dir():
        return len(os.listdir(fd_dir))
    import psutil

    return psutil.Process().num_fds()


def os_threads() -> int:
    import psutil

    return psutil.Process().num_threads()

"""Ctrl-C and SIGTERM during `detect` on a video file (issue 15): the earlier complete outputs
are never replaced, the frames done so far are kept as NAME.partial.EXT, no temporary file is
left behind, and the exit status is 130 (before: SIGINT replaced both good files with partial
ones; SIGTERM left multi-megabyte temporary files)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    import cv2

    path = tmp_path_factory.mktemp("long") / "long.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(3000):
        writer.write(np.full((48, 64, 3), i % 255, np.uint8))
    writer.release()
    return path


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("signum, started", [(signal.SIGINT, None), (signal.SIGTERM, None),
                                             (signal.SIGINT, _ignore_sigint)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-ignored-by-the-parent"])
def test_an_interrupted_detect_keeps_the_earlier_outputs(long_video, frame_model_file, tmp_path, signum, started):
    """``started``: how the parent left the child's signals. A background job of a
    non-interactive shell starts with SIGINT ignored (a CI runner, a nohup'ed app's training
    child): main.py gives Python's handler back, so Ctrl-C / Cancel still stop cleanly."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    jsonl, video = out_dir / "dets.jsonl", out_dir / "annotated.avi"
    jsonl.write_text("earlier complete results\n")
    video.write_bytes(b"earlier complete video")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "main.py", "detect", str(long_video), "--model", str(frame_model_file), "--json", str(jsonl),
         "--out", str(video), "--no-progress"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=started)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # wait until frames are being written
            growing = [p for p in _temporaries(out_dir) if p.suffix == ".jsonl" and p.stat().st_size > 2000]
            if growing or proc.poll() is not None:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "detect ended before it could be interrupted: " + proc.stderr.read()[-2000:]
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert jsonl.read_text() == "earlier complete results\n"
    assert video.read_bytes() == b"earlier complete video"
    partial_json = out_dir / "dets.partial.jsonl"
    partial_video = out_dir / "annotated.partial.avi"
    lines = partial_json.read_text().splitlines()
    assert 0 < len(lines) < 3000
    assert partial_video.stat().st_size > 0
    assert f"interrupted after {len(lines)} frames" in err and str(partial_json) in err and "left as before" in err
    assert _temporaries(out_dir) == []

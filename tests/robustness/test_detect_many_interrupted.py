"""Ctrl-C during `detect-many` (issue 14): inputs finished before the interrupt keep their
outputs untouched, inputs in flight leave no file behind, the exit status is 130, and the
same command then does only the rest.

The signal goes to the whole process group, as a terminal's Ctrl-C does, so Ray's own
processes (raylet, workers) receive it too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHORT, LONG = 10, 1500  # frames; a long input takes many seconds, so it is in flight at the signal


def _video(path: Path, frames: int) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i % 255, np.uint8))
    writer.release()
    return path


def _group_gone(pgid: int, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_ctrl_c_keeps_finished_inputs_and_the_rerun_does_the_rest(frame_model_file, tmp_path):
    pytest.importorskip("ray")
    videos = tmp_path / "videos"
    videos.mkdir()
    for name, frames in (("a_short0", SHORT), ("a_short1", SHORT), ("b_long0", LONG), ("b_long1", LONG)):
        _video(videos / f"{name}.avi", frames)
    out = tmp_path / "out"
    cmd = [sys.executable, "main.py", "detect-many", str(videos), "--out", str(out), "--model", str(frame_model_file),
           "--workers", "2", "--no-progress"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(out.glob("*.done.json"))) >= 2:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "detect-many ended before the interrupt: " + proc.stderr.read()[-2000:]
        finished = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()
                    if p.name.startswith("a_short")}
        assert len(finished) == 4, sorted(finished)  # two inputs: JSON Lines and done record each
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err[-3000:]
    assert "finished inputs are complete" in err and "Traceback" not in err, err[-3000:]
    assert _group_gone(proc.pid, 30), "no Ray process of the run is left behind"

    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir() if p.name.startswith("a_short")}
    assert after == finished, "the finished inputs' outputs are untouched"
    assert not list(out.glob("b_long*.done.json")), "an input in flight is not marked done"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["done_now"] <= 2

    # the same command does only what is left, and removes what the interrupted inputs left
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_complete"] == 2 and summary["done_now"] == 2 and not summary["failed"]
    assert summary["frames"] == 2 * LONG
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()
            if p.name.startswith("a_short")} == finished
    for name in ("b_long0", "b_long1"):
        (jsonl,) = out.glob(f"{name}-*.jsonl")  # the stem, then 8 hex digits of the input's path
        lines = jsonl.read_text().splitlines()
        assert len(lines) == LONG and json.loads(lines[-1])["frame"] == LONG - 1
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "no temporary left behind"

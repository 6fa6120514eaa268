"""Cameras and network streams that misbehave: refuse, stall, answer with something else,
drop mid-run, stop delivering. Every stream is served by a server on 127.0.0.1 that the
test starts and stops itself (tests/robustness/loopback.py); every wait is bounded.

Already covered elsewhere (not repeated): a camera index that does not exist
(tests/test_sources.py::test_camera_that_does_not_exist, tests/test_detect_cli.py
camera 99, tests/test_gui_window.py::test_a_camera_that_does_not_exist_shows_an_error), a
stream whose server goes away and comes back on the same port
(tests/test_capture.py::test_stream_drops_and_reconnects,
tests/test_gui_window.py::test_a_stream_that_drops_reconnects).
"""

from __future__ import annotations

import json
import threading
import time

import pytest

import main
from detector_app import detect as detect_module
from detector_app.capture import Backoff, CapturedFrame, CaptureThread, EndOfStream
from detector_app.pipeline import HeadlessPipeline
from detector_app.sources import SourceError, StreamSource, open_source
from tests.test_pipeline import FakePredictor

from .helpers import assert_user_error, run_bounded
from .loopback import LoopbackServer, closed_port, mjpeg, silent, status

QUICK = Backoff(first_s=0.1, factor=2.0, max_s=0.4)


def capture_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("capture:") or t.name == "inference-worker"]


def wait_for(predicate, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


# -- opening ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "handler, what",
    [(None, "refused"), (silent, "accepts and never answers"),
     (status(404, "Not Found", b"no such camera"), "404"),
     (status(200, "OK", b"<html><body>Login</body></html>", "text/html"), "a web page")],
    ids=["refused", "stalls", "404", "web page"],
)
def test_a_stream_that_cannot_be_opened_is_a_source_error(handler, what):
    server = LoopbackServer(handler).start() if handler else None
    url = server.url if server else f"http://127.0.0.1:{closed_port()}/stream.mjpg"
    try:
        with pytest.raises(SourceError) as info:
            run_bounded(lambda: StreamSource(url, open_timeout_s=1, read_timeout_s=1), 60, f"opening a stream that {what}")
    finally:
        if server:
            server.stop()
    assert url in str(info.value) and "could not be opened" in str(info.value)
    if server:
        assert server.connections >= 1, "the server was reached"


@pytest.mark.parametrize("handler", [None, silent], ids=["refused", "stalls"])
def test_detect_on_a_stream_that_cannot_be_opened(capfd, frame_model_file, tmp_path, handler):
    """With the command's own timeouts (5 s): it ends, one line, exit status 2."""
    server = LoopbackServer(handler).start() if handler else None
    url = server.url if server else f"http://127.0.0.1:{closed_port()}/stream.mjpg"
    try:
        rc = run_bounded(lambda: main.main(["detect", url, "--model", str(frame_model_file), "--no-progress",
                                            "--json", str(tmp_path / "d.jsonl")]), 120, "detect on a dead stream")
    finally:
        if server:
            server.stop()
    assert_user_error(rc, capfd.readouterr().err, url, "could not be opened")
    assert not (tmp_path / "d.jsonl").exists()


# -- mid-run ------------------------------------------------------------------------------------

@pytest.mark.parametrize("then", ["stall", "close"])
def test_a_stream_that_stalls_or_drops_mid_run_is_reconnected(then):
    """12 frames, then silence (the read times out) or a hang-up; the camera is back on the
    next connection. The pipeline says it is reconnecting, reconnects, and frames flow again."""
    events, results = [], []
    with LoopbackServer(mjpeg([12, None], then=then)) as server:
        source = StreamSource(server.url, open_timeout_s=2, read_timeout_s=1)
        pipeline = HeadlessPipeline(source, FakePredictor(), on_result=results.append, on_event=events.append,
                                    backoff=QUICK).start()
        try:
            wait_for(lambda: any(e.kind == "reconnected" for e in events), 60, "a reconnection")
            count = len(results)
            wait_for(lambda: len(results) > count + 5, 30, "frames after the reconnection")
        finally:
            assert run_bounded(lambda: pipeline.stop(10), 60, "stopping the pipeline")
    kinds = [e.kind for e in events]
    assert kinds.index("reconnecting") < kinds.index("reconnected")
    assert all(server.url in e.message for e in events if e.kind in ("reconnecting", "reconnected"))
    assert pipeline.stats().reconnects == 1 and pipeline.stats().errors == 0
    assert server.connections >= 2
    assert not capture_threads()


def test_stopping_while_the_stream_is_stalled_does_not_hang():
    events = []
    with LoopbackServer(mjpeg([5], then="stall")) as server:
        source = StreamSource(server.url, open_timeout_s=2, read_timeout_s=2)
        capture = CaptureThread(source, on_event=events.append, backoff=QUICK)
        capture.start()
        wait_for(lambda: capture.stats().read == 5, 30, "the five frames before the stall")
        time.sleep(0.3)  # the capture thread is now blocked in a read that gets nothing
        assert run_bounded(lambda: capture.stop(15), 60, "stopping a stalled stream")
    assert not capture.is_alive() and not capture_threads()


def test_a_stream_that_goes_away_for_good_ends_with_a_message():
    events = []
    with LoopbackServer(mjpeg([6], then="close")) as server:
        source = StreamSource(server.url, open_timeout_s=1, read_timeout_s=1)
        pipeline = HeadlessPipeline(source, FakePredictor(), on_event=events.append,
                                    backoff=Backoff(first_s=0.1, max_s=0.2, max_attempts=3))
        stats = run_bounded(lambda: pipeline.run(timeout=60), 90, "a stream that never comes back")
    assert stats.state == "failed" and stats.processed >= 1
    assert [e.kind for e in events].count("reconnecting") == 3
    assert events[-1].kind == "gave_up" and server.url in events[-1].message
    assert "could not be reconnected" in pipeline.end.message


def test_detect_on_a_stream_that_drops_reconnects_then_ends(capfd, frame_model_file, tmp_path, monkeypatch):
    """`detect URL` for hours on a flaky camera: a drop costs a reconnection, not the run. The
    server gives 8 frames, then 5 on the next connection, then is gone."""
    monkeypatch.setattr(detect_module, "LIVE_BACKOFF", Backoff(first_s=0.1, factor=2.0, max_s=0.2, max_attempts=3))
    out = tmp_path / "d.jsonl"
    with LoopbackServer(mjpeg([8, 5], then="close")) as server:
        rc = run_bounded(lambda: main.main(["detect", server.url, "--model", str(frame_model_file), "--no-progress",
                                            "--json", str(out)]), 180, "detect on a dropping stream")
    err = capfd.readouterr().err
    assert rc == 0, err[-3000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(13))
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert any("reconnecting in 0.1 s (attempt 1 of 3)" in line for line in lines)
    assert any("reconnected after 1 attempt(s)" in line for line in lines)
    assert any("could not be reconnected" in line for line in lines)
    assert all(server.url in line for line in lines if "reconnect" in line)


# -- cameras -------------------------------------------------------------------------------------

def test_a_camera_that_stops_delivering_is_reopened_with_back_off(fake_camera):
    """Unplugged after 5 frames, two failed reopenings, back for 20 frames, then gone."""
    device = fake_camera([5, None, None, 20])
    events = []
    source = open_source("0")
    capture = CaptureThread(source, on_event=events.append,
                            backoff=Backoff(first_s=0.1, factor=2.0, max_s=0.4, max_attempts=4))
    capture.start()
    frames, end = [], None
    deadline = time.monotonic() + 30
    while end is None and time.monotonic() < deadline:
        item = capture.get(timeout=0.2)
        if isinstance(item, EndOfStream):
            end = item
        elif isinstance(item, CapturedFrame):
            frames.append(item)
    assert capture.stop(10)
    assert end is not None and end.reason == "failed" and "camera 0" in end.message
    waits = [e.message.split(" in ")[1].split(" s")[0] for e in events if e.kind == "reconnecting"]
    assert waits == ["0.1", "0.2", "0.4", "0.1", "0.2", "0.4", "0.4"], "back-off doubles, capped, then restarts"
    assert [e.kind for e in events].count("reconnected") == 1
    assert "reconnected after 3 attempt(s)" in [e.message for e in events if e.kind == "reconnected"][0]
    assert events[-1].kind == "gave_up" and "camera 0" in events[-1].message
    assert len(frames) <= 25 and frames[-1].frame.index == 24, "frame numbers run on across the reconnection"
    assert device.opens == 8 and device.released == device.opens, "every capture object was released"


def test_a_camera_that_returns_empty_frames_is_reopened(fake_camera):
    """Some drivers return an empty picture instead of failing: treated as a dropout."""
    fake_camera([3, 4], empty_frames=True)
    events = []
    stats = HeadlessPipeline(open_source("0"), FakePredictor(), on_event=events.append,
                             backoff=Backoff(first_s=0.05, max_s=0.05, max_attempts=2)).run(timeout=30)
    assert stats.processed >= 1 and stats.reconnects == 1 and stats.state == "failed"
    assert stats.captured == 7
    assert [e.kind for e in events].count("reconnected") == 1 and events[-1].kind == "gave_up"


def test_detect_on_a_camera_that_stops_delivering(capfd, frame_model_file, tmp_path, fake_camera, monkeypatch):
    fake_camera([6, None, 4])
    monkeypatch.setattr(detect_module, "LIVE_BACKOFF", Backoff(first_s=0.05, factor=2.0, max_s=0.1, max_attempts=2))
    out = tmp_path / "d.jsonl"
    rc = run_bounded(lambda: main.main(["detect", "0", "--model", str(frame_model_file), "--no-progress",
                                        "--json", str(out)]), 120, "detect on a flaky camera")
    err = capfd.readouterr().err
    assert rc == 0, err[-3000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(10))
    assert all(r["detections"][0]["box"] == [0, 0, 64, 48] for r in records)
    warnings = [line for line in err.splitlines() if line.startswith("warning: camera 0")]
    assert any("reconnected after 2 attempt(s)" in w for w in warnings)
    assert "could not be reconnected" in warnings[-1]
    assert "10 frames" in err

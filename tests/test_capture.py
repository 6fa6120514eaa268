"""The capture thread: queue policies, pacing, pause/step/seek, reconnection, stopping."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from detector_app.capture import Backoff, CapturedFrame, CaptureThread, EndOfStream, FrameQueue, RateMeter
from detector_app.frames import Frame
from detector_app.sources import FrameSource, StreamSource, VideoFileSource
from runtime.stats import percentile
from tests.media import write_video
from tools.mjpeg_server import MjpegServer

FAST = Backoff(first_s=0.01, factor=2.0, max_s=0.05)


class FakeFile(FrameSource):
    """A seekable "file" of ``count`` tiny frames at ``fps``, each read taking ``read_s``."""

    kind = "video"
    seekable = True

    def __init__(self, count: int = 20, fps: float | None = 25.0, read_s: float = 0.0):
        super().__init__("fake.avi")
        self.count, self._fps, self.read_s = count, fps, read_s
        self.index = 0
        self.closed = False

    @property
    def fps(self):
        return self._fps

    @property
    def frame_count(self):
        return self.count

    def read(self):
        if self.index >= self.count:
            return None
        time.sleep(self.read_s)
        frame = Frame(self.index, np.full((4, 4, 3), self.index % 256, np.uint8), self.index / 25,
                      time.perf_counter())
        self.index += 1
        return frame

    def seek(self, index):
        self.index = min(index, self.count)

    def close(self):
        self.closed = True


class FakeLive(FrameSource):
    """A camera that delivers every ``period_s``; it "unplugs" after ``fail_after`` frames and
    comes back after ``reopen_failures`` failed reopen attempts."""

    kind = "camera"
    is_live = True

    def __init__(self, period_s: float = 0.002, fail_after: int | None = None, reopen_failures: int = 0):
        super().__init__("fake camera")
        self.period_s, self.fail_after, self.reopen_failures = period_s, fail_after, reopen_failures
        self.count = 0
        self.connected = True
        self.reopens = 0

    def read(self):
        if not self.connected:
            return None
        if self.fail_after is not None and self.count == self.fail_after:
            self.connected = False
            self.fail_after = None
            return None
        time.sleep(self.period_s)
        self.count += 1
        return Frame(self.count - 1, np.zeros((4, 4, 3), np.uint8), 0.0, time.perf_counter())

    def reopen(self):
        self.reopens += 1
        self.connected = self.reopens > self.reopen_failures
        return self.connected


def drain(capture: CaptureThread, consume_s: float = 0.0, limit_s: float = 10.0):
    """Take items until the end marker; returns (frames, marker)."""
    frames = []
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        item = capture.get(timeout=0.1)
        if isinstance(item, EndOfStream):
            return frames, item
        if isinstance(item, CapturedFrame):
            frames.append(item)
            time.sleep(consume_s)
    raise AssertionError("no end of stream within the time limit")


def test_file_as_fast_as_possible_loses_nothing_with_a_slow_consumer():
    source = FakeFile(count=30)
    capture = CaptureThread(source)
    capture.start()
    frames, end = drain(capture, consume_s=0.005)
    assert [f.frame.index for f in frames] == list(range(30))
    assert [f.id for f in frames] == list(range(30))
    assert end.reason == "end"
    assert capture.stop(5)
    stats = capture.stats()
    assert stats.dropped == 0 and stats.read == 30 and stats.delivered == 30
    assert source.closed, "the capture thread closes its source"


def test_real_file_reads_every_frame(tmp_path):
    video = write_video(tmp_path / "clip.avi", frames=12)
    capture = CaptureThread(VideoFileSource(video))
    capture.start()
    frames, end = drain(capture)
    capture.stop()
    assert len(frames) == 12 and end.reason == "end"
    assert frames[0].frame.image.shape == (240, 320, 3)


def test_realtime_drops_and_says_so_when_the_consumer_lags():
    events = []
    capture = CaptureThread(FakeFile(count=30, fps=200.0), realtime=True, on_event=events.append)
    capture.start()
    frames, end = drain(capture, consume_s=0.03)
    capture.stop()
    stats = capture.stats()
    assert stats.dropped > 0
    assert stats.read == 30 and len(frames) + stats.dropped == 30
    assert any(e.kind == "dropping" for e in events)


def test_realtime_is_paced_at_the_file_fps():
    capture = CaptureThread(FakeFile(count=10, fps=50.0), realtime=True)
    start = time.perf_counter()
    capture.start()
    frames, _ = drain(capture)
    elapsed = time.perf_counter() - start
    capture.stop()
    assert len(frames) == 10
    assert elapsed >= 9 / 50.0 * 0.9  # nine frame intervals at 50 FPS


def test_live_source_newest_frame_wins():
    source = FakeLive(period_s=0.001)
    capture = CaptureThread(source)
    capture.start()
    taken = []
    for _ in range(5):
        time.sleep(0.05)
        item = capture.get(timeout=1)
        assert isinstance(item, CapturedFrame)
        taken.append(item)
        assert len(capture.queue) <= 1
    capture.stop()
    stats = capture.stats()
    assert stats.dropped > 0
    assert stats.read == stats.delivered
    ids = [f.id for f in taken]
    assert ids == sorted(ids) and ids[-1] - ids[0] > 5, "the consumer gets recent frames, not a backlog"


def test_live_source_reconnects_with_backoff():
    events = []
    source = FakeLive(fail_after=5, reopen_failures=2)
    capture = CaptureThread(source, on_event=events.append, backoff=FAST)
    capture.start()
    seen = []
    deadline = time.perf_counter() + 5
    while len(seen) < 10 and time.perf_counter() < deadline:
        item = capture.get(timeout=0.1)
        if isinstance(item, CapturedFrame):
            seen.append(item)
    capture.stop()
    kinds = [e.kind for e in events]
    assert kinds.count("reconnecting") == 3 and "reconnected" in kinds
    assert "attempt 3" in [e.message for e in events if e.kind == "reconnecting"][-1]
    assert len(seen) == 10 and capture.stats().reconnects == 1


def test_live_source_gives_up_after_max_attempts():
    events = []
    source = FakeLive(fail_after=2, reopen_failures=100)
    capture = CaptureThread(source, on_event=events.append,
                            backoff=Backoff(first_s=0.01, max_s=0.01, max_attempts=3))
    capture.start()
    frames, end = drain(capture)
    capture.stop()
    assert end.reason == "failed" and "could not be reconnected" in end.message
    assert source.reopens == 3 and events[-1].kind == "gave_up"


def test_pause_step_and_seek():
    capture = CaptureThread(FakeFile(count=40), hold_at_end=True)
    capture.pause()
    capture.start()
    assert capture.get(timeout=0.3) is None, "paused: no frame"
    capture.step()
    item = capture.get(timeout=2)
    assert item.frame.index == 0
    assert capture.get(timeout=0.2) is None, "one step, one frame"
    capture.seek(25)
    capture.step()
    item = capture.get(timeout=2)
    assert item.frame.index == 25 and item.generation == 1
    capture.resume()
    frames, end = drain(capture)
    assert [f.frame.index for f in frames] == list(range(26, 40))
    # Held at the end: a seek plays again.
    capture.seek(38)
    frames, end = drain(capture)
    assert [f.frame.index for f in frames] == [38, 39]
    assert capture.stop(5)


def test_a_slow_seek_does_not_hold_the_lock_figures_are_read_under():
    """A seek decodes from the previous key frame (up to seconds on long GOPs): the GUI reads
    figures and sends controls meanwhile, so the capture thread must not seek under its lock."""

    class SlowSeek(FakeFile):
        def __init__(self):
            super().__init__(count=40)
            self.entered, self.release = threading.Event(), threading.Event()

        def seek(self, index):
            self.entered.set()
            self.release.wait(30)
            super().seek(index)

    source = SlowSeek()
    capture = CaptureThread(source, hold_at_end=True)
    capture.pause()
    capture.start()
    capture.seek(30)
    assert source.entered.wait(10)
    answered = []
    reader = threading.Thread(target=lambda: answered.append((capture.stats(), capture.paused)))
    reader.start()
    reader.join(10)
    still_seeking = not source.release.is_set()
    source.release.set()
    assert answered and still_seeking, "stats() and the controls answered while the seek ran"
    capture.step()
    assert capture.get(timeout=5).frame.index == 30
    assert capture.stop(5)


def test_stop_while_blocked_on_a_full_queue():
    capture = CaptureThread(FakeFile(count=1000))
    capture.start()
    time.sleep(0.1)  # nobody consumes: the capture thread waits for room
    assert capture.stop(5), "the wait for room watches the stop event"
    assert not capture.is_alive()


def test_a_source_that_raises_ends_with_a_message():
    class Broken(FakeFile):
        def read(self):
            raise OSError("device gone")

    events = []
    capture = CaptureThread(Broken(), on_event=events.append)
    capture.start()
    _, end = drain(capture)
    capture.stop()
    assert end.reason == "failed" and "device gone" in end.message
    assert events[-1].kind == "error"


def test_stream_drops_and_reconnects(tmp_path):
    """A real MJPEG stream over HTTP on the loopback interface: it drops, the capture
    thread says it is reconnecting, the server comes back, frames flow again."""
    server = MjpegServer(fps=50).start()
    events = []
    try:
        source = StreamSource(server.url, open_timeout_s=2, read_timeout_s=2)
        capture = CaptureThread(source, on_event=events.append, backoff=Backoff(first_s=0.2, max_s=0.5))
        capture.start()
        first = capture.get(timeout=5)
        assert isinstance(first, CapturedFrame) and first.frame.image.shape == (120, 160, 3)
        server.stop()
        deadline = time.perf_counter() + 10
        while not any(e.kind == "reconnecting" for e in events) and time.perf_counter() < deadline:
            capture.get(timeout=0.1)
        assert any(e.kind == "reconnecting" for e in events)
        server.start()
        deadline = time.perf_counter() + 15
        while not any(e.kind == "reconnected" for e in events) and time.perf_counter() < deadline:
            capture.get(timeout=0.1)
        assert any(e.kind == "reconnected" for e in events)
        item = capture.get(timeout=5)
        assert isinstance(item, CapturedFrame)
        assert capture.stop(10)
    finally:
        server.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("capture:")]


def test_queue_and_meters():
    queue = FrameQueue(1)
    assert queue.put_latest("a") == 0 and queue.put_latest("b") == 1
    assert queue.get(0) == "b" and queue.get(0.01) is None
    with pytest.raises(ValueError):
        FrameQueue(0)
    meter = RateMeter(window_s=10)
    for i in range(11):
        meter.tick(now=i * 0.1)
    assert meter.rate(now=1.0) == pytest.approx(10.0)
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile([], 95) == 0.0
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([0, 10], 95) == pytest.approx(9.5)
    assert [Backoff(0.5, 2, 3).delay(a) for a in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]

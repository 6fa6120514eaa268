"""The capture thread: frames from a :class:`FrameSource` into a bounded queue. Qt-free.

One thread reads the source and hands frames to one consumer (the inference worker) through a
queue that holds at most ``capacity`` frames (one by default), so latency cannot grow:

- live sources (cameras, streams): the newest frame wins; a frame still waiting when a newer
  one arrives is dropped and counted;
- files, "as fast as possible": the put blocks until the consumer takes the frame, so no frame
  is lost;
- files, "real time": frames are released at the file's FPS; a frame is dropped (and counted)
  only when the consumer has not taken the previous one by then (inference slower than the
  video).

A live source that stops delivering is reopened with exponential back-off
(:meth:`LiveSource.reopen`); every state change is reported through ``on_event``. Files can be
paused, stepped one frame and sought; those requests are applied by the capture thread itself,
so the source is only ever touched by one thread. Stopping is cooperative: :meth:`stop` sets an
event that every wait in the thread watches, then joins.

The capture thread owns the source once started and closes it when the thread ends.
"""

from __future__ import annotations

import collections
import statistics
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Callable

from .frames import Frame
from .sources import FrameSource

# How long blocking waits sleep before looking at the stop flag again (seconds).
POLL_S = 0.05
# In real-time mode, fall this far behind the file's clock and the clock restarts from the
# current frame instead of rushing to catch up (after a stall, a pause or a seek).
REANCHOR_AFTER_S = 0.5


# -- items in the queue -------------------------------------------------------------------

@dataclass(frozen=True)
class CapturedFrame:
    """A frame as the capture thread hands it on.

    ``id``: unique, increasing number of the capture (unlike ``frame.index`` it never repeats
    after a seek). ``read_ms``: time spent in ``source.read()`` (decode or device wait).
    ``generation``: the seek count when it was read (frames from before a seek are stale).
    """

    id: int
    frame: Frame
    read_ms: float
    generation: int = 0


@dataclass(frozen=True)
class EndOfStream:
    """The source has no more frames. ``reason``: "end" (file finished), "failed" (the
    source broke or a live source could not be reconnected); ``message`` says why."""

    reason: str
    message: str = ""
    generation: int = 0


class CaptureState(StrEnum):
    """Where a capture thread (and so a pipeline) is. String-valued: shown and logged as is."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    RECONNECTING = "reconnecting"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"


class EventKind(StrEnum):
    """What a :class:`CaptureEvent` reports."""

    WARNING = "warning"  # a frame skipped, a reopening that failed
    ERROR = "error"  # a frame that could not be detected, a listener that failed
    DROPPING = "dropping"  # real-time mode cannot keep up
    RECONNECTING = "reconnecting"
    RECONNECTED = "reconnected"
    GAVE_UP = "gave_up"  # a live source could not be reopened
    END = "end"  # the file ended
    MODEL = "model"  # another model now detects


@dataclass(frozen=True)
class CaptureEvent:
    """Something the user should hear about, of a :class:`EventKind`."""

    kind: EventKind
    message: str


OnEvent = Callable[[CaptureEvent], None]


# -- small building blocks ----------------------------------------------------------------

@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: ``first_s``, times ``factor`` each attempt, at
    most ``max_s``; ``max_attempts`` None means try until stopped."""

    first_s: float = 0.5
    factor: float = 2.0
    max_s: float = 8.0
    max_attempts: int | None = None

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (1-based)."""
        return min(self.max_s, self.first_s * self.factor ** max(0, attempt - 1))


class RateMeter:
    """Events per second over a sliding window (thread-safe)."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def rate(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], self._times[-1] - self._times[0])
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


class FrameQueue:
    """A bounded hand-over between the capture thread and one consumer.

    The consumer calls :meth:`done` when it has finished with the item :meth:`get` gave it, so
    :attr:`settled` can tell "nothing queued and nothing in hand" without timing guesses.
    """

    def __init__(self, capacity: int = 1):
        if capacity < 1:
            raise ValueError(f"queue capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._in_hand = False

    def put_latest(self, item) -> int:
        """Put without waiting; the oldest items make room. Returns how many were dropped."""
        with self._cond:
            dropped = 0
            while len(self._items) >= self.capacity:
                self._items.popleft()
                dropped += 1
            self._items.append(item)
            self._cond.notify_all()
            return dropped

    def put_wait(self, item, stop: threading.Event) -> bool:
        """Put, waiting for room; False (item not queued) if ``stop`` was set meanwhile."""
        with self._cond:
            while len(self._items) >= self.capacity:
                if stop.is_set():
                    return False
                self._cond.wait(POLL_S)
            self._items.append(item)
            self._cond.notify_all()
            return True

    def wait_for_room(self, stop: threading.Event) -> bool:
        """Wait until an item fits; False if ``stop`` was set meanwhile."""
        with self._cond:
            while len(self._items) >= self.capacity:
                if stop.is_set():
                    return False
                self._cond.wait(POLL_S)
            return True

    def get(self, timeout: float | None = None):
        """The oldest item, or None if nothing came within ``timeout`` seconds."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            self._in_hand = True  # set with the pop, under the lock: no moment looks idle
            self._cond.notify_all()
            return item

    def done(self) -> None:
        """The consumer has finished with the item it took last."""
        with self._cond:
            self._in_hand = False

    @property
    def settled(self) -> bool:
        """Nothing queued and the consumer holds no item it has not finished."""
        with self._cond:
            return not self._items and not self._in_hand

    def wake(self) -> None:
        """Let a waiting :meth:`get` return now (with None if nothing is queued)."""
        with self._cond:
            self._cond.notify_all()

    def clear(self) -> int:
        """Throw away what is queued (after a seek); returns how many items."""
        with self._cond:
            count = len(self._items)
            self._items.clear()
            self._cond.notify_all()
            return count

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


@dataclass(frozen=True)
class CaptureStats:
    """A snapshot of the capture thread's figures.

    ``read``: frames read from the source; ``delivered``: frames queued; ``dropped``: frames
    replaced in the queue before the consumer took them (live sources, real-time mode);
    ``skipped``: undecodable frames the source skipped; ``fps``: frames read per second
    (rolling); ``read_ms``: median time of ``source.read()``; ``position``: index of the last
    frame read.
    """

    state: CaptureState = CaptureState.IDLE
    read: int = 0
    delivered: int = 0
    dropped: int = 0
    skipped: int = 0
    reconnects: int = 0
    fps: float = 0.0
    read_ms: float = 0.0
    position: int | None = None
    frame_count: int | None = None


@dataclass
class _Controls:
    """Requests from other threads, applied by the capture thread (guarded by a Condition)."""

    paused: bool = False
    steps: int = 0
    seek_to: int | None = None
    realtime: bool = False
    generation: int = 0  # bumped by every seek: older frames are stale, pacing restarts
    read_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=120))


# -- the thread ---------------------------------------------------------------------------

class CaptureThread:
    """Read ``source`` in a thread of its own into a :class:`FrameQueue`.

    ``realtime``: pace a file at its FPS (live sources are always paced by the device).
    ``hold_at_end``: at the end of a seekable source, wait for a seek (or stop) instead of
    ending the thread, as a player does. ``backoff``: reconnection delays for live sources.
    ``lossless``: never replace a queued frame, also from a live source (the capture thread
    waits, as ``detect`` wants: every frame the device delivers is detected). ``on_event`` is
    called from the capture thread.
    """

    def __init__(
        self,
        source: FrameSource,
        realtime: bool = False,
        on_event: OnEvent | None = None,
        hold_at_end: bool = False,
        backoff: Backoff | None = None,
        capacity: int = 1,
        lossless: bool = False,
    ):
        self.source = source
        self.lossless = lossless
        self.queue = FrameQueue(capacity)
        self.hold_at_end = hold_at_end and source.seekable
        self.backoff = backoff or Backoff()
        self._on_event = on_event
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._ctl = _Controls(realtime=realtime)
        self._rate = RateMeter()
        self._state = CaptureState.IDLE
        self._counts = collections.Counter()
        self._position: int | None = None
        self._next_id = 0
        self._thread = threading.Thread(target=self._run, name=f"capture:{source.name}", daemon=True)
        self._chain_source_warnings()

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._state = CaptureState.RUNNING
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Ask the thread to end and wait for it; True if it has ended.

        A blocking device read (a stream that went silent) ends within the source's read
        timeout; ``timeout`` bounds the wait here.
        """
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def get(self, timeout: float | None = None):
        """Next :class:`CapturedFrame` or :class:`EndOfStream`, or None after ``timeout``.

        Items read before the latest seek are stale and skipped here.
        """
        deadline = None if timeout is None else time.perf_counter() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.perf_counter())
            item = self.queue.get(remaining)
            if item is None or item.generation == self.generation:
                return item
            self.queue.done()  # a stale item is finished with at once
            if deadline is not None and time.perf_counter() >= deadline:
                return None

    @property
    def generation(self) -> int:
        with self._cond:
            return self._ctl.generation

    # -- controls (any thread) --------------------------------------------------------------

    def pause(self) -> None:
        self._control(paused=True)

    def resume(self) -> None:
        self._control(paused=False, steps=0)

    def step(self, frames: int = 1) -> None:
        """While paused, read ``frames`` more frames (a file's "next frame" button)."""
        with self._cond:
            self._ctl.steps += max(0, int(frames))
            self._cond.notify_all()

    def seek(self, index: int) -> None:
        """Continue from frame ``index`` (seekable sources); queued frames are discarded."""
        if not self.source.seekable:
            raise ValueError(f"{self.source.name}: a {self.source.kind} cannot seek")
        with self._cond:
            self._ctl.seek_to = max(0, int(index))
            self._ctl.generation += 1
            self._cond.notify_all()
        self.queue.clear()

    def set_realtime(self, realtime: bool) -> None:
        """Switch a file between real-time pacing and as-fast-as-possible."""
        self._control(realtime=bool(realtime))

    @property
    def paused(self) -> bool:
        with self._cond:
            return self._ctl.paused

    @property
    def realtime(self) -> bool:
        with self._cond:
            return self._ctl.realtime

    def _control(self, **changes) -> None:
        with self._cond:
            for name, value in changes.items():
                setattr(self._ctl, name, value)
            self._cond.notify_all()

    # -- figures ----------------------------------------------------------------------------

    def stats(self) -> CaptureStats:
        with self._cond:
            read_ms = statistics.median(self._ctl.read_ms) if self._ctl.read_ms else 0.0
            counts = dict(self._counts)
            position = self._position
        return CaptureStats(
            state=self._state,
            read=counts.get("read", 0),
            delivered=counts.get("delivered", 0),
            dropped=counts.get("dropped", 0),
            skipped=self.source.skipped,
            reconnects=counts.get("reconnects", 0),
            fps=self._rate.rate(),
            read_ms=read_ms,
            position=position,
            frame_count=self.source.frame_count,
        )

    # -- the thread's work --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a broken source must end the stream with a message, not silently
            message = f"{self.source.name}: capture failed ({type(exc).__name__}: {exc})"
            self._emit(EventKind.ERROR, message)
            self._finish(EndOfStream("failed", message, self.generation))
        finally:
            self.source.close()
            if self._state not in (CaptureState.FINISHED, CaptureState.FAILED):
                self._state = CaptureState.STOPPED

    def _loop(self) -> None:
        anchor: tuple[float, int, int] | None = None  # (clock, frame index, generation) for pacing
        while not self._stop.is_set():
            generation = self._wait_for_permission()
            if generation is None:
                return
            # A file read as fast as possible is read only once there is room for the frame:
            # a frame read earlier would wait in this thread and add a frame of latency.
            if not self._newest_wins() and not self.queue.wait_for_room(self._stop):
                return
            item = self._read(generation)
            if item is None:
                if self.source.is_live and self._reconnect():
                    continue
                if self._stop.is_set() or not self._end_of_source(generation):
                    return
                anchor = None
                continue
            anchor = self._pace(item.frame, anchor, generation)
            if anchor is None and self._stop.is_set():
                return
            self._deliver(item)

    def _wait_for_permission(self) -> int | None:
        """Apply a pending seek; wait while paused (unless a step is asked). Returns the seek
        generation to read under, or None when stopping."""
        with self._cond:
            while not self._stop.is_set():
                if self._ctl.seek_to is not None:
                    target, self._ctl.seek_to = self._ctl.seek_to, None
                    # A seek decodes from the previous key frame (can take a second): not under
                    # the lock that stats() and the GUI's controls take.
                    self._cond.release()
                    try:
                        self.source.seek(target)
                    finally:
                        self._cond.acquire()
                    continue  # the controls may have changed meanwhile
                if not self._ctl.paused:
                    self._state = CaptureState.RUNNING if self._state != CaptureState.RECONNECTING else self._state
                    return self._ctl.generation
                if self._ctl.steps > 0:
                    self._ctl.steps -= 1
                    return self._ctl.generation
                self._state = CaptureState.PAUSED
                self._cond.wait(POLL_S * 4)
        return None

    def _read(self, generation: int) -> CapturedFrame | None:
        started = time.perf_counter()
        frame = self.source.read()
        read_ms = (time.perf_counter() - started) * 1e3
        if frame is None:
            return None
        self._rate.tick()
        with self._cond:
            self._ctl.read_ms.append(read_ms)
            self._counts["read"] += 1
            self._position = frame.index
            self._next_id += 1
            return CapturedFrame(self._next_id - 1, frame, read_ms, generation)

    def _pace(self, frame: Frame, anchor, generation: int):
        """Real-time mode: wait until this frame is due on the file's clock.

        Returns the (possibly new) anchor; None if the wait was cut short by stop.
        """
        fps = self.source.fps
        if self.source.is_live or not self.realtime or not fps:
            return anchor or (time.perf_counter(), frame.index, generation)
        now = time.perf_counter()
        if anchor is None or anchor[2] != generation or frame.index < anchor[1]:
            return (now, frame.index, generation)
        due = anchor[0] + (frame.index - anchor[1]) / fps
        if now - due > REANCHOR_AFTER_S:
            return (now, frame.index, generation)
        with self._cond:
            while not self._stop.is_set() and time.perf_counter() < due and self._ctl.generation == generation:
                self._cond.wait(min(POLL_S, max(0.0, due - time.perf_counter())))
        # Released now, as a camera would deliver it: latency counts from here.
        frame.captured_at = time.perf_counter()
        return None if self._stop.is_set() else anchor

    def _newest_wins(self) -> bool:
        return not self.lossless and (self.source.is_live or self.realtime)

    def _deliver(self, item: CapturedFrame) -> None:
        if self._newest_wins():
            dropped = self.queue.put_latest(item)
            if dropped:
                self._count_drops(dropped)
        elif not self.queue.put_wait(item, self._stop):
            return
        with self._cond:
            self._counts["delivered"] += 1

    def _count_drops(self, dropped: int) -> None:
        with self._cond:
            self._counts["dropped"] += dropped
            first = self._counts["dropped"] == dropped
        if first and not self.source.is_live:
            self._emit(EventKind.DROPPING, f"{self.source.name}: detection is slower than the video's "
                                   f"{self.source.fps or 0:.0f} FPS; frames are dropped to keep real time")

    def _end_of_source(self, generation: int) -> bool:
        """Post the end marker. Returns True to keep the thread (hold at end for a seek)."""
        if self.source.is_live:
            message = f"{self.source.name}: the source stopped delivering frames and could not be reconnected"
            self._emit(EventKind.GAVE_UP, message)
            self._finish(EndOfStream("failed", message, generation))
            return False
        self._emit(EventKind.END, f"{self.source.name}: end of the {self.source.kind}")
        self._finish(EndOfStream("end", "", generation))
        if not self.hold_at_end:
            return False
        with self._cond:
            while not self._stop.is_set() and self._ctl.generation == generation:
                self._cond.wait(POLL_S * 4)
            if not self._stop.is_set():
                self._state = CaptureState.RUNNING
        return not self._stop.is_set()

    def _finish(self, marker: EndOfStream) -> None:
        self._state = CaptureState.FINISHED if marker.reason == "end" else CaptureState.FAILED
        self.queue.put_wait(marker, self._stop)

    def _reconnect(self) -> bool:
        """Reopen a live source with back-off; True once it delivers again."""
        self._state = CaptureState.RECONNECTING
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            if self.backoff.max_attempts is not None and attempt > self.backoff.max_attempts:
                return False
            delay = self.backoff.delay(attempt)
            of = f" of {self.backoff.max_attempts}" if self.backoff.max_attempts is not None else ""
            self._emit(EventKind.RECONNECTING, f"{self.source.name}: no frames (disconnected?); "
                                               f"reconnecting in {delay:.1f} s (attempt {attempt}{of})")
            if self._stop.wait(delay):
                return False
            if self._try_reopen():
                with self._cond:
                    self._counts["reconnects"] += 1
                self._state = CaptureState.RUNNING
                self._emit(EventKind.RECONNECTED, f"{self.source.name}: reconnected after {attempt} attempt(s)")
                return True
        return False

    def _try_reopen(self) -> bool:
        reopen = getattr(self.source, "reopen", None)
        if reopen is None:
            return False
        try:
            return bool(reopen())
        except Exception as exc:  # a device error while reopening is one more failed attempt
            self._emit(EventKind.WARNING, f"{self.source.name}: reopening failed ({type(exc).__name__}: {exc})")
            return False

    # -- events -----------------------------------------------------------------------------

    def _chain_source_warnings(self) -> None:
        original = self.source.on_warning

        def warn(message: str) -> None:
            original(message)
            self._emit(EventKind.WARNING, message)

        self.source.on_warning = warn

    def _emit(self, kind: EventKind, message: str) -> None:
        if self._on_event is not None:
            self._on_event(CaptureEvent(kind, message))

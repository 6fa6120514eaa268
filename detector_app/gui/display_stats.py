"""Figures of what the window shows, and the status-bar text built from them. Qt-free.

The pipeline measures capture and inference; only the GUI knows when a frame reached the
screen, so display FPS and end-to-end latency (capture to paint) are measured here.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

from runtime.stats import percentile

from ..capture import RateMeter
from ..pipeline import PipelineStats

WINDOW = 300


@dataclass(frozen=True)
class DisplayFigures:
    """``fps``: frames painted per second (rolling); ``latency_ms``: capture to paint
    {"p50", "p95"}; ``shown``: frames painted; ``superseded``: results replaced by a newer
    one before the window could paint them; ``paint_ms``: median time of a paint."""

    fps: float
    latency_ms: dict[str, float]
    shown: int
    superseded: int
    paint_ms: float


class DisplayMeter:
    """Collects one entry per frame painted (thread-safe)."""

    def __init__(self) -> None:
        self._rate = RateMeter()
        self._latencies: collections.deque[float] = collections.deque(maxlen=WINDOW)
        self._paints: collections.deque[float] = collections.deque(maxlen=WINDOW)
        self._lock = threading.Lock()
        self.shown = 0
        self.superseded = 0

    def painted(self, captured_at: float, paint_ms: float, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        self._rate.tick(now)
        with self._lock:
            self.shown += 1
            self._latencies.append((now - captured_at) * 1e3)
            self._paints.append(paint_ms)

    def latencies(self) -> list[float]:
        with self._lock:
            return list(self._latencies)

    def figures(self) -> DisplayFigures:
        with self._lock:
            latencies, paints = list(self._latencies), list(self._paints)
            shown, superseded = self.shown, self.superseded
        return DisplayFigures(self._rate.rate(), {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
                              shown, superseded, percentile(paints, 50))


STAGE_SHORT = {"capture": "cap", "preprocess": "pre", "inference": "inf", "postprocess": "post", "draw": "draw"}


def status_text(stats: PipelineStats, display: DisplayFigures) -> str:
    """One status-bar line: rates, drops, latency, per-stage ms."""
    stages = " ".join(f"{STAGE_SHORT[s]} {ms:.1f}" for s, ms in stats.stage_ms.items() if s in STAGE_SHORT)
    return (f"capture {stats.capture_fps:4.1f} | inference {stats.inference_fps:4.1f} | "
            f"display {display.fps:4.1f} FPS | dropped {stats.dropped} | "
            f"latency {display.latency_ms['p50']:.0f}/{display.latency_ms['p95']:.0f} ms (p50/p95) | "
            f"{stages} ms")


def status_tooltip(stats: PipelineStats, display: DisplayFigures) -> str:
    """The long explanation shown when hovering over the status line."""
    stages = "\n".join(f"  {s}: {ms:.2f} ms (median)" for s, ms in stats.stage_ms.items())
    return (
        f"state: {stats.state}\n"
        f"frames captured {stats.captured}, processed {stats.processed}, shown {display.shown}\n"
        f"dropped by the capture queue (newest frame wins): {stats.dropped}\n"
        f"replaced before they could be painted: {display.superseded}\n"
        f"undecodable frames skipped: {stats.skipped}; errors: {stats.errors}; reconnections: {stats.reconnects}\n"
        f"end-to-end latency capture -> screen: p50 {display.latency_ms['p50']:.1f} ms, "
        f"p95 {display.latency_ms['p95']:.1f} ms\n"
        f"capture -> result: p50 {stats.latency_ms['p50']:.1f} ms, p95 {stats.latency_ms['p95']:.1f} ms\n"
        f"per stage:\n{stages}\n  paint: {display.paint_ms:.2f} ms (median)\n"
        f"device: {stats.device}"
    )

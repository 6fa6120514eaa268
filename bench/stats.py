"""Timing helpers for the benchmarks: median and 95th percentile of repeated runs."""

from __future__ import annotations

import time
from typing import Callable

from runtime.stats import percentile


def percentiles(values_ms: list[float]) -> dict[str, float]:
    """{"ms_p50", "ms_p95", "n"} with the percentile the app's status bar uses."""
    return {"ms_p50": percentile(values_ms, 50), "ms_p95": percentile(values_ms, 95), "n": len(values_ms)}


def time_calls(fn: Callable[[int], object], n: int, warmup: int = 5) -> list[float]:
    """Call ``fn(i)`` ``warmup`` times untimed, then ``n`` times; return each call's ms."""
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1e3)
    return out

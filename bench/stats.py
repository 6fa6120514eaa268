"""Timing helpers for the benchmarks: median and 95th percentile of repeated runs."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def percentiles(values_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(values_ms, dtype=np.float64)
    return {"ms_p50": float(np.percentile(arr, 50)), "ms_p95": float(np.percentile(arr, 95)),
            "n": int(arr.size)}


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

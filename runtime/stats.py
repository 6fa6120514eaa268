"""The one percentile definition, shared by the status bar, the pipeline figures, ``detect``'s
summary and the benchmarks, so a "p95" means the same thing wherever it is printed.

Linear interpolation between the two nearest ranks (NumPy's default, Hyndman-Fan type 7):
the median of an even count is the mean of the middle two. Standard library only.
"""

from __future__ import annotations

import math
from typing import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``; 0.0 when there are none.

    Raises ValueError for ``q`` outside [0, 100] or a NaN value (a NaN has no rank).
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    ordered = sorted(float(v) for v in values)
    if not ordered:
        return 0.0
    if math.isnan(ordered[-1]) or math.isnan(ordered[0]):
        raise ValueError("percentile of values that include NaN")
    position = q / 100.0 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(values: Iterable[float]) -> dict[str, float]:
    """{"p50", "p95", "mean", "n"} of ``values`` (zeros when empty)."""
    data = [float(v) for v in values]
    if not data:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0, "n": 0}
    return {"p50": percentile(data, 50), "p95": percentile(data, 95), "mean": math.fsum(data) / len(data),
            "n": len(data)}

"""The machine's measured peak: float32 matrix multiply throughput (NumPy's BLAS, all cores).

A large square GEMM is the most compute-bound work a CPU does, so its GFLOP/s is the practical
ceiling a convolution network can approach on this machine. Reported beside the model's
FLOPs per frame to show how much of the machine a contender uses.
"""

from __future__ import annotations

import time

import numpy as np


def measured_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best of ``repeats`` timed n x n x n float32 products, in GFLOP/s (2 n^3 FLOPs each)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool, caches
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9

"""bench/compare.py: the contenders are timed in alternating turns, each the number of calls
it asked for (figures themselves are printed by `main.py bench`, never asserted)."""

import numpy as np

from bench.compare import time_interleaved


def test_contenders_take_turns_and_each_gets_its_calls():
    order = []
    runs = {"a": lambda frame: order.append("a"), "b": lambda frame: order.append("b")}
    frames = [np.zeros((2, 2, 3), np.uint8)]
    timed = time_interleaved(runs, frames, {"a": 20, "b": 10}, rounds=5, warmup=1)
    assert timed["a"]["n"] == 20 and timed["b"]["n"] == 10
    assert order[:2] == ["a", "b"]  # one untimed warm-up call each
    turns = order[2:]
    # five turns of (4 x a, 2 x b): b is timed between a's turns, not after all of them
    assert turns == (["a"] * 4 + ["b"] * 2) * 5
    assert all(timed[k]["fps"] > 0 and timed[k]["ms_p95"] >= timed[k]["ms_p50"] for k in runs)

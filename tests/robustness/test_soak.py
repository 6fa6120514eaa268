"""Long runs, short: the CI variant of bench/soak.py (which runs for 30 minutes and more).

The headless pipeline loops a video for about a minute with a real (tiny) model while the
process is sampled every second: after a warm-up, no thread may appear, file descriptors and
resident memory must stay flat, and the capture queue never holds more than its capacity.
Then the main window opens and closes 30 sources in a row (a video, a folder of pictures, a
loopback MJPEG stream, in turn) and must end with no more threads or descriptors than it
started with, memory that stopped growing, and still play a video.

The bounds are generous against noise, not against leaks: a retained frame per frame grows
memory by ~10 MB/s here, and an unclosed capture per source by a descriptor per cycle.
The long figures are in tests/robustness/NOTES.md.
"""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from bench.soak import open_close_cycles, process_figures, run_headless_soak
from tests.media import write_video

pytestmark = pytest.mark.slow

SOAK_S = 75.0
WARMUP_S = 20.0


def test_the_headless_pipeline_on_a_looping_video_stays_flat(tmp_path, tiny_seed_model):
    from runtime.predictor import Predictor

    video = write_video(tmp_path / "loop.avi", frames=60, size=(320, 240))
    predictor = Predictor(tiny_seed_model, source="tiny")
    gc.collect()
    result = run_headless_soak(video, predictor, SOAK_S, interval_s=1.0, warmup_s=WARMUP_S)
    summary = result.summary()
    late = result.after_warmup()
    assert result.errors == 0 and result.loops >= 2 and result.frames > 100, summary
    assert result.max_queue <= result.queue_capacity == 1, "the queue never holds more than one frame"
    threads = [s["threads"] for s in late]
    assert max(threads) <= threads[0], f"threads grew: {threads}"
    fds = [s["fds"] for s in late]
    assert max(fds) <= fds[0] + 2, f"file descriptors grew: {fds}"
    rss = [s["rss_mb"] for s in late]
    growth = float(np.median(rss[-10:]) - np.median(rss[:10]))
    assert growth < 8.0, f"RSS grew {growth:.1f} MB in {late[-1]['t'] - late[0]['t']:.0f} s " \
                         f"(slope {summary['rss_slope_mb_per_h']} MB/h): {rss}"
    assert not [t for t in threading.enumerate() if t.name.startswith("capture:") or t.name == "inference-worker"]


try:  # the window's fixtures (pytest-qt); without it only the GUI test is skipped
    import pytestqt  # noqa: F401

    from tests.test_gui_window import clip, dog_predictor, model_files, pipeline_threads, window  # noqa: F401
    from tools.mjpeg_server import MjpegServer
except ImportError:
    pytestqt = None

CYCLES = 30


@pytest.mark.gui
@pytest.mark.skipif(pytestqt is None, reason="needs pytest-qt")
def test_opening_and_closing_many_sources_in_the_window_leaks_nothing(qtbot, window, clip, tmp_path):
    import cv2

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i in range(3):
        cv2.imwrite(str(pictures / f"p{i}.jpg"), np.full((120, 160, 3), 50 * i, np.uint8))
    server = MjpegServer(fps=25).start()

    def wait(predicate, timeout_s: float) -> None:
        qtbot.waitUntil(predicate, timeout=int(timeout_s * 1000))

    try:
        sources = [str(clip), str(pictures), server.url]
        open_close_cycles(window, sources, 2 * len(sources), wait)  # threads and caches started lazily
        gc.collect()
        before = process_figures()
        cycles = open_close_cycles(window, sources, CYCLES, wait)
        gc.collect()
        # a thread ending just now (the stream server's handler of the last client, a task's
        # QThread being deleted) is not growth: give them a moment to end
        try:
            qtbot.waitUntil(lambda: process_figures()["threads"] <= before["threads"], timeout=10000)
        except qtbot.TimeoutError:
            pass
        after = process_figures()
    finally:
        server.stop()
    assert not pipeline_threads(), "every closed source's threads ended"
    assert after["threads"] <= before["threads"], (before, after)
    assert after["fds"] <= before["fds"] + 2, (before, after)
    rss = [c["rss_mb"] for c in cycles]
    late_growth = rss[-1] - rss[CYCLES // 3]
    assert late_growth < 0.5 * (CYCLES - CYCLES // 3), f"memory still grows per source opened: {rss}"
    window.open_source_text(str(clip))
    qtbot.waitUntil(lambda: window.last_result is not None and window.meter.shown >= 3, timeout=20000)

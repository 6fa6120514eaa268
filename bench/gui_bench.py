"""GUI benchmark: the real window playing a video, measured from the GUI thread.

    python -m bench.gui_bench                       # vtest.avi, default model, offscreen
    python -m bench.gui_bench --xvfb                # in a real X11 window on Xvfb
    python -m bench.gui_bench --realtime --seconds 30 --model my.keras

Prints (figures, not assertions): display FPS (frames painted per second), end-to-end
latency from capture to paint (median and 95th percentile), frames dropped (by the capture
queue, and results superseded before they could be painted), the longest GUI-thread stall
(a 5 ms precise QTimer measures how late it fires), per-stage milliseconds and the device.
Measurement starts once the model is loaded and the first frames are shown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
TICK_MS = 5


class StallMeter:
    """How late a TICK_MS timer fires on the GUI thread: the GUI thread's stalls."""

    def __init__(self, app):
        from PyQt5.QtCore import Qt, QTimer

        self.intervals: list[float] = []
        self.times: list[float] = []
        self._last: float | None = None
        self.timer = QTimer(app, interval=TICK_MS, timerType=Qt.PreciseTimer, timeout=self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.intervals.append((now - self._last) * 1e3)
            self.times.append(now)
        self._last = now

    def stalls_ms(self) -> list[float]:
        """Lateness of each tick beyond the nominal interval."""
        return [max(0.0, i - TICK_MS) for i in self.intervals]


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QT_XCB_GL_INTEGRATION"] = "none"
    sys.path.insert(0, str(ROOT))
    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QApplication

    from detector_app.gui.app import settle_heap
    from detector_app.gui.main_window import MainWindow

    app = QApplication([sys.argv[0]])
    settle_heap()  # as run_app does
    window = MainWindow(find_cameras=False)
    window.resize(1280, 760)
    window.show()
    window.set_realtime(args.realtime)
    window.start(model=args.model, source=args.source)
    stalls = StallMeter(app)
    painted: list[tuple[float, float]] = []  # (paint time, latency ms)
    state: dict = {"t0": None, "base": None}

    def on_paint(result, paint_ms: float) -> None:
        if state["t0"] is not None and result is not None:
            now = time.perf_counter()
            painted.append((now, (now - result.frame.captured_at) * 1e3))

    window.view.framePainted.connect(on_paint)

    def check() -> None:
        now = time.perf_counter()
        pipeline = window.bridge.pipeline
        if state["t0"] is None:
            if window.loaded is not None and pipeline is not None and window.meter.shown >= 5:
                window.seek_to(0)
                state["t0"] = now
                state["base"] = (pipeline.stats(), window.bridge.superseded)
                stalls.start()
            return
        if now - state["t0"] >= args.seconds or window._at_end:
            stalls.timer.stop()  # closing joins threads: not part of playing
            state["end"] = now
            state["stats"] = pipeline.stats()
            state["superseded"] = window.bridge.superseded
            window.close()
            app.quit()

    QTimer(app, interval=100, timeout=check).start()
    app.exec_()
    window.shutdown()
    return summarise(args, state, painted, stalls)


def summarise(args: argparse.Namespace, state: dict, painted: list, stalls: StallMeter) -> dict:
    from runtime.stats import percentile

    stats, (base_stats, base_superseded) = state["stats"], state["base"]
    duration = state["end"] - state["t0"]
    latencies = [lat for _, lat in painted]
    stall = stalls.stalls_ms()
    return {
        "source": args.source,
        "model": args.model or "default (random until assets/default_model.keras ships)",
        "mode": "real time" if args.realtime else "as fast as possible",
        "platform": os.environ.get("QT_QPA_PLATFORM", ""),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "device": stats.device,
        "seconds": round(duration, 2),
        "frames_shown": len(painted),
        "display_fps": round(len(painted) / duration, 1) if duration > 0 else 0.0,
        "inference_fps": round((stats.processed - base_stats.processed) / duration, 1) if duration > 0 else 0.0,
        "latency_ms_p50": round(percentile(latencies, 50), 1),
        "latency_ms_p95": round(percentile(latencies, 95), 1),
        "result_latency_ms_p50": round(stats.latency_ms["p50"], 1),
        "dropped_by_capture": stats.dropped - base_stats.dropped,
        "superseded_before_paint": state["superseded"] - base_superseded,
        "gui_stall_ms_max": round(max(stall, default=0.0), 1),
        "gui_stall_ms_p99": round(percentile(stall, 99), 1),
        "gui_stalls_over_50ms": sum(1 for s in stall if s > 50),
        "gui_stall_max_at_s": round(stalls.times[stall.index(max(stall))] - state["t0"], 2) if stall else None,
        "stage_ms_median": {k: round(v, 2) for k, v in stats.stage_ms.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(VTEST))
    parser.add_argument("--model", help="model file (default: the bundled model)")
    parser.add_argument("--seconds", type=float, default=25.0, help="measure this long (or to the end of the file)")
    parser.add_argument("--realtime", action="store_true", help="play at the file's FPS (default: as fast as possible)")
    parser.add_argument("--xvfb", action="store_true", help="run in an X11 window on a virtual X server")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not Path(args.source).exists():
        sys.exit(f"error: {args.source}: no such file (vtest.avi comes with: sudo apt-get install opencv-doc)")
    if args.xvfb and not args.child:
        return run_under_xvfb()
    with tempfile.TemporaryDirectory() as config:
        os.environ["DETECTOR_APP_CONFIG_DIR"] = config  # leave the user's settings alone
        figures = run(args)
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


def run_under_xvfb() -> int:
    from tools.screenshot_gui import start_xvfb

    xvfb, display = start_xvfb()
    try:
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
        argv = [a for a in sys.argv[1:] if a != "--xvfb"]
        return subprocess.run([sys.executable, "-m", "bench.gui_bench", "--child", *argv], cwd=ROOT, env=env).returncode
    finally:
        xvfb.terminate()
        xvfb.wait(10)


if __name__ == "__main__":
    sys.exit(main())

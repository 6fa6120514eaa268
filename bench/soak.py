"""Soak benchmark: the headless pipeline on a looping video for a long time, memory sampled;
then opening and closing many sources in a row in the GUI (offscreen).

    python -m bench.soak --minutes 30 --json soak.json            # vtest.avi, default model
    python -m bench.soak --minutes 2 --gui-sources 100 --video clip.avi --model m.keras

Every ``--interval`` seconds it samples the process's resident memory (RSS), OS threads,
open file descriptors, the capture queue's length and the pipeline's counters. It reports
(figures, never assertions) the RSS slope in MB per hour by least squares over the samples
after ``--warmup-minutes`` (and over the last half alone, as a check on the first figure),
the largest queue length seen by any frame, and the range of thread and descriptor counts.
``--gui-sources N`` then opens N sources one after another in the main window (a video, a
folder of images and a loopback MJPEG stream, in turn), each until it shows frames, and
closes it; it reports threads, descriptors and RSS before and after, and whether the window
still plays a video afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from detector_app.frames import Frame
from detector_app.sources import FrameSource, VideoFileSource

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


class LoopingVideo(FrameSource):
    """A video file played again from its first frame whenever it ends (a camera that never
    stops). Frame indices keep counting up across loops; ``loops`` counts the restarts."""

    kind = "video"
    is_live = False
    seekable = False

    def __init__(self, path: str | os.PathLike, on_warning=None):
        super().__init__(str(path), on_warning)
        self._video = VideoFileSource(path, on_warning)
        self.loops = 0
        self._count = 0

    @property
    def fps(self) -> float | None:
        return self._video.fps

    def read(self) -> Frame | None:
        frame = self._video.read()
        if frame is None:
            self.loops += 1
            self._video.seek(0)
            frame = self._video.read()
            if frame is None:
                return None
        frame.index = self._count
        self._count += 1
        return frame

    def close(self) -> None:
        self._video.close()


# -- process figures ----------------------------------------------------------------------------

def process_figures() -> dict[str, float]:
    """RSS (MB), OS threads and open file descriptors of this process."""
    import psutil

    proc = psutil.Process()
    fds = proc.num_fds() if hasattr(proc, "num_fds") else proc.num_handles()
    return {"rss_mb": proc.memory_info().rss / 2**20, "threads": proc.num_threads(), "fds": fds}


def slope_per_hour(times_s: list[float], values: list[float]) -> float | None:
    """Least-squares slope of ``values`` against time, per hour (None with < 3 points)."""
    if len(times_s) < 3 or max(times_s) - min(times_s) <= 0:
        return None
    return float(np.polyfit(np.asarray(times_s) / 3600.0, np.asarray(values), 1)[0])


@dataclass
class SoakResult:
    seconds: float
    warmup_s: float
    frames: int
    loops: int
    errors: int
    dropped: int
    fps: float
    max_queue: int
    queue_capacity: int
    samples: list[dict] = field(default_factory=list)

    def after_warmup(self) -> list[dict]:
        return [s for s in self.samples if s["t"] >= self.warmup_s]

    def summary(self) -> dict:
        late = self.after_warmup()
        half = late[len(late) // 2:]
        rss = [s["rss_mb"] for s in late]
        threads = [s["threads"] for s in late]
        fds = [s["fds"] for s in late]
        return {
            "seconds": round(self.seconds, 1), "frames": self.frames, "fps": round(self.fps, 2),
            "loops": self.loops, "errors": self.errors, "dropped": self.dropped,
            "samples_after_warmup": len(late),
            "rss_slope_mb_per_h": _round(slope_per_hour([s["t"] for s in late], rss)),
            "rss_slope_last_half_mb_per_h": _round(slope_per_hour([s["t"] for s in half], [s["rss_mb"] for s in half])),
            "rss_mb_after_warmup": [_round(min(rss, default=0)), _round(max(rss, default=0))],
            "rss_mb_first_last": [_round(rss[0]) if rss else None, _round(rss[-1]) if rss else None],
            "threads_after_warmup": [min(threads, default=0), max(threads, default=0)],
            "fds_after_warmup": [min(fds, default=0), max(fds, default=0)],
            "max_queue": self.max_queue, "queue_capacity": self.queue_capacity,
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def run_headless_soak(video: str | os.PathLike, predictor, seconds: float, interval_s: float = 5.0,
                      warmup_s: float = 60.0, progress: Callable[[dict], None] | None = None) -> SoakResult:
    """The headless pipeline on ``video`` looped for ``seconds``, sampled every ``interval_s``."""
    from detector_app.pipeline import HeadlessPipeline

    source = LoopingVideo(video)
    max_queue = [0]
    pipeline: HeadlessPipeline | None = None

    def on_result(result) -> None:  # every frame: how many frames wait behind this one
        max_queue[0] = max(max_queue[0], len(pipeline.capture.queue))

    pipeline = HeadlessPipeline(source, predictor, on_result=on_result)
    samples: list[dict] = []
    start = time.perf_counter()
    pipeline.start()
    try:
        next_sample = start
        while True:
            now = time.perf_counter()
            if now >= next_sample:
                stats = pipeline.stats()
                sample = {"t": round(now - start, 2), **{k: round(v, 2) if isinstance(v, float) else v
                                                          for k, v in process_figures().items()},
                          "queue": len(pipeline.capture.queue), "processed": stats.processed,
                          "captured": stats.captured, "errors": stats.errors, "loops": source.loops}
                samples.append(sample)
                if progress:
                    progress(sample)
                next_sample += interval_s
            if now - start >= seconds or pipeline.finished:
                break
            time.sleep(min(0.2, max(0.0, next_sample - time.perf_counter())))
    finally:
        pipeline.stop()
    stats = pipeline.stats()
    return SoakResult(time.perf_counter() - start, warmup_s, stats.processed, source.loops, stats.errors,
                      stats.dropped, stats.mean_fps, max_queue[0], pipeline.capture.queue.capacity, samples)


# -- the GUI: many sources in a row -------------------------------------------------------------

def gui_sources(folder: Path, video: Path, stream_url: str | None) -> list[str]:
    """The sources to cycle through: the video, a folder of three pictures, the stream."""
    import cv2

    pictures = folder / "pictures"
    pictures.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    for i in range(3):
        ok, image = cap.read()
        if ok:
            cv2.imwrite(str(pictures / f"p{i}.jpg"), image)
    cap.release()
    return [str(video), str(pictures)] + ([stream_url] if stream_url else [])


def open_close_cycles(window, sources: list[str], count: int, wait: Callable[[Callable[[], bool], float], None],
                      frames: int = 2) -> list[dict]:
    """Open ``count`` sources in turn in ``window`` (a MainWindow), each until it has shown
    ``frames`` frames (a folder of pictures: its first picture, then one step), then close it.
    ``wait(predicate, timeout_s)`` runs the Qt event loop until ``predicate()`` holds (it
    raises on timeout). Returns the process figures after each cycle."""
    figures = []
    for i in range(count):
        text = sources[i % len(sources)]
        window.open_source_text(text)
        wait(lambda: window.bridge.pipeline is not None and window.last_result is not None, 60)
        if window.bridge.pipeline.source.kind == "images":  # opens paused on its first picture
            window.step_frame()
        wait(lambda: window.meter.shown >= frames, 60)
        window.close_source()
        wait(lambda: not window.tasks.busy(), 60)
        figures.append({"cycle": i + 1, "source": text, **process_figures()})
    wait(lambda: window.bridge.join_retired(0.1) and not window.tasks.busy(), 60)
    return figures


def run_gui_cycles(count: int, video: Path, predictor, model_path: str | None) -> dict:
    """``count`` open/close cycles in an offscreen main window; figures before and after."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt5.QtWidgets import QApplication

    from detector_app.gui.main_window import MainWindow
    from detector_app.gui.model_loading import LoadedModel
    from tools.mjpeg_server import MjpegServer

    app = QApplication.instance() or QApplication([])

    def wait(predicate: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.perf_counter() + timeout_s
        while not predicate():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the window did not get there within {timeout_s:.0f} s")
            app.processEvents()
            time.sleep(0.01)

    with tempfile.TemporaryDirectory(prefix="soak-gui-") as tmp:
        folder = Path(tmp)
        server = MjpegServer(fps=25).start()
        try:
            window = MainWindow(settings_file=str(folder / "settings.yaml"), registry=str(folder / "models.yaml"),
                                find_cameras=False)
            window.outputs.output_dir = folder / "out"
            window.show()
            window.use_model(LoadedModel(predictor, model_path or predictor.source))
            sources = gui_sources(folder, video, server.url)
            warm = open_close_cycles(window, sources, len(sources), wait)  # lazily started threads
            before = process_figures()
            started = time.perf_counter()
            cycles = open_close_cycles(window, sources, count, wait)
            seconds = time.perf_counter() - started
            after = process_figures()
            window.open_source_text(str(video))
            wait(lambda: window.last_result is not None and window.meter.shown >= 3, 60)
            still_works = window.last_result is not None
            window.close()
            app.processEvents()
        finally:
            server.stop()
    return {"cycles": count, "seconds": round(seconds, 1), "warmup_cycles": len(warm), "before": before,
            "after": after, "still_plays_a_video": still_works,
            "threads_max": max(c["threads"] for c in cycles), "fds_max": max(c["fds"] for c in cycles),
            "rss_mb_per_cycle": [round(c["rss_mb"], 1) for c in cycles]}


# -- command line -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the headless soak (default 30)")
    parser.add_argument("--warmup-minutes", type=float, default=None,
                        help="samples before this are left out of the slope (default: a tenth of the run, 0.5-3 min)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument("--video", help=f"video to loop (default {VTEST}, else a generated one)")
    parser.add_argument("--model", help="model file (default: the bundled model, else a random one)")
    parser.add_argument("--gui-sources", type=int, default=0, help="then open and close this many sources in the GUI")
    parser.add_argument("--json", help="write every sample and the summary here")
    args = parser.parse_args(argv)

    import main as app_main

    app_main.preload_backend()
    from bench.machine import machine_info
    from detector_app.model_store import resolve_model
    from runtime.predictor import Predictor

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        video = Path(args.video) if args.video else VTEST
        if not video.exists():
            from tools.synthetic_video import write_video

            video = write_video(Path(tmp) / "generated.avi", frames=200, width=768, height=576)
        resolved = resolve_model(args.model)
        predictor = Predictor(resolved.model, source=resolved.path or "random model (untrained)")
        warmup_s = 60 * (args.warmup_minutes if args.warmup_minutes is not None
                         else min(3.0, max(0.5, args.minutes / 10)))
        print(f"soak: {video.name} looped for {args.minutes:g} min through {predictor.source} "
              f"({predictor.device}, {predictor.engine} engine); samples every {args.interval:g} s, "
              f"warm-up {warmup_s / 60:g} min", file=sys.stderr)

        def show(sample: dict) -> None:
            print(f"  t={sample['t']:7.0f} s  rss {sample['rss_mb']:7.1f} MB  threads {sample['threads']:3d}  "
                  f"fds {sample['fds']:3d}  queue {sample['queue']}  frames {sample['processed']}", file=sys.stderr)

        result = run_headless_soak(video, predictor, args.minutes * 60, args.interval, warmup_s, show)
        report = {"command": "python -m bench.soak " + " ".join(argv if argv is not None else sys.argv[1:]),
                  "machine": machine_info(), "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
                  "video": str(video), "model": predictor.source, "device": predictor.device,
                  "engine": predictor.engine, "headless": result.summary(), "samples": result.samples}
        print(json.dumps(report["headless"], indent=1), file=sys.stderr)
        if args.gui_sources:
            print(f"GUI: opening and closing {args.gui_sources} sources ...", file=sys.stderr)
            report["gui"] = run_gui_cycles(args.gui_sources, video, predictor, resolved.path)
            print(json.dumps({k: v for k, v in report["gui"].items() if k != "rss_mb_per_cycle"}, indent=1),
                  file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The end-to-end pipeline, headless: capture thread -> queue -> predictor -> overlay."""

from __future__ import annotations

from pathlib import Path

from detector_app.pipeline import HeadlessPipeline
from detector_app.sources import open_source
from runtime.predictor import Predictor

from .frames import VTEST


def run_pipeline(predictor: Predictor, video: Path = VTEST, max_frames: int | None = None,
                 realtime: bool = False) -> dict:
    """Frames/s and capture-to-result latency over one pass of ``video``.

    ``realtime=False`` reads as fast as the worker takes frames (throughput); ``True`` paces
    the file at its own FPS like a camera (latency as a live user sees it).
    """
    latencies: list[float] = []
    with open_source(str(video)) as source:
        pipeline = HeadlessPipeline(source, predictor, on_result=lambda r: latencies.append(r.latency_ms),
                                    realtime=realtime)
        stats = pipeline.run(max_frames=max_frames)
    import numpy as np

    lat = np.asarray(latencies[5:] or latencies)  # the first frames include start-up
    return {
        "video": f"{video.name}",
        "mode": "real time (paced at the file's FPS)" if realtime else "as fast as possible",
        "frames": stats.processed,
        "fps": stats.mean_fps,
        "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else 0.0,
        "latency_ms_p95": float(np.percentile(lat, 95)) if lat.size else 0.0,
        "dropped": stats.dropped,
        "stage_ms": stats.stage_ms,
    }

"""The ``detect`` command's work: a source through the predictor into output files. Qt-free."""

from __future__ import annotations

import collections
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from runtime.predictor import Predictor

from .capture import Backoff, CaptureEvent
from .pipeline import FrameResult, HeadlessPipeline
from .sources import FrameSource
from .writers import JsonlWriter, OutputError, VideoRecorder

# A camera or stream that stops delivering is reopened this way before the run ends.
LIVE_BACKOFF = Backoff(first_s=0.5, factor=2.0, max_s=8.0, max_attempts=6)


@dataclass
class DetectSummary:
    frames: int = 0
    skipped: int = 0
    detections: int = 0
    per_class: collections.Counter = field(default_factory=collections.Counter)
    seconds: float = 0.0
    stage_ms: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    output_errors: list[str] = field(default_factory=list)  # outputs that could not be finished
    interrupted: bool = False  # Ctrl-C / SIGTERM before a file source ended
    partial_outputs: list[str] = field(default_factory=list)  # where an interrupted run kept its frames

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        out = [f"{self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} frames/s), "
               f"{self.detections} detections, {self.skipped} frames skipped"]
        if self.per_class:
            out.append("per class: " + ", ".join(f"{c} {n}" for c, n in self.per_class.most_common()))
        if self.stage_ms:
            out.append("ms per frame (median): " + ", ".join(
                f"{stage} {v['p50']:.1f}" for stage, v in self.stage_ms.items()))
        return out


def run_detection(
    source: FrameSource,
    predictor: Predictor,
    out_video: str | Path | None = None,
    out_jsonl: str | Path | None = None,
    max_frames: int | None = None,
    progress: bool = True,
    on_frame: Callable | None = None,
    backoff: Backoff | None = None,
    on_event: Callable[[CaptureEvent], None] | None = None,
) -> DetectSummary:
    """Detect in every frame of ``source``; write the annotated video and JSON Lines if asked.

    Runs the app's :class:`~detector_app.pipeline.HeadlessPipeline` in its lossless mode (no
    frame replaced, also from a live source; no pacing), so ``detect`` and the GUI share the
    capture thread, its reconnection with ``backoff`` (default :data:`LIVE_BACKOFF`), the
    inference worker and the overlay. Outputs are written by a listener on the worker thread.
    ``on_event`` hears the pipeline's events (reconnecting, a frame that failed, ...).

    Output files are committed (renamed into place) at the end; an error while writing keeps
    any earlier file of the same name. Ctrl-C (KeyboardInterrupt) ends a live source normally;
    on a file source it stops the run with ``summary.interrupted`` set, the frames done so far
    kept in ``NAME.partial.EXT`` (see :func:`detector_app.writers.partial_path`) and NAME
    untouched.
    """
    from tqdm import tqdm

    summary = DetectSummary()
    total = source.frame_count
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    jsonl = JsonlWriter(out_jsonl) if out_jsonl else None
    video = VideoRecorder(out_video, source.fps) if out_video else None
    bar = tqdm(total=total, unit="frame", disable=not progress, file=sys.stderr, dynamic_ncols=True,
               desc=Path(source.name).name or source.name)
    failure: list[BaseException] = []  # a JSON Lines write that failed: the run stops
    pipeline = HeadlessPipeline(source, predictor, realtime=False, draw=video is not None, lossless=True,
                                backoff=backoff or LIVE_BACKOFF, on_event=on_event)
    start = time.perf_counter()

    def consume(result: FrameResult) -> None:
        nonlocal video
        if failure:
            return
        frame, dets = result.frame, result.detections
        summary.frames += 1
        if dets is not None:
            summary.detections += len(dets)
            summary.per_class.update(dets.names)
        try:
            if jsonl and dets is not None:
                jsonl.write(frame.index, frame.time_s, dets, frame.meta.get("file"))
        except OutputError as exc:
            failure.append(exc)
            pipeline.stop(timeout=0)
            return
        if video:
            try:
                video.write(result.image)
            except OutputError as exc:  # the video cannot be written: the JSON Lines still are
                summary.output_errors.append(str(exc))
                video.close(commit=False)
                video = None
        if on_frame:
            on_frame(frame, dets)
        bar.update(1)
        if summary.frames % 10 == 0:
            bar.set_postfix(fps=f"{summary.frames / (time.perf_counter() - start):.1f}")

    pipeline.add_listener(consume)
    ok = False
    try:
        pipeline.start(max_frames)
        pipeline.wait()
        ok = not failure
    except KeyboardInterrupt:
        # A live source has no end: Ctrl-C is how a user ends it, so its outputs are complete.
        # A file stopped early is not: its frames go to NAME.partial.EXT, NAME is left alone.
        ok = True
        summary.interrupted = not source.is_live
    finally:
        pipeline.stop()
        bar.close()
        summary.seconds = time.perf_counter() - start
        summary.skipped = source.skipped
        summary.stage_ms = predictor.stats.summary()
        for writer in (jsonl, video):
            if writer is not None:
                try:
                    kept = writer.close(commit=ok, partial=summary.interrupted)
                except OutputError as exc:
                    summary.output_errors.append(str(exc))
                    continue
                if kept is not None and summary.interrupted:
                    summary.partial_outputs.append(str(kept))
    if failure:
        raise failure[0]
    return summary

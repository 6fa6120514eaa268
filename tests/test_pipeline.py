"""The headless pipeline: capture -> one inference worker -> results, with live settings."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from detector_app.pipeline import STAGES, FrameResult, HeadlessPipeline
from detector_app.sources import VideoFileSource
from models import Detections
from runtime.predictor import Prediction, Predictor, RawOutputs, StageTimes
from tests.media import write_video
from tests.test_capture import FakeFile


class FakePredictor:
    """Stands in for Predictor: one box per frame of class ``cls``; optional delay/failure."""

    device = "CPU"

    def __init__(self, name: str = "fake.keras", delay_s: float = 0.0, fail_on: set[int] | None = None,
                 classes=("dog", "cat")):
        self.source, self.delay_s, self.fail_on = name, delay_s, fail_on or set()
        self.class_names = tuple(classes)
        self.class_filter = None
        self.conf, self.iou = 0.5, 0.45
        self.calls = 0
        self.thread_ids = set()

    def set_thresholds(self, conf=None, iou=None):
        self.conf = self.conf if conf is None else conf
        self.iou = self.iou if iou is None else iou

    def run(self, frames, keep_raw=False):
        self.thread_ids.add(threading.get_ident())
        self.calls += 1
        time.sleep(self.delay_s)
        image = frames[0]
        if int(image[0, 0, 0]) in self.fail_on:
            raise RuntimeError("bad frame")
        raw = (RawOutputs(np.zeros((1, 4), np.float32), np.zeros((1, 3), np.float32), image.shape[:2]),)
        return Prediction((self.select(raw[0]),), StageTimes(1.0, 2.0, 3.0), raw if keep_raw else ())

    def select(self, raw):
        shown = [c for c in self.class_names if self.class_filter is None or c in self.class_filter]
        ids = [self.class_names.index(c) for c in shown]
        return Detections(np.tile(np.array([[0, 0, 2, 2]], np.float32), (len(ids), 1)),
                          np.full(len(ids), self.conf, np.float32), np.array(ids, np.int32),
                          self.class_names, raw.image_size)

    def predict(self, image):
        return self.run([image]).detections[0]


def no_pipeline_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name == "inference-worker" or t.name.startswith("capture:")]


def test_every_frame_of_a_file_in_order_with_ids_and_stage_times():
    results: list[FrameResult] = []
    predictor = FakePredictor()
    stats = HeadlessPipeline(FakeFile(count=25), predictor, on_result=results.append).run(timeout=20)
    assert [r.frame.index for r in results] == list(range(25))
    assert [r.id for r in results] == list(range(25))
    assert all(set(r.stage_ms) == set(STAGES) for r in results)
    assert all(r.latency_ms >= 0 and r.frame.captured_at <= r.done_at for r in results)
    assert stats.state == "finished" and stats.processed == 25 and stats.dropped == 0
    assert stats.latency_ms["p95"] >= stats.latency_ms["p50"] > 0
    assert predictor.thread_ids and threading.get_ident() not in predictor.thread_ids
    assert no_pipeline_threads()


def test_max_frames_and_stop():
    pipeline = HeadlessPipeline(FakeFile(count=1000), FakePredictor())
    stats = pipeline.run(max_frames=7, timeout=20)
    assert stats.processed == 7 and not pipeline.running
    pipeline = HeadlessPipeline(FakeFile(count=1000), FakePredictor(delay_s=0.01)).start()
    time.sleep(0.1)
    assert pipeline.stop(5) and not pipeline.running and no_pipeline_threads()


def test_an_error_on_one_frame_is_reported_and_the_stream_goes_on():
    results, events = [], []
    pipeline = HeadlessPipeline(FakeFile(count=8), FakePredictor(fail_on={3}), on_result=results.append,
                                on_event=events.append)
    stats = pipeline.run(timeout=20)
    assert len(results) == 8 and stats.errors == 1
    assert results[3].detections is None and "frame 3" in results[3].error and "bad frame" in results[3].error
    assert results[4].detections is not None and results[4].error is None
    assert any(e.kind == "error" for e in events)


def test_settings_and_model_swap_apply_before_the_next_frame():
    first, second = FakePredictor("first.keras"), FakePredictor("second.keras", classes=("dog", "cow"))
    results: list[FrameResult] = []
    changed = threading.Event()

    def on_result(result: FrameResult) -> None:
        results.append(result)
        if result.frame.index == 3:
            pipeline.set_thresholds(conf=0.8, iou=0.3)
            pipeline.set_hidden_classes(["cat"])
        if result.frame.index == 6:
            pipeline.set_predictor(second)
            changed.set()

    pipeline = HeadlessPipeline(FakeFile(count=12), first, on_result=on_result)
    pipeline.run(timeout=20)
    assert changed.is_set()
    assert results[3].detections.scores[0] == pytest.approx(0.5)
    assert results[4].detections.scores[0] == pytest.approx(0.8)
    assert results[3].detections.names == ["dog", "cat"] and results[4].detections.names == ["dog"]
    assert all(r.model == "first.keras" for r in results[:7])
    assert all(r.model == "second.keras" for r in results[7:])
    # The new model gets the current thresholds; "cat" is unknown to it, so all is shown.
    assert second.conf == 0.8 and second.iou == 0.3 and second.class_filter is None
    assert results[7].detections.names == ["dog", "cow"]


def test_without_a_model_frames_pass_through():
    results = []
    stats = HeadlessPipeline(FakeFile(count=5), None, on_result=results.append).run(timeout=20)
    assert len(results) == 5 and all(r.detections is None and r.error is None for r in results)
    assert stats.device == "no model"


def test_realtime_drops_when_inference_is_slower_than_the_video():
    events = []
    stats = HeadlessPipeline(FakeFile(count=40, fps=200.0), FakePredictor(delay_s=0.02), realtime=True,
                             on_event=events.append).run(timeout=20)
    assert stats.dropped > 0 and stats.processed + stats.dropped == 40
    assert any(e.kind == "dropping" for e in events)


def test_a_failing_listener_does_not_stop_detection():
    events, results = [], []

    def broken(result):
        raise OSError("disk full")

    pipeline = HeadlessPipeline(FakeFile(count=6), FakePredictor(), on_result=results.append, on_event=events.append)
    pipeline.add_listener(broken)
    stats = pipeline.run(timeout=20)
    assert stats.processed == 6 and len(results) == 6
    assert any("disk full" in e.message for e in events)
    pipeline.remove_listener(broken)


def test_real_video_with_the_tiny_model(tmp_path, tiny_seed_model):
    video = write_video(tmp_path / "clip.avi", frames=16)
    predictor = Predictor(tiny_seed_model, source="tiny")
    results = []
    pipeline = HeadlessPipeline(VideoFileSource(video), predictor, on_result=results.append)
    pipeline.set_thresholds(conf=0.01)  # a random model: low threshold so boxes get drawn
    stats = pipeline.run(timeout=120)
    assert stats.processed == 16 and stats.device == predictor.device
    assert {"preprocess", "inference", "postprocess", "draw"} <= set(stats.stage_ms)
    drawn = [r for r in results if r.detections is not None and len(r.detections)]
    assert drawn, "some boxes at conf 0.01"
    assert all(r.image is not r.frame.image for r in drawn)
    assert not np.array_equal(drawn[0].image, drawn[0].frame.image)
    assert "ms per frame" in "\n".join(stats.lines())


def _wait_for(condition, timeout=10.0):
    deadline = time.perf_counter() + timeout
    while not condition():
        assert time.perf_counter() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.mark.parametrize("keep_raw", [True, False])
def test_a_paused_frame_is_reselected_without_running_the_network(keep_raw):
    results: list[FrameResult] = []
    predictor = FakePredictor()
    pipeline = HeadlessPipeline(FakeFile(count=10), predictor, on_result=results.append, hold_at_end=True,
                                keep_raw=keep_raw)
    pipeline.pause()
    pipeline.step()
    pipeline.start()
    try:
        _wait_for(lambda: len(results) == 1)
        assert results[0].detections.names == ["dog", "cat"]
        calls = predictor.calls
        pipeline.set_hidden_classes(["cat"])
        assert pipeline.reselect() is keep_raw
        if not keep_raw:  # nothing cached: the caller seeks instead
            return
        _wait_for(lambda: len(results) == 2)
        again = results[1]
        assert again.frame is results[0].frame and again.id == results[0].id
        assert again.detections.names == ["dog"]
        assert predictor.calls == calls  # the network did not run again
        assert pipeline.stats().processed == 1  # a re-selection is not a processed frame
        pipeline.set_predictor(FakePredictor("other.keras"))
        assert not pipeline.reselect()  # another model must run the network
    finally:
        assert pipeline.stop(5)


def test_idle_means_every_frame_read_so_far_was_published():
    """idle() is the condition tests and players wait on instead of a quiet period: it must
    not turn true while a frame is queued, in the worker, or being re-selected."""
    results: list[FrameResult] = []
    pipeline = HeadlessPipeline(FakeFile(count=100), FakePredictor(delay_s=0.05), on_result=results.append,
                                hold_at_end=True, keep_raw=True)
    pipeline.start()
    try:
        _wait_for(lambda: len(results) >= 2)
        pipeline.pause()
        _wait_for(lambda: pipeline.capture.stats().state == "paused" and pipeline.idle())
        assert len(results) == pipeline.capture.stats().delivered, "idle only once all are published"
        count = len(results)
        assert pipeline.reselect()
        assert not pipeline.idle(), "a re-selection asked and not yet answered is work in hand"
        _wait_for(pipeline.idle)
        assert len(results) == count + 1 and results[-1].frame is results[-2].frame
    finally:
        assert pipeline.stop(5)

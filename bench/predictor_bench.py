"""Per-stage timings of the predictor: preprocess, inference, decode + NMS, at several batch sizes."""

from __future__ import annotations

import numpy as np

from models import PostprocessConfig, decode, select_detections
from runtime.predictor import Predictor

from .stats import percentiles, time_calls


def stage_times(predictor: Predictor, frames: list[np.ndarray], batch: int, calls: int) -> dict:
    """ms per frame of each predictor stage over ``calls`` batches of ``batch`` frames."""
    predictor.warmup([batch])
    per_stage: dict[str, list[float]] = {"preprocess": [], "inference": [], "postprocess": [], "total": []}

    def one(i: int) -> None:
        start = (i * batch) % max(1, len(frames) - batch + 1)
        t = predictor.run(frames[start:start + batch]).times
        for stage in per_stage:
            per_stage[stage].append(getattr(t, stage) / batch)

    time_calls(one, calls, warmup=3)
    return {stage: percentiles(values[3:]) for stage, values in per_stage.items()}


def decode_nms_times(predictor: Predictor, frame: np.ndarray, conf: float, calls: int = 200) -> dict:
    """NumPy decode + threshold + per-class NMS of all default boxes for one frame."""
    batch = predictor.preprocess([frame]).copy()
    deltas, logits = (np.asarray(t) for t in predictor.model(batch, training=False))
    logits = logits[0].astype(np.float32)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    priors, variances = predictor.model.priors, predictor.spec.variances
    config = PostprocessConfig(conf_threshold=conf, iou_threshold=0.45)
    names, size = predictor.class_names, frame.shape[:2]

    def one(_: int) -> None:
        select_detections(decode(deltas[0], priors, variances), probs, config, names, size)

    return percentiles(time_calls(one, calls))

"""Detections for labelled samples, through the runtime the app runs.

Evaluation (``main.py eval``), the accuracy benchmark and the trainer's validation all call
:class:`runtime.predictor.Predictor`: the same preprocessing, compiled graph (network +
softmax + decoding) and selection as the app, with the VOC evaluation thresholds
(:data:`runtime.batch.EVAL_POSTPROCESS`: confidence > 0.01, 200 candidates per class, NMS at
0.45, 200 per image) as parameters, so that the precision-recall curve reaches low scores.
The mAP printed is the mAP of the path users run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from models.detections import Detections
from models.ssd import SSDModel
from runtime.batch import EVAL_POSTPROCESS, detect_pictures
from runtime.predictor import Predictor

from .loader import Batch, load_sample
from .scan import Sample

__all__ = ["EVAL_POSTPROCESS", "detect_samples", "eval_predictor", "load_sample", "validation_detections"]


def eval_predictor(model: SSDModel, engine: str = "auto", vote_iou: float | None = EVAL_POSTPROCESS.vote_iou) -> Predictor:
    """A predictor with the evaluation thresholds. ``engine``: as the app chooses (``auto``),
    or a named one (``keras`` for a model whose weights are still changing: training).
    ``vote_iou``: box voting threshold, None for none (Caffe's rule)."""
    return Predictor(model, config=replace(EVAL_POSTPROCESS, vote_iou=vote_iou), engine=engine, source=model.name)


def detect_samples(model: SSDModel | Predictor, samples: Sequence[Sample], batch_size: int = 16, workers: int = 4,
                   progress: str | None = None, engine: str = "auto") -> list[Detections]:
    """Detections for every sample, in order, in the pixels of its original picture."""
    predictor = model if isinstance(model, Predictor) else eval_predictor(model, engine)
    detections, _ = detect_pictures(predictor, samples, load_sample, batch_size, workers, progress)
    return detections


def validation_detections(predictor: Predictor, batch: Batch, samples: Sequence[Sample]) -> list[Detections]:
    """Detections of the real rows of a validation batch (already resized by the loader, the
    same resize the predictor does), boxes scaled to each sample's original size."""
    rows = range(batch.count)
    sizes = [samples[int(batch.indices[r])].image_hw for r in rows]
    return list(predictor.run([batch.images[r] for r in rows], sizes=sizes).detections)

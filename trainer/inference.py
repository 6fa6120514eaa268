"""Batched inference for validation and evaluation: images -> raw outputs -> Detections.

The detector runs through Keras' compiled predict function once per batch
(``predict_on_batch``), never once per image. Batches have a fixed size (the last one is
padded), so the function is traced once. Post-processing is the app's own:
:func:`models.box_coder.decode` and :func:`models.postprocess.select_detections`, with the
VOC evaluation settings (confidence > 0.01, 200 candidates per class, NMS at 0.45, 200 per
image) so that the precision-recall curve reaches low scores.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from models.box_coder import decode
from models.detections import Detections
from models.postprocess import PostprocessConfig, select_detections

from .loader import Batch, BatchLoader
from .scan import Sample

EVAL_POSTPROCESS = PostprocessConfig(conf_threshold=0.01, iou_threshold=0.45, top_k=200, max_detections=200, clip=True)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float32, numerically stable."""
    z = logits.astype(np.float32) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def predict_batches(detector, loader: BatchLoader, progress: str | None = None) -> Iterator[tuple[Batch, np.ndarray, np.ndarray]]:
    """(batch, box_deltas (B, N, 4), class_logits (B, N, C+1)) for every batch of a
    validation loader (epoch 0, in order, last batch padded)."""
    batches = loader.epoch(0)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, total=loader.steps_per_epoch, desc=progress, unit="batch", leave=False)
    for batch in batches:
        deltas, logits = detector.predict_on_batch(batch.images)
        yield batch, np.asarray(deltas), np.asarray(logits)


def to_detections(
    deltas: np.ndarray,
    logits: np.ndarray,
    priors: np.ndarray,
    spec,
    image_hw: tuple[int, int],
    config: PostprocessConfig = EVAL_POSTPROCESS,
) -> Detections:
    """Detections of one image from its raw outputs (N, 4) and (N, C+1), in the pixels of the
    original image of (height, width) ``image_hw``."""
    corners = decode(deltas, priors, spec.variances)
    return select_detections(corners, softmax(logits), config, spec.class_names, image_hw)


def detect_samples(detector, samples: Sequence[Sample], batch_size: int = 16, workers: int = 4,
                   progress: str | None = None, config: PostprocessConfig = EVAL_POSTPROCESS) -> list[Detections]:
    """Detections for every sample, in order."""
    spec = detector.spec
    loader = BatchLoader(samples, spec.class_names, spec, batch_size, augment_config=None, workers=workers)
    priors = detector.priors
    out: list[Detections] = []
    with loader:
        for batch, deltas, logits in predict_batches(detector, loader, progress):
            for row in range(batch.count):
                sample = samples[int(batch.indices[row])]
                out.append(to_detections(deltas[row], logits[row], priors, spec, sample.image_hw, config))
    return out

"""Many pictures through one predictor: evaluation, validation and accuracy benchmarks.

The pictures go through the same :class:`runtime.predictor.Predictor` the app runs
(preprocessing, engine, selection); only the thresholds differ, as parameters. Decoding
(reading files) runs on a thread pool a bounded distance ahead of the predictor, so a folder
of thousands of photos never sits in memory at once.
"""

from __future__ import annotations

import collections
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Generator, Sequence, TypeVar

import numpy as np

from models.detections import Detections
from models.postprocess import PostprocessConfig

from .predictor import Predictor

T = TypeVar("T")
R = TypeVar("R")

# VOC evaluation settings: scores down to 0.01 and up to 200 detections per class and image,
# so that the precision-recall curve reaches low scores (as the SSD paper's evaluation).
EVAL_POSTPROCESS = PostprocessConfig(conf_threshold=0.01, iou_threshold=0.45, top_k=200, max_detections=200, clip=True)


def ordered_map(fn: Callable[[T], R], items: Sequence[T], pool: ThreadPoolExecutor,
                ahead: int) -> Generator[R, None, None]:
    """``fn(item)`` for each item, in order, with at most ``ahead`` calls submitted ahead."""
    pending: collections.deque[Future] = collections.deque()
    it = iter(items)
    try:
        for item in it:
            pending.append(pool.submit(fn, item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def detect_pictures(
    predictor: Predictor,
    items: Sequence[T],
    load: Callable[[T], np.ndarray],
    batch_size: int = 16,
    workers: int = 2,
    progress: str | None = None,
) -> tuple[list[Detections], list[float]]:
    """Detections for every item, in order, and the predictor's milliseconds per picture of
    each batch (preprocess + inference + selection, as the app measures them).

    ``load(item)`` returns the picture (BGR uint8, any size; errors propagate naming the
    file). Boxes are in that picture's pixels.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    detections: list[Detections] = []
    per_picture_ms: list[float] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc=progress, unit="image", leave=False)
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="decode") as pool:
        pictures = ordered_map(load, items, pool, ahead=2 * batch_size)
        try:
            while True:
                chunk = [p for _, p in zip(range(batch_size), pictures)]
                if not chunk:
                    break
                prediction = predictor.run(chunk)
                detections.extend(prediction.detections)
                per_picture_ms.append(prediction.times.total / len(chunk))
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            pictures.close()
            if bar is not None:
                bar.close()
    return detections, per_picture_ms

"""Batches for training and validation, decoded and augmented in parallel threads.

Design (no ``tf.data``, so the same loader feeds the TensorFlow and the JAX backend):

- a thread pool decodes, augments, resizes and encodes targets, one task per image. OpenCV
  and most NumPy kernels release the GIL, so threads run in parallel with each other and with
  the training step (which releases the GIL while the backend computes);
- at most ``prefetch`` batches of images are in flight: memory stays bounded however large
  the folder;
- results are consumed in submission order and every image's randomness comes from its own
  generator seeded with (run seed, epoch, image index): a batch's content never depends on
  thread timing, so a run is reproducible and can resume mid-epoch at any step;
- every batch has the same shape (the training loader drops the last partial batch, as the
  permutation changes every epoch; the validation loader pads it and says how many rows are
  real), so compiled steps are traced once.
"""

from __future__ import annotations

import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import islice
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import cv2
import numpy as np

from .augment import AugmentConfig, augment, photometric, resize
from .errors import DataError
from .image_io import UnreadableImage, read_image
from .mosaic import mosaic
from .sampling import epoch_length, epoch_order, occurrences
from .scan import Sample
from .targets import TargetEncoder

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], pool: ThreadPoolExecutor, lookahead: int) -> Iterator[R]:
    """``map(fn, items)`` on ``pool`` with at most ``lookahead`` tasks in flight, results in
    input order. Closing the generator early cancels the tasks not yet started."""
    it = iter(items)
    pending: deque[Future] = deque(pool.submit(fn, item) for item in islice(it, max(1, lookahead)))
    try:
        while pending:
            result = pending.popleft().result()
            for item in islice(it, 1):
                pending.append(pool.submit(fn, item))
            yield result
    finally:
        for future in pending:
            future.cancel()


@dataclass(frozen=True)
class Batch:
    """One batch. ``images`` uint8 (B, H, W, 3) BGR; ``box_targets`` float32 (B, N, 4);
    ``class_targets`` int32 (B, N) (0 background, -1 ignored); ``class_mask`` float32 (B, C+1) (1 = the image's source
    labels that class; column 0, background, is always 1); ``indices`` (B,) sample indices
    (-1 on padding rows); ``count``: the number of real rows (the first ``count``)."""

    images: np.ndarray
    box_targets: np.ndarray
    class_targets: np.ndarray
    class_mask: np.ndarray
    indices: np.ndarray
    count: int

    @property
    def targets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``y`` of :class:`trainer.training_model.SSDTrainer`."""
        return self.box_targets, self.class_targets, self.class_mask


def source_masks(samples: Sequence[Sample], class_names: Sequence[str], enabled: bool,
                 positive_only: dict[str, set[str]] | None = None) -> dict[str, np.ndarray]:
    """Per source folder, the classes it labels as a float32 (C+1,) mask (background first).

    A folder labels the classes that occur in it, except those ``positive_only`` names for it
    ({source: classes}: boxed objects are learned, since the loss keeps a positive's own class,
    but nowhere else is the class taught, as for unlabelled classes). Disabled: every class
    everywhere.
    """
    found: dict[str, set[str]] = {}
    for s in samples:
        found.setdefault(s.source, set()).update(s.names)
    for source, names in (positive_only or {}).items():
        found[source] = found.get(source, set()) - names
    masks = {}
    for source, names in found.items():
        row = [1.0] + [1.0 if (not enabled or n in names) else 0.0 for n in class_names]
        masks[source] = np.asarray(row, np.float32)
    return masks


def load_sample(sample: Sample) -> np.ndarray:
    """The sample's picture as decoded for training and evaluation (BGR uint8, EXIF
    orientation where the scan found the labels need it). Raises DataError naming the file
    when it cannot be read any more (it was readable when the folder was scanned)."""
    try:
        return read_image(sample.image_path, sample.exif_orientation)
    except UnreadableImage as exc:
        raise DataError(sample.image_path, f"could not be read ({exc}); did the file change since the folder "
                                           "was scanned?") from exc


class BatchLoader:
    """Deterministic parallel batches over ``samples``.

    ``augment_config``: None for validation (resize only, in order, padded last batch),
    else the SSD augmentation with a per-epoch shuffle and the last partial batch dropped.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        class_names: Sequence[str],
        spec,
        batch_size: int,
        seed: int = 0,
        augment_config: AugmentConfig | None = AugmentConfig(),
        workers: int = 4,
        prefetch: int = 2,
        masks: dict[str, np.ndarray] | None = None,
        repeats: np.ndarray | None = None,
        match_top_k: int = 0,
        ignore_difficult: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.samples = list(samples)
        self.class_index = {n: i + 1 for i, n in enumerate(class_names)}
        self.num_classes = len(class_names) + 1
        self.input_size = tuple(spec.input_size)
        self.encoder = TargetEncoder(spec, top_k=match_top_k)
        self.ignore_difficult = bool(ignore_difficult)
        self.batch_size = batch_size
        self.seed = int(seed)
        self.augment_config = augment_config
        self.workers = max(1, workers)
        self.prefetch = max(1, prefetch)
        self.masks = masks or {}
        # mosaic partners, by folder: built on the first mosaic, so runs without it pay nothing
        self._by_source: dict[str, np.ndarray] | None = None
        if repeats is not None and len(repeats) != len(self.samples):
            raise ValueError(f"repeats must have one factor per sample ({len(self.samples)}), got {len(repeats)}")
        # per-sample epoch repeat factors (trainer.sampling); None = each image once
        self.repeats = None if repeats is None or not np.any(repeats != 1.0) else np.asarray(repeats, np.float64)
        self._pool: ThreadPoolExecutor | None = None
        if self.workers > 1:
            # parallelism comes from our threads; OpenCV's own threads would oversubscribe
            cv2.setNumThreads(1)

    @property
    def training(self) -> bool:
        return self.augment_config is not None

    @property
    def steps_per_epoch(self) -> int:
        if not self.training:
            return -(-len(self.samples) // self.batch_size)
        n = len(self.samples) if self.repeats is None else epoch_length(self.repeats)
        return n // self.batch_size

    def order(self, epoch: int) -> np.ndarray:
        """Sample indices of an epoch: a permutation seeded by (seed, epoch) when training,
        with oversampled images repeated (:func:`trainer.sampling.epoch_order`)."""
        n = len(self.samples)
        if not self.training:
            return np.arange(n)
        rng = np.random.default_rng([self.seed, epoch, 0x5EED])
        return rng.permutation(n) if self.repeats is None else epoch_order(self.repeats, rng)

    def _pool_(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="loader")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "BatchLoader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def labels_of(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        """Pixel boxes and 1-based labels of the sample's objects of known classes; with
        ``ignore_difficult`` a difficult object's label is negated (the encoder ignores it;
        augmentation carries labels along with their boxes whatever their sign)."""
        keep = [i for i, n in enumerate(sample.names) if n in self.class_index]
        labels = np.asarray([self.class_index[sample.names[i]] for i in keep], np.int32)
        if self.ignore_difficult and len(keep):
            labels = np.where(np.asarray(sample.difficult, bool)[keep], -labels, labels).astype(np.int32)
        return sample.boxes[keep].reshape(-1, 4), labels

    def load(self, epoch: int, index: int, copy: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(image, box_targets, class_targets, class_mask) of sample ``index`` in ``epoch``;
        ``copy``: which appearance of an oversampled image in the epoch (each is augmented
        differently)."""
        sample = self.samples[index]
        image = load_sample(sample)
        boxes, labels = self.labels_of(sample)
        if self.training:
            # one generator per (run, epoch, image): independent of thread scheduling
            key = [self.seed, epoch, index, zlib.crc32(sample.key.encode())] + ([copy] if copy else [])
            rng = np.random.default_rng(key)
            cfg = self.augment_config
            # drawn only when mosaic is on, so runs without it augment exactly as before
            if cfg.mosaic_prob > 0 and rng.random() < cfg.mosaic_prob:
                image, boxes, labels = self._mosaic(sample, image, boxes, labels, rng)
                cfg = replace(cfg, photometric=False, expand_prob=0.0)
            image, boxes, labels = augment(image, boxes, labels, rng, cfg, self.input_size)
        else:
            image, boxes = resize(image, boxes, self.input_size)
        box_t, cls_t = self.encoder(boxes, labels)
        mask = self.masks.get(sample.source)
        if mask is None:
            mask = np.ones((self.num_classes,), np.float32)
        return image, box_t, cls_t, mask

    def _folder_pool(self, source: str) -> np.ndarray:
        """Indices of the samples of folder ``source``: mosaic partners come from the image's
        own folder, so the folder's class mask holds for the whole canvas. Built once, on the
        first call (worker threads may race to build it; each builds the same index)."""
        if self._by_source is None:
            by_source: dict[str, list[int]] = {}
            for i, s in enumerate(self.samples):
                by_source.setdefault(s.source, []).append(i)
            self._by_source = {k: np.asarray(v, np.int64) for k, v in by_source.items()}
        return self._by_source[source]

    def _mosaic(self, sample: Sample, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sample and three pictures of its folder drawn by ``rng``, in a mosaic (each
        picture photometrically changed on its own when the config asks for it)."""
        cfg = self.augment_config
        assert cfg is not None
        pool = self._folder_pool(sample.source)
        partners = pool[rng.integers(len(pool), size=3)]
        tiles = [(image, boxes, labels)]
        for j in partners:
            other = self.samples[int(j)]
            tiles.append((load_sample(other), *self.labels_of(other)))
        if cfg.photometric:
            tiles = [(photometric(im, rng, cfg), b, lab) for im, b, lab in tiles]
        return mosaic(tiles, rng, cfg.fill)

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        """The batches of ``epoch``, from step ``start_step`` on (for resuming mid-epoch)."""
        order = self.order(epoch)
        b = self.batch_size
        stop = self.steps_per_epoch * b if self.training else len(order)
        copies = occurrences(order) if self.repeats is not None else np.zeros(len(order), np.int64)
        indices, copies = order[start_step * b:stop], copies[start_step * b:stop]
        results = ordered_map(lambda ic: self.load(epoch, int(ic[0]), int(ic[1])), zip(indices, copies),
                              self._pool_(), self.prefetch * b)
        try:
            for start in range(0, len(indices), b):
                chunk = indices[start:start + b]
                rows = list(islice(results, len(chunk)))
                yield self._stack(rows, chunk)
        finally:
            results.close()

    def _stack(self, rows: list, chunk: np.ndarray) -> Batch:
        count = len(rows)
        pad = self.batch_size - count
        images, box_t, cls_t, masks = (np.stack([r[k] for r in rows]) for k in range(4))
        indices = chunk.astype(np.int64)
        if pad:
            images = np.concatenate([images, np.zeros((pad,) + images.shape[1:], images.dtype)])
            box_t = np.concatenate([box_t, np.zeros((pad,) + box_t.shape[1:], box_t.dtype)])
            cls_t = np.concatenate([cls_t, np.zeros((pad,) + cls_t.shape[1:], cls_t.dtype)])
            masks = np.concatenate([masks, np.ones((pad,) + masks.shape[1:], masks.dtype)])
            indices = np.concatenate([indices, -np.ones((pad,), np.int64)])
        return Batch(images, box_t, cls_t, masks, indices, count)

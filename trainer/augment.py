"""SSD data augmentation (Liu et al. 2016, Sec. 2.2 "Data augmentation" and Sec. 3.6), NumPy/OpenCV.

In order: photometric distortion, zoom out ("expand", Sec. 3.6, for small objects), a random
crop whose overlap with some object is at least a sampled minimum IoU, a horizontal flip,
and the resize to the network input. Every random draw comes from the ``numpy.random.Generator``
passed in, so a sample's augmentation depends only on its seed (the loader derives one per
(run seed, epoch, image)), never on thread timing.

Boxes are float32 (G, 4) pixel x1, y1, x2, y2 until :func:`resize`, which returns them
normalised to [0, 1]. Every geometric step moves the boxes with the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.box_coder import pairwise_iou

# SSD's patch sampler: keep the whole image, or a patch with min IoU 0.1 .. 0.9 with some
# object, or any patch (Liu et al. 2016, Sec. 2.2; Caffe batch_sampler). None = whole image.
CROP_MIN_IOUS: tuple[float | None, ...] = (None, 0.1, 0.3, 0.5, 0.7, 0.9, 0.0)
CROP_TRIALS = 50
CROP_SCALE = (0.3, 1.0)
CROP_ASPECT = (0.5, 2.0)


@dataclass(frozen=True)
class AugmentConfig:
    """Switches and ranges of :func:`augment` (defaults: the SSD paper / Caffe SSD).

    ``fill``: BGR value of the canvas around a zoomed-out image (the input mean, so it looks
    like "nothing" to the network). ``min_side_px``: boxes smaller than this in the network
    input after all steps are dropped (they cannot be learned). ``mosaic_prob``: the share of
    training images the loader assembles from four pictures of their folder
    (:mod:`trainer.mosaic`) before the other steps; those skip the zoom out (the mosaic
    already shrinks its objects) and get the photometric change per picture.
    """

    photometric: bool = True
    expand_prob: float = 0.5
    max_expand: float = 4.0
    crop: bool = True
    flip_prob: float = 0.5
    fill: tuple[float, float, float] = (127.5, 127.5, 127.5)
    brightness_delta: float = 32.0
    contrast_range: tuple[float, float] = (0.5, 1.5)
    saturation_range: tuple[float, float] = (0.5, 1.5)
    hue_delta: float = 18.0
    min_side_px: float = 1.0
    mosaic_prob: float = 0.0


def photometric(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Random brightness, contrast, saturation and hue, each with probability 1/2, contrast
    before or after the colour changes (as Caffe SSD's DistortImage). (H, W, 3) BGR uint8 in
    and out."""
    x = image.astype(np.float32)
    if rng.random() < 0.5:
        x += rng.uniform(-cfg.brightness_delta, cfg.brightness_delta)
    contrast_first = rng.random() < 0.5
    contrast = rng.uniform(*cfg.contrast_range) if rng.random() < 0.5 else None
    if contrast_first and contrast is not None:
        x *= contrast
    saturation = rng.uniform(*cfg.saturation_range) if rng.random() < 0.5 else None
    hue = rng.uniform(-cfg.hue_delta, cfg.hue_delta) if rng.random() < 0.5 else None
    if saturation is not None or hue is not None:
        hsv = cv2.cvtColor(np.clip(x, 0, 255) / 255.0, cv2.COLOR_BGR2HSV)  # H in degrees, S, V in [0, 1]
        if saturation is not None:
            hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 1)
        if hue is not None:
            hsv[..., 0] = np.mod(hsv[..., 0] + hue, 360.0)
        x = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR) * 255.0
    if not contrast_first and contrast is not None:
        x *= contrast
    return np.clip(x, 0, 255).astype(np.uint8)


def blank_canvas(height: int, width: int, fill: tuple[float, float, float]) -> np.ndarray:
    """A (height, width, 3) uint8 canvas of the BGR colour ``fill`` (rounded): the background
    of a zoomed-out image (:func:`expand`) and of a mosaic (:mod:`trainer.mosaic`)."""
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[...] = np.asarray(fill, np.float32).round().astype(np.uint8)
    return canvas


def expand(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig):
    """Zoom out: place the image at a random spot of a canvas up to ``max_expand`` times
    larger, filled with ``cfg.fill``. Objects become smaller, which is what the small
    default boxes need ("zoom out" of Sec. 3.6)."""
    h, w = image.shape[:2]
    ratio = rng.uniform(1.0, cfg.max_expand)
    eh, ew = int(h * ratio), int(w * ratio)
    top, left = int(rng.uniform(0, eh - h)), int(rng.uniform(0, ew - w))
    canvas = blank_canvas(eh, ew, cfg.fill)
    canvas[top:top + h, left:left + w] = image
    return canvas, boxes + np.array([left, top, left, top], np.float32)


def _sample_patch(h: int, w: int, rng: np.random.Generator) -> np.ndarray | None:
    """A random patch (x1, y1, x2, y2) of 30-100 % of each side with aspect in [1/2, 2]."""
    pw, ph = rng.uniform(*CROP_SCALE) * w, rng.uniform(*CROP_SCALE) * h
    if not CROP_ASPECT[0] <= ph / pw <= CROP_ASPECT[1]:
        return None
    left, top = rng.uniform(0, w - pw), rng.uniform(0, h - ph)
    return np.array([left, top, left + pw, top + ph], np.float32)


def random_crop(image, boxes, labels, rng: np.random.Generator, cfg: AugmentConfig):
    """SSD's patch sampling. A minimum IoU is drawn from :data:`CROP_MIN_IOUS`; up to
    :data:`CROP_TRIALS` patches are tried until one overlaps some object with at least that
    IoU and contains the centre of at least one object. Objects whose centre is inside the
    patch are kept, clipped to it (Caffe's "center" emit constraint). Images without objects
    take any patch."""
    h, w = image.shape[:2]
    min_iou = CROP_MIN_IOUS[int(rng.integers(len(CROP_MIN_IOUS)))]
    if min_iou is None:
        return image, boxes, labels
    for _ in range(CROP_TRIALS):
        patch = _sample_patch(h, w, rng)
        if patch is None:
            continue
        if len(boxes):
            if pairwise_iou(patch[None], boxes).max() < min_iou:
                continue
            centres = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
            inside = np.all((centres > patch[0:2]) & (centres < patch[2:4]), axis=1)
            if not inside.any():
                continue
        else:
            inside = np.zeros((0,), bool)
        x1, y1 = int(patch[0]), int(patch[1])
        x2, y2 = max(int(np.ceil(patch[2])), x1 + 1), max(int(np.ceil(patch[3])), y1 + 1)
        kept = boxes[inside].copy()
        kept[:, 0:2] = np.maximum(kept[:, 0:2], (x1, y1))
        kept[:, 2:4] = np.minimum(kept[:, 2:4], (x2, y2))
        kept -= np.array([x1, y1, x1, y1], np.float32)
        return image[y1:y2, x1:x2], kept, labels[inside]
    return image, boxes, labels


def hflip(image: np.ndarray, boxes: np.ndarray):
    """Mirror left-right; x1' = W - x2, x2' = W - x1."""
    w = image.shape[1]
    flipped = boxes.copy()
    flipped[:, 0], flipped[:, 2] = w - boxes[:, 2], w - boxes[:, 0]
    return image[:, ::-1], flipped


def resize(image: np.ndarray, boxes: np.ndarray, input_size: tuple[int, int]):
    """Resize to the network input (height, width); boxes become normalised corners in [0, 1].
    Returns a C-contiguous (h, w, 3) uint8 image and float32 (G, 4) boxes."""
    h, w = image.shape[:2]
    out = cv2.resize(np.ascontiguousarray(image), (input_size[1], input_size[0]), interpolation=cv2.INTER_LINEAR)
    norm = boxes / np.array([w, h, w, h], np.float32)
    return out, np.clip(norm, 0.0, 1.0).astype(np.float32)


def augment(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    input_size: tuple[int, int],
):
    """The full SSD training transform of one sample.

    image: (H, W, 3) BGR uint8; boxes: float32 (G, 4) pixel x1, y1, x2, y2; labels: (G,) int.
    Returns the (h, w, 3) uint8 network input, float32 (G', 4) normalised corners and
    (G',) labels of the objects that survive the crop and are at least ``min_side_px`` in the
    network input.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels)
    if cfg.photometric:
        image = photometric(image, rng, cfg)
    if rng.random() < cfg.expand_prob:
        image, boxes = expand(image, boxes, rng, cfg)
    if cfg.crop:
        image, boxes, labels = random_crop(image, boxes, labels, rng, cfg)
    if rng.random() < cfg.flip_prob:
        image, boxes = hflip(image, boxes)
    image, boxes = resize(image, boxes, input_size)
    side = (boxes[:, 2:4] - boxes[:, 0:2]) * np.array([input_size[1], input_size[0]], np.float32)
    keep = np.all(side >= cfg.min_side_px, axis=1)
    return image, boxes[keep], labels[keep]

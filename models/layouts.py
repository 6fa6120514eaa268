"""Preset model specs. Each layout is data (a :class:`ModelSpec`), never a separate code path.

- :func:`seed_spec`: the seed MobileNet-SSD, six prediction layers at 300x300 on feature maps of
  38, 19, 10, 5, 3 and 1 cells, 8,752 default boxes, parametrised as in ssd_keras.
- :func:`caffe_spec`: the Caffe MobileNet-SSD of chuanqi305 (VOC, 1,917 default boxes on maps
  of 19, 10, 5, 3, 2 and 1 cells), as its deploy prototxt describes it.
- :func:`lite0_spec`: SSDLite on EfficientNet-Lite0, whose backbone starts from ImageNet weights.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from .spec import BackboneSpec, ExtraSpec, HeadSpec, ModelSpec, PreprocessSpec

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

# ssd_keras "SSD300" parametrisation (Liu et al. 2016, Sec. 2.2 "Choosing scales and aspect
# ratios"): scale s_k of layer k, plus one extra scale so the last layer has an s_{k+1} for its
# second ratio-1 box.
SEED_SCALES = (0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05)
SEED_STEPS = (8, 16, 32, 64, 100, 300)
SEED_SOURCES = ("block5", "block11", "block13", "extra1", "extra2", "extra3")
SEED_BOXES_PER_CELL = (4, 6, 6, 6, 6, 6)
# Aspect ratios per cell (flip applied; 1.0 also gets the second square box): 4 boxes on the
# first, high-resolution layer (as the SSD paper does on conv4_3), 6 on the others.
FIRST_LAYER_RATIOS = (1.0, 2.0, 0.5)
RATIOS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
# Widths of the first three extra stages of the widely used MobileNet-SSD (1x1 256 -> 512,
# 1x1 128 -> 256, 1x1 128 -> 256), made depthwise-separable; the last pads "valid" so that a
# 3x3 map gives 1x1. Shared by the seed and lite0 layouts.
SEPARABLE_EXTRAS = (
    ExtraSpec(bottleneck=256, filters=512, kind="separable", stride=2, padding="same"),
    ExtraSpec(bottleneck=128, filters=256, kind="separable", stride=2, padding="same"),
    ExtraSpec(bottleneck=128, filters=256, kind="separable", stride=2, padding="valid"),
)


def heads_from_scales(
    sources: Sequence[str],
    scales: Sequence[float],
    aspect_ratios: Sequence[Sequence[float]],
    steps: Sequence[float | None],
    offset: float = 0.5,
) -> tuple[HeadSpec, ...]:
    """Heads the ssd_keras way: layer k uses min size s_k and max size s_{k+1}.

    ``scales`` has one more entry than ``sources``. Ratio lists are given explicitly (flip
    already applied), with 1.0 where the two square boxes go.
    """
    if len(scales) != len(sources) + 1:
        raise ValueError(
            f"need one scale per prediction layer plus one (for the last layer's second square "
            f"box): {len(sources)} layers, so {len(sources) + 1} scales, got {len(scales)}"
        )
    if not (len(aspect_ratios) == len(steps) == len(sources)):
        raise ValueError(
            f"aspect_ratios ({len(aspect_ratios)}) and steps ({len(steps)}) need one entry per "
            f"prediction layer ({len(sources)})"
        )
    return tuple(
        HeadSpec(
            source=src,
            min_size=float(scales[k]),
            max_size=float(scales[k + 1]),
            aspect_ratios=tuple(float(r) for r in aspect_ratios[k]),
            step=None if (step := steps[k]) is None else float(step),
            offset=offset,
        )
        for k, src in enumerate(sources)
    )


def seed_spec(class_names: Sequence[str], alpha: float = 1.0) -> ModelSpec:
    """The seed MobileNet-SSD300 layout (8,752 default boxes).

    First layer: ratios [1, 2, 1/2] (4 boxes with the second square box); others
    [1, 2, 1/2, 3, 1/3] (6 boxes). The last extra stage uses "valid" padding so that its 3x3
    input gives a 1x1 map; every other stride-2 stage pads the Keras way.
    """
    heads = heads_from_scales(SEED_SOURCES, SEED_SCALES, [FIRST_LAYER_RATIOS] + [RATIOS] * 5, SEED_STEPS)
    return ModelSpec(
        class_names=tuple(class_names),
        input_size=(300, 300),
        preprocess=PreprocessSpec(channel_order="RGB", mean=(127.5,) * 3, scale=(1 / 127.5,) * 3),
        backbone=BackboneSpec(alpha=alpha, activation="relu6", use_bias=False, batch_norm=True,
                              stride2_padding="same"),
        extras=SEPARABLE_EXTRAS,
        heads=heads,
        head_kernel_size=3,
        variances=(0.1, 0.1, 0.2, 0.2),
        layout="seed",
    ).validate()


def caffe_prior_head(
    source: str,
    min_size_px: float,
    max_size_px: float | None,
    ratios: Sequence[float],
    flip: bool,
    image_size: int = 300,
    step: float | None = None,
    offset: float = 0.5,
) -> HeadSpec:
    """A head from Caffe ``PriorBox`` parameters (sizes in pixels, ratios before flipping).

    Caffe orders the ratios as [1, r1, 1/r1, r2, 1/r2, ...] (with flip), skipping any ratio
    already present; the max-size square box follows the min-size one.
    """
    expanded: list[float] = [1.0]
    for r in ratios:
        for value in ((r, 1.0 / r) if flip else (r,)):
            if all(abs(value - e) > 1e-6 for e in expanded):
                expanded.append(float(value))
    return HeadSpec(
        source=source,
        min_size=min_size_px / image_size,
        max_size=None if max_size_px is None else max_size_px / image_size,
        aspect_ratios=tuple(expanded),
        step=step,
        offset=offset,
    )


def caffe_spec(class_names: Sequence[str] = VOC_CLASSES) -> ModelSpec:
    """The Caffe MobileNet-SSD layout of ``MobileNetSSD_deploy.prototxt`` (1,917 boxes).

    Batch norm is folded into biased convolutions, activations are plain ReLU, stride-2
    convolutions pad one pixel on every side, the four extra stages are 1x1 then plain 3x3
    stride-2 convolutions, heads are 1x1 convolutions, and the input is
    ``(pixel - 127.5) * 0.007843`` in BGR order.
    """
    heads = (
        caffe_prior_head("block11", 60, None, [2.0], flip=True),
        caffe_prior_head("block13", 105, 150, [2.0, 3.0], flip=True),
        caffe_prior_head("extra1", 150, 195, [2.0, 3.0], flip=True),
        caffe_prior_head("extra2", 195, 240, [2.0, 3.0], flip=True),
        caffe_prior_head("extra3", 240, 285, [2.0, 3.0], flip=True),
        caffe_prior_head("extra4", 285, 300, [2.0, 3.0], flip=True),
    )
    return ModelSpec(
        class_names=tuple(class_names),
        input_size=(300, 300),
        preprocess=PreprocessSpec(channel_order="BGR", mean=(127.5,) * 3, scale=(0.007843,) * 3),
        backbone=BackboneSpec(alpha=1.0, activation="relu", use_bias=True, batch_norm=False,
                              stride2_padding="symmetric"),
        extras=(
            ExtraSpec(bottleneck=256, filters=512, kind="conv", stride=2, padding="symmetric"),
            ExtraSpec(bottleneck=128, filters=256, kind="conv", stride=2, padding="symmetric"),
            ExtraSpec(bottleneck=128, filters=256, kind="conv", stride=2, padding="symmetric"),
            ExtraSpec(bottleneck=64, filters=128, kind="conv", stride=2, padding="symmetric"),
        ),
        heads=heads,
        head_kernel_size=1,
        variances=(0.1, 0.1, 0.2, 0.2),
        layout="caffe-mobilenet-ssd",
    ).validate()



# EfficientNet-Lite0 SSDLite. Taps: the stride-8, 16 and 32 maps (block5: 38x38x40, block11:
# 19x19x112, top: 10x10x1280 at 300x300), then three extra stages down to 5, 3 and 1 cells.
# "top" (the trunk's last 1x1 convolution) rather than block16 feeds the coarse heads and the
# extras because it carries the 1280 ImageNet-trained channels that name what an object is;
# block16 has 320.
# Scales: the first layer starts at 0.06 (18 px at 300) instead of the seed's 0.1 (30 px).
# Measured on the five bundled sets (20,063 boxes, with trainer.box_stats): boxes whose
# best default box has IoU < 0.5 (they train through one default box only and tend to be
# missed) fall from 4,604 with the seed scales to 2,568 (hard hats: 3,624 -> 1,748 of 8,790).
# Starting at 0.05 gains 90 more boxes but spreads the mid sizes thinner; 0.08 leaves 3,320.
LITE0_SOURCES = ("block5", "block11", "top", "extra1", "extra2", "extra3")
LITE0_SCALES = (0.06, 0.14, 0.3, 0.46, 0.62, 0.8, 1.0)
LITE0_STEPS = (8, 16, 32, 64, 100, 300)


# The heads that read a top-down path (models.ssd.top_down_fuse): the two finest, where the
# small objects are found from early, shallow maps (EfficientNet-Lite0's block5 has 40
# channels five blocks in). The coarser heads read maps that already know what they see.
# Measured on the bundled model's data (docs/training_runs.md, stage 14): one epoch with the
# backbone frozen gave 69.28 mAP with the path and 68.60 without it (head +2.0, car +1.0).
TOP_DOWN_HEADS = 2


def with_top_down(spec: ModelSpec, count: int = TOP_DOWN_HEADS, depth: int = 1) -> ModelSpec:
    """``spec`` with its ``count`` finest heads each fusing the maps of the next ``depth``
    heads, as far as each of those maps is half the size of the one before (block5 <- block11
    + top at depth 2). A head's existing path is extended when it is the start of that chain
    and kept as it is otherwise (a hand-made choice).

    Raises :class:`SpecError` when no head can take the path (no next map of half the size).
    """
    from .geometry import feature_map_sizes, half_size
    from .spec import SpecError

    sizes = feature_map_sizes(spec)
    heads = list(spec.heads)
    for i in range(min(count, len(heads) - 1)):
        chain: list[str] = []
        for later in heads[i + 1: i + 1 + depth]:
            previous = heads[i].source if not chain else chain[-1]
            if sizes[later.source] != half_size(sizes[previous]):
                break
            chain.append(later.source)
        have = heads[i].fuse_maps
        if chain and tuple(chain[: len(have)]) == have:
            heads[i] = dataclasses.replace(heads[i], fuse=tuple(chain))
    if all(h.fuse is None for h in heads):
        raise SpecError("no head can take a top-down path: no head's next map is half its size")
    return dataclasses.replace(spec, heads=tuple(heads)).validate()


def lite0_spec(class_names: Sequence[str]) -> ModelSpec:
    """SSDLite on EfficientNet-Lite0 at 300x300 (6 prediction layers, 8,752 default boxes),
    with a top-down path into the two finest heads (:data:`TOP_DOWN_HEADS`).

    Heads are separable (3x3 depthwise + 1x1): on the 1280-channel "top" map a full 3x3
    convolution head would cost about 8x more than the whole separable one (SSDLite, Sandler
    et al. 2018, Sec. 6.3). Extra stages are separable too, as in SSDLite.
    """
    heads = heads_from_scales(LITE0_SOURCES, LITE0_SCALES, [FIRST_LAYER_RATIOS] + [RATIOS] * 5, LITE0_STEPS)
    return with_top_down(ModelSpec(
        class_names=tuple(class_names),
        input_size=(300, 300),
        preprocess=PreprocessSpec(channel_order="RGB", mean=(127.5,) * 3, scale=(1 / 128.0,) * 3),
        backbone=BackboneSpec(kind="efficientnet_lite0"),
        extras=SEPARABLE_EXTRAS,
        heads=heads,
        head_kernel_size=3,
        head_kind="separable",
        variances=(0.1, 0.1, 0.2, 0.2),
        layout="lite0",
    ))


LAYOUTS = {"seed": seed_spec, "caffe": caffe_spec, "lite0": lite0_spec}

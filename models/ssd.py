"""The SSD detector (Liu et al. 2016) on a MobileNetV1 or EfficientNet-Lite0 backbone, built
from a ModelSpec.

Network contract:
- input ``image``: (B, H, W, 3) BGR, uint8, already resized to ``spec.input_size``;
- output 0 ``box_deltas``: (B, num_boxes, 4) float, encoded offsets t_x, t_y, t_w, t_h
  against the default boxes of :func:`models.priors.default_boxes` (same order);
- output 1 ``class_logits``: (B, num_boxes, num_classes + 1) float, background at index 0.

Softmax, decoding and NMS are not part of the network: training needs logits, and the
predictor fuses softmax + decoding into its compiled inference function.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers

from .backbone import conv_unit, mobilenet_v1, separable_unit
from .efficientnet_lite import efficientnet_lite0
from .geometry import feature_map_sizes, half_size, halvings
from .layers import Preprocess
from .priors import default_boxes, num_default_boxes
from .spec import BackboneSpec, ExtraSpec, HeadSpec, ModelSpec, SpecError

# backbone kind -> builder: (normalised image, options) -> {feature name: tensor}
BACKBONES = {"mobilenet_v1": mobilenet_v1, "efficientnet_lite0": efficientnet_lite0}


def extra_stage(x, extra: ExtraSpec, opts: BackboneSpec, index: int):
    """1x1 bottleneck, then a stride-2 3x3 stage (SSD's extra feature layers)."""
    name = f"extra{index}"
    x = conv_unit(x, extra.bottleneck, 1, 1, "same", opts, name=f"{name}_1x1")
    if extra.kind == "separable":
        return separable_unit(x, extra.filters, extra.stride, extra.padding, opts, f"{name}_dw", f"{name}_pw")
    return conv_unit(x, extra.filters, 3, extra.stride, extra.padding, opts, name=f"{name}_3x3")


def prediction_head(x, filters_per_box: int, boxes: int, kernel: int, name: str, kind: str = "conv"):
    """Predict ``filters_per_box`` numbers for each default box of every cell, reshaped to
    (B, cells * boxes, filters_per_box) in row-major cell order.

    ``kind="conv"``: one k x k convolution (SSD). ``kind="separable"``: 3x3 depthwise + BN +
    ReLU6, then a 1x1 convolution (SSDLite). The predicting convolution is always named
    ``name`` so that fine-tuning maps class predictors the same way for both kinds.
    """
    h, w = x.shape[1], x.shape[2]
    if kind == "separable":
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
        x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name=f"{name}_dw_bn")(x)
        x = layers.ReLU(max_value=6.0, name=f"{name}_dw_relu")(x)
        kernel = 1
    y = layers.Conv2D(boxes * filters_per_box, kernel, padding="same", name=name)(x)
    return layers.Reshape((h * w * boxes, filters_per_box), name=f"{name}_flat")(y)


def top_down_fuse(fine, coarse: list[tuple[Any, int, str]], name: str):
    """``fine`` (B, H, W, C) plus each coarse map, given as (tensor (B, h, w, C'), k, prefix)
    with h, w = H, W halved (rounded up) k times: projected to C channels by a 1x1 convolution
    named ``{prefix}_proj``, upsampled 2**k times (nearest), cropped to H x W where the
    halvings rounded up. One ``{name}_add`` sums them. Returns (B, H, W, C).

    Projecting before upsampling costs 1/4**k of the other order and gives the same result
    (a 1x1 convolution commutes with nearest-neighbour upsampling). Each projection starts at
    zero, so a network that gains a path computes exactly what it computed before, and
    fine-tuning grows the path from there instead of starting from a perturbed model. A map
    k > 1 stages away is read directly rather than through the maps between (FPN's cascade):
    that keeps the zero start when a path is added to a model that has one already.
    """
    h, w, channels = fine.shape[1], fine.shape[2], fine.shape[3]
    terms = [fine]
    for x, k, prefix in coarse:
        factor = 2**k
        ch, cw = x.shape[1], x.shape[2]
        x = layers.Conv2D(channels, 1, kernel_initializer="zeros", name=f"{prefix}_proj")(x)
        x = layers.UpSampling2D(factor, interpolation="nearest", name=f"{prefix}_up")(x)
        if (factor * ch, factor * cw) != (h, w):
            x = layers.Cropping2D(((0, factor * ch - h), (0, factor * cw - w)), name=f"{prefix}_crop")(x)
        terms.append(x)
    return layers.Add(name=f"{name}_add")(terms)


def _fusion_steps(index: int, head: HeadSpec, sizes: dict[str, tuple[int, int]]) -> list[int]:
    """For each of a head's ``fuse`` maps, how many stride-2 stages separate it from the
    source (its size is the source's halved, rounded up, that many times)."""
    fine = sizes[head.source]
    steps = []
    for name in head.fuse_maps:
        coarse, k = sizes[name], halvings(fine, sizes[name])
        if k is None:
            half = half_size(fine)
            raise SpecError(f"heads[{index}] ({head.source}, {fine[0]}x{fine[1]}): fuse map {name} is "
                            f"{coarse[0]}x{coarse[1]}, expected {half[0]}x{half[1]} (half the source's size) "
                            "or a later halving of it; name a feature map one or more stride-2 stages after "
                            "the source")
        steps.append(k)
    return steps


def build_graph(spec: ModelSpec) -> tuple[keras.KerasTensor, list[keras.KerasTensor]]:
    """Symbolic input and [box_deltas, class_logits] outputs of ``spec``'s network."""
    spec.validate()
    h, w = spec.input_size
    image = keras.Input(shape=(h, w, 3), dtype="uint8", name="image")
    p = spec.preprocess
    x = Preprocess(p.channel_order, p.mean, p.scale, name="preprocess")(image)
    feats = BACKBONES[spec.backbone.kind](x, spec.backbone)
    x = list(feats.values())[-1]  # extra stages continue from the backbone's last map
    for i, extra in enumerate(spec.extras, start=1):
        x = extra_stage(x, extra, spec.backbone, i)
        feats[f"extra{i}"] = x

    expected = feature_map_sizes(spec)
    deltas, logits = [], []
    for i, head in enumerate(spec.heads):
        f = feats[head.source]
        if tuple(f.shape[1:3]) != expected[head.source]:
            raise RuntimeError(  # a bug, not a user error: geometry and builder disagree
                f"feature map {head.source} is {tuple(f.shape[1:3])}, geometry says {expected[head.source]}"
            )
        if head.fuse is not None:
            steps = _fusion_steps(i, head, expected)
            # the first map's layers keep the names they had when a head read one map only
            prefixes = [f"fuse_{head.source}"] + [f"fuse_{head.source}_{m}" for m in head.fuse_maps[1:]]
            f = top_down_fuse(f, [(feats[m], k, p) for m, k, p in zip(head.fuse_maps, steps, prefixes)],
                              f"fuse_{head.source}")
        k = head.boxes_per_cell
        kernel, kind = spec.head_kernel_size, spec.head_kind
        deltas.append(prediction_head(f, 4, k, kernel, f"box_{head.source}", kind))
        logits.append(prediction_head(f, spec.num_classes, k, kernel, f"cls_{head.source}", kind))
    return image, [_concat(deltas, "box_deltas"), _concat(logits, "class_logits")]


def _concat(tensors: list, name: str):
    """Concatenate the per-layer predictions along the box axis (always a named layer)."""
    if len(tensors) == 1:
        return layers.Identity(name=name)(tensors[0])
    return layers.Concatenate(axis=1, name=name)(tensors)


@keras.saving.register_keras_serializable(package="detector_app")
class SSDModel(keras.Model):
    """A MobileNet-SSD detector whose whole structure is its :class:`ModelSpec`.

    Its saved config is just the spec, so loading rebuilds the network from data (no code is
    deserialised) and every model file carries its class names and box layout.
    """

    def __init__(self, spec: ModelSpec | dict[str, Any], **kwargs):
        if isinstance(spec, dict):
            spec = ModelSpec.from_dict(spec)
        image, outputs = build_graph(spec)
        kwargs.setdefault("name", f"ssd_{spec.layout}".replace("-", "_"))
        super().__init__(inputs=image, outputs=outputs, **kwargs)
        self.spec = spec
        self._priors: np.ndarray | None = None
        n = num_default_boxes(spec)
        if outputs[0].shape[1] != n:
            raise RuntimeError(f"network predicts {outputs[0].shape[1]} boxes, spec has {n}")

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    @property
    def priors(self) -> np.ndarray:
        """Default boxes, float32 (num_boxes, 4) normalised cx, cy, w, h."""
        if self._priors is None:
            self._priors = default_boxes(self.spec)
        return self._priors

    def get_config(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None) -> "SSDModel":
        return cls(**config)


def build_model(spec: ModelSpec) -> SSDModel:
    """A freshly initialised detector for ``spec``."""
    return SSDModel(spec)

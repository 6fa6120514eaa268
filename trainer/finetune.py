"""Fine-tuning: start a detector for new classes from a trained one, and freeze its backbone.

Layer names are stable (``conv1``, ``conv_dw_i``, ``conv_pw_i``, ``extraK_*``, ``box_<src>``,
``cls_<src>``), so weights map by name. Backbone, extra stages and box regressors carry over
whole: where to look and how boxes move does not depend on the class list. A class predictor
``cls_<src>`` has a kernel of shape (k, k, C_in, boxes * (C + 1)); viewed as
(k, k, C_in, boxes, C + 1), its per-class slices carry over for background and for every
class whose name the old and new lists share, and the slices of new classes keep their fresh
initialisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError

# MobileNetV1 (conv1, conv_dw_i, conv_pw_i) and EfficientNet-Lite0 (lite_*) layers.
BACKBONE_PREFIXES = ("conv1", "conv_dw_", "conv_pw_", "lite_")
# A top-down path's projection (models.ssd.top_down_fuse): a model without the path lacks it,
# and it starts at zero, so the model with the path computes what the model without it did.
TOP_DOWN_PREFIX = "fuse_"
# Layers of a separable head that come before its predicting 1x1 convolution: per-channel, so
# they carry over whole like any other layer.
_HEAD_INNER_SUFFIXES = ("_dw", "_dw_bn")


def is_class_predictor(layer_name: str) -> bool:
    """``cls_<source>``: the convolution whose outputs are per-box class logits."""
    return layer_name.startswith("cls_") and not layer_name.endswith(_HEAD_INNER_SUFFIXES)


@dataclass
class TransferReport:
    """What :func:`transfer_weights` did, for the user."""

    copied_layers: list[str] = field(default_factory=list)
    class_layers: list[str] = field(default_factory=list)
    carried_classes: list[str] = field(default_factory=list)
    new_classes: list[str] = field(default_factory=list)
    dropped_classes: list[str] = field(default_factory=list)
    new_layers: list[str] = field(default_factory=list)  # a top-down path the old model lacks

    def describe(self) -> str:
        # "adapted" alone read as a contradiction next to "carried over: none": say what moved
        kept = "background" + "".join(f", {name}" for name in self.carried_classes)
        parts = [f"{len(self.copied_layers)} layers copied whole; in the {len(self.class_layers)} class predictors "
                 f"the weights of {kept} carried over"]
        parts.append(f"classes carried over: {', '.join(self.carried_classes) or 'none (only background)'}")
        if self.new_classes:
            parts.append(f"new classes (fresh predictors): {', '.join(self.new_classes)}")
        if self.dropped_classes:
            parts.append(f"classes of the old model not kept: {', '.join(self.dropped_classes)}")
        if self.new_layers:
            parts.append(f"top-down path added, starting at zero: {', '.join(self.new_layers)}")
        return "; ".join(parts)


def _class_columns(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Matching columns (old, new) of the (C+1)-wide class axis: background and shared names."""
    src, dst = [0], [0]
    for j, name in enumerate(new, start=1):
        if name in old:
            src.append(old.index(name) + 1)
            dst.append(j)
    return np.asarray(src), np.asarray(dst)


def transfer_weights(source, target) -> TransferReport:
    """Copy ``source``'s weights into ``target`` (two :class:`models.SSDModel`), by layer name.

    The two must share the network (spec without the class list), except that ``target`` may
    add a top-down path (its ``fuse_*`` layers keep their zero start); raises
    :class:`DataError` naming the first layer whose shapes differ otherwise.
    """
    report = TransferReport()
    old, new = tuple(source.spec.class_names), tuple(target.spec.class_names)
    src_cols, dst_cols = _class_columns(old, new)
    report.carried_classes = [n for n in new if n in old]
    report.new_classes = [n for n in new if n not in old]
    report.dropped_classes = [n for n in old if n not in new]
    by_name = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        if not layer.weights:
            continue
        src_layer = by_name.get(layer.name)
        if src_layer is None and layer.name.startswith(TOP_DOWN_PREFIX):
            report.new_layers.append(layer.name)  # keeps its zero start
            continue
        if src_layer is None:
            raise DataError(layer.name, "the model to fine-tune from has no layer of this name; it was built "
                                        "with another layout (use --from with a model of the same layout)")
        old_ws, new_ws = src_layer.get_weights(), layer.get_weights()
        if is_class_predictor(layer.name):
            adapted = [_adapt(o, n, len(old) + 1, len(new) + 1, src_cols, dst_cols, layer.name) for o, n in zip(old_ws, new_ws)]
            layer.set_weights(adapted)
            report.class_layers.append(layer.name)
            continue
        for o, n in zip(old_ws, new_ws):
            if o.shape != n.shape:
                raise DataError(layer.name, f"weights of shape {o.shape} in the old model, {n.shape} in the new "
                                            "one; the two layouts differ")
        layer.set_weights(old_ws)
        report.copied_layers.append(layer.name)
    return report


def _adapt(old_w, new_w, c_old: int, c_new: int, src, dst, name: str) -> np.ndarray:
    """Per-class copy for one weight of a ``cls_*`` layer (kernel or bias)."""
    boxes = old_w.shape[-1] // c_old
    if old_w.shape[:-1] != new_w.shape[:-1] or boxes * c_old != old_w.shape[-1] or boxes * c_new != new_w.shape[-1]:
        raise DataError(name, f"class predictor of shape {old_w.shape} cannot map to {new_w.shape}; the layouts differ")
    old_v = old_w.reshape(old_w.shape[:-1] + (boxes, c_old))
    out = new_w.reshape(new_w.shape[:-1] + (boxes, c_new)).copy()
    out[..., dst] = old_v[..., src]
    return out.reshape(new_w.shape)


def is_backbone(layer_name: str) -> bool:
    """Backbone layers: MobileNetV1's stem and 13 blocks, or EfficientNet-Lite0's stem, 16 blocks
    and top (with their BN/ReLU)."""
    return layer_name.startswith(BACKBONE_PREFIXES)


# Position of a backbone layer in network order: 0 for the stem, K for block K, and "top"
# (EfficientNet-Lite0's last 1x1 convolution) after the last block.
_BLOCK_OF_LAYER = re.compile(r"^(?:conv_(?:dw|pw)_|lite_b)(\d+)_?")
TOP_POSITION = 1000


def backbone_position(layer_name: str) -> int | None:
    """Where a backbone layer sits (stem 0, block K -> K, top last); None for other layers."""
    if not is_backbone(layer_name):
        return None
    match = _BLOCK_OF_LAYER.match(layer_name)
    if match:
        return int(match.group(1))
    return TOP_POSITION if layer_name.startswith("lite_top") else 0


def feature_position(feature: str, spec) -> int:
    """Position of a backbone feature map name (``blockK`` or ``top``) of ``spec``'s backbone;
    raises DataError naming the valid ones."""
    from models.spec import BACKBONE_FEATURES

    names = BACKBONE_FEATURES[spec.backbone.kind]
    if feature not in names:
        raise DataError("--freeze-through", f"{feature!r} is not a feature map of the {spec.backbone.kind} "
                                            f"backbone; expected one of {', '.join(names)}")
    return TOP_POSITION if feature == "top" else int(feature[len("block"):])


def set_backbone_trainable(detector, trainable: bool, frozen_through: str | None = None) -> int:
    """Freeze or release the backbone; returns the number of layers changed.

    ``frozen_through`` (a feature map name such as ``block5``): when releasing, the stem and
    the blocks up to and including that one stay frozen. Why: on a CPU the backward pass of
    the high-resolution depthwise layers dominates a training step (bench/train_bench.py), and
    those early ImageNet filters (edges, textures) need the least adapting.

    A frozen BatchNormalization layer also runs in inference mode (Keras 3), so small
    fine-tuning batches do not disturb the statistics learnt on the large data set.
    """
    limit = -1 if frozen_through is None else feature_position(frozen_through, detector.spec)
    changed = 0
    for layer in detector.layers:
        position = backbone_position(layer.name)
        if position is None:
            continue
        wanted = trainable and position > limit
        if layer.trainable != wanted:
            layer.trainable = wanted
            changed += 1
    return changed

"""Caffe MobileNet-SSD (deploy prototxt + .caffemodel) -> this app's SSDModel and model file.

Weights keep their meaning; only the memory layout changes (Caffe is NCHW, Keras NHWC):

    Conv2D           Caffe (O, I, kh, kw)  -> Keras (kh, kw, I, O)
    DepthwiseConv2D  Caffe (C, 1, kh, kw)  -> Keras (kh, kw, C, 1)   (group == channels)
    bias             (O,)                  -> (O,)

Both frameworks compute a cross-correlation (no kernel flip), and a 1x1 head's output channel
``box * values + v`` lands, after Caffe's Permute(0, 2, 3, 1) + Flatten or the builder's
Reshape, at the same (cell, box, value) position, so heads need no reordering.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..model_file import save_model
from ..ssd import SSDModel, build_model
from .caffemodel import BinaryLayer, read_layers
from .errors import NetworkMismatchError
from .fold import AFFINE_OF, BLOB_COUNTS, Affine, fold
from .netspec import CaffePlan, ConvMapping, plan_from_prototxt
from .prototxt import load as load_prototxt

# kind of Keras layer -> Caffe weight (O, I/g, kh, kw) to Keras kernel
KERNEL_LAYOUTS: dict[bool, Callable[[np.ndarray], np.ndarray]] = {
    False: lambda w: np.transpose(w, (2, 3, 1, 0)),  # Conv2D (kh, kw, I, O)
    True: lambda w: np.transpose(w, (2, 3, 0, 1)),  # DepthwiseConv2D (kh, kw, C, 1)
}


def caffe_kernel_shape(keras_kernel_shape: Sequence[int], depthwise: bool) -> tuple[int, ...]:
    """The Caffe blob shape that maps onto a Keras kernel of ``keras_kernel_shape``."""
    kh, kw, a, b = keras_kernel_shape
    return (a, b, kh, kw) if depthwise else (b, a, kh, kw)


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_caffe` made: the model, the parsed plan, the file, what was folded."""

    model: SSDModel
    plan: CaffePlan
    path: Path | None
    folded: dict[str, tuple[str, ...]]  # Caffe conv -> BatchNorm/Scale layers folded into it


class _Weights:
    """The layers of a weights file, indexed for lookup by name and by input blob."""

    def __init__(self, layers: list[BinaryLayer], path):
        self.path = path
        self.by_name = {layer.name: layer for layer in layers if layer.blobs}
        self.by_bottom: dict[str, list[BinaryLayer]] = {}
        for layer in layers:
            if layer.type in AFFINE_OF and layer.bottom:
                self.by_bottom.setdefault(layer.bottom[0], []).append(layer)

    def conv(self, mapping: ConvMapping) -> list[np.ndarray]:
        layer = self.by_name.get(mapping.caffe)
        if layer is None:
            raise NetworkMismatchError(
                self.path,
                f"has no weights for layer {mapping.caffe!r} of the prototxt; the weights belong to "
                f"another network (or the layer was renamed)",
            )
        return layer.blobs

    def folded(self, mapping: ConvMapping, plan: CaffePlan) -> list[BinaryLayer]:
        """The BatchNorm/Scale layers to fold into ``mapping``'s convolution, in order.

        From the prototxt when it lists them; otherwise from the weights file, found by their
        input blob (Caffe saves bottom/top) or by chuanqi305's names ``<conv>/bn``, ``<conv>/scale``
        (the case of ``mobilenet_iter_73000.caffemodel`` with the folded deploy prototxt).
        """
        if mapping.folded:
            found = []
            for name in mapping.folded:
                if name not in self.by_name:
                    raise NetworkMismatchError(self.path, f"has no weights for layer {name!r} ({plan.folded_layers[name].type}) of the prototxt")
                found.append(self.by_name[name])
            return found
        by_bottom = [l for l in self.by_bottom.get(mapping.top, []) if l.blobs]
        if by_bottom:
            return by_bottom
        named = [self.by_name.get(f"{mapping.caffe}/bn"), self.by_name.get(f"{mapping.caffe}/scale")]
        return [l for l in named if l is not None and l.type in AFFINE_OF]


def _affine(layer: BinaryLayer, plan: CaffePlan, channels: int, path) -> Affine:
    low, high = BLOB_COUNTS[layer.type]
    if not low <= len(layer.blobs) <= high:
        raise NetworkMismatchError(path, f"layer {layer.name!r} ({layer.type}) has {len(layer.blobs)} blobs, expected {low} to {high}")
    sizes = {b.size for b in layer.blobs[:2]}
    if sizes != {channels}:
        raise NetworkMismatchError(path, f"layer {layer.name!r} ({layer.type}) has blobs of {sorted(sizes)} values for a convolution of {channels} channels")
    eps = layer.batch_norm_eps
    proto = plan.folded_layers.get(layer.name)
    if proto is not None and "eps" in proto.param("batch_norm_param"):
        eps = float(proto.param("batch_norm_param").get("eps"))
    return AFFINE_OF[layer.type](layer.blobs, eps, channels)


def _keras_weights(mapping: ConvMapping, weights: _Weights, plan: CaffePlan, keras_kernel_shape, path) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """[kernel, bias] for one Keras layer, and the names of the layers folded into it."""
    blobs = weights.conv(mapping)
    expected = caffe_kernel_shape(keras_kernel_shape, mapping.depthwise)
    weight = blobs[0]
    if weight.size != int(np.prod(expected)):
        raise NetworkMismatchError(
            path,
            f"layer {mapping.caffe!r} has weights of shape {tuple(weight.shape)} but the network "
            f"(Keras layer {mapping.keras!r}) needs {expected}; the weights do not belong to this prototxt",
        )
    weight = weight.reshape(expected)  # pre-2015 blobs may carry another 4-D shape of the same size
    out_channels = expected[0]
    folded = weights.folded(mapping, plan)
    if len(blobs) > 1:
        if blobs[1].size != out_channels:
            raise NetworkMismatchError(path, f"layer {mapping.caffe!r} has a bias of {blobs[1].size} values, expected {out_channels}")
        bias = blobs[1].reshape(-1)
    elif mapping.bias_term and not folded:
        raise NetworkMismatchError(
            path,
            f"layer {mapping.caffe!r} has no bias blob although the prototxt gives it one "
            f"(bias_term), and no BatchNorm to fold; the weights do not belong to this prototxt",
        )
    else:
        bias = np.zeros(out_channels, np.float32)
    affines = [_affine(layer, plan, out_channels, path) for layer in folded]
    weight, bias = fold(weight, bias, affines)
    return [KERNEL_LAYOUTS[mapping.depthwise](weight), bias], tuple(l.name for l in folded)


def convert(
    prototxt: str | os.PathLike,
    caffemodel: str | os.PathLike,
    class_names: Sequence[str] | None = None,
) -> ImportResult:
    """Build the SSDModel that ``prototxt`` describes and load ``caffemodel``'s weights into it.

    ``class_names`` exclude background; None means VOC for a 21-class network. Errors are
    :class:`~models.caffe.errors.CaffeImportError` subclasses naming the file and the layer.
    """
    plan = plan_from_prototxt(load_prototxt(prototxt), class_names, prototxt)
    weights = _Weights(read_layers(caffemodel), caffemodel)
    model = build_model(plan.spec)
    folded: dict[str, tuple[str, ...]] = {}
    for mapping in plan.convs:
        layer = model.get_layer(mapping.keras)
        kernel_shape = tuple(layer.weights[0].shape)
        values, names = _keras_weights(mapping, weights, plan, kernel_shape, caffemodel)
        if names:
            folded[mapping.caffe] = names
        for variable, value in zip(layer.weights, values):
            if tuple(variable.shape) != value.shape:  # a bug, not a user error: mapping and builder disagree
                raise RuntimeError(f"{mapping.caffe} -> {mapping.keras}: {value.shape} vs {tuple(variable.shape)}")
        layer.set_weights(values)
    mapped = {m.keras for m in plan.convs}
    unset = [l.name for l in model.layers if l.weights and l.name not in mapped]
    if unset:  # a bug: every weighted layer of the builder must come from Caffe
        raise RuntimeError(f"layers without Caffe weights: {unset}")
    return ImportResult(model=model, plan=plan, path=None, folded=folded)


def import_caffe(
    prototxt: str | os.PathLike,
    caffemodel: str | os.PathLike,
    out: str | os.PathLike,
    class_names: Sequence[str] | None = None,
) -> ImportResult:
    """:func:`convert`, then save the model file ``out`` (``.keras``, written atomically)."""
    result = convert(prototxt, caffemodel, class_names)
    path = save_model(result.model, out)
    return ImportResult(model=result.model, plan=result.plan, path=path, folded=result.folded)

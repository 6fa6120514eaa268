"""From a Caffe MobileNet-SSD deploy prototxt to this app's :class:`ModelSpec`.

The prototxt is read as a graph (:mod:`.graph`), not matched by layer names: the convolutions
that feed ``DetectionOutput`` through Permute/Flatten/Concat are the SSD heads, their
``PriorBox`` siblings give the default boxes (:mod:`.heads`), and every other convolution must
form the MobileNetV1-SSD chain the builder makes (:mod:`.trunk`). Anything else is another
network, and the error names the first layer that does not fit. The plan also maps every Caffe
convolution to the Keras layer that takes its weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from ..geometry import feature_map_sizes
from ..layouts import VOC_CLASSES
from ..spec import BackboneSpec, ModelSpec, PreprocessSpec, SpecError
from .errors import NetworkMismatchError
from .graph import NetGraph
from .heads import DetectionSettings, find_head_layers, read_heads
from .net import ConvParams, Layer, input_blob, net_layers
from .prototxt import Message
from .trunk import ConvMapping, Trunk, read_trunk

# chuanqi305's demo feeds the net (pixel - 127.5) * 0.007843 in OpenCV's BGR order; a deploy
# prototxt does not record it, so it is a property of the published model, stated here.
CAFFE_MOBILENET_SSD_PREPROCESS = PreprocessSpec(channel_order="BGR", mean=(127.5,) * 3, scale=(0.007843,) * 3)
LAYOUT_NAME = "caffe-mobilenet-ssd"


@dataclass(frozen=True)
class CaffePlan:
    """A parsed MobileNet-SSD prototxt: the spec to build and where each Caffe layer's weights go.

    ``folded_layers``: the prototxt's BatchNorm/Scale layers (by name) that fold into a convolution.
    """

    spec: ModelSpec
    convs: tuple[ConvMapping, ...]
    detection: DetectionSettings
    folded_layers: dict[str, Layer]


def resolve_class_names(num_classes: int, class_names: Sequence[str] | None, where: str = "the prototxt") -> tuple[str, ...]:
    """Class names (without background) for a network of ``num_classes`` outputs (with background).

    None means VOC's 20 names, valid only for a 21-class network.
    """
    if class_names is None:
        if num_classes == len(VOC_CLASSES) + 1:
            return VOC_CLASSES
        raise NetworkMismatchError(
            None,
            f"{where} predicts {num_classes - 1} classes plus background, so the VOC names do not "
            f"apply; give the class names (--classes a,b,... or --labels FILE)",
        )
    names = tuple(class_names)
    if len(names) != num_classes - 1:
        raise NetworkMismatchError(
            None,
            f"{len(names)} class names given, but {where} predicts {num_classes - 1} classes plus "
            f"background; give exactly {num_classes - 1} names, in the network's order, without background",
        )
    return names


def plan_from_prototxt(
    net: Message,
    class_names: Sequence[str] | None = None,
    path: str | os.PathLike | None = None,
    preprocess: PreprocessSpec = CAFFE_MOBILENET_SSD_PREPROCESS,
) -> CaffePlan:
    """Read a MobileNet-SSD deploy prototxt into a :class:`CaffePlan`.

    ``class_names`` exclude background; None means VOC for a 21-class network. Raises
    :class:`NetworkMismatchError` naming the first layer that the builder cannot express.
    """
    try:
        return _plan(net, class_names, path, preprocess)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, NetworkMismatchError):
            raise
        # int("abc"), float of a block...: a field holds a value of the wrong kind
        raise NetworkMismatchError(path, f"has a field with a value of the wrong type ({exc})") from exc


def _plan(net: Message, class_names: Sequence[str] | None, path, preprocess: PreprocessSpec) -> CaffePlan:
    layers = net_layers(net, path)
    input_name, (_, channels, height, width) = input_blob(net, layers, path)
    if channels != 3:
        raise NetworkMismatchError(path, f"input {input_name!r} has {channels} channels; the app feeds 3 (BGR)")
    graph = NetGraph(layers, input_name, path)
    found = find_head_layers(graph)
    head_names = {c.name for c in found.loc + found.conf}
    trunk = read_trunk(graph, [c for c in graph.convs if c.name not in head_names])
    heads = read_heads(graph, found, trunk, (height, width))
    names = resolve_class_names(found.num_classes, class_names, f"{path or 'the prototxt'}")
    try:
        spec = ModelSpec(
            class_names=names,
            input_size=(height, width),
            preprocess=preprocess,
            backbone=BackboneSpec(alpha=trunk.alpha, activation=trunk.activation, use_bias=True,
                                  batch_norm=False, stride2_padding=trunk.stride2_padding),
            extras=tuple(trunk.extras),
            heads=heads.heads,
            head_kernel_size=heads.kernel_size,
            variances=heads.variances,
            layout=LAYOUT_NAME,
        ).validate()
    except SpecError as exc:
        raise NetworkMismatchError(path, f"does not make a valid model spec: {exc}") from exc
    _check_feature_sizes(graph, trunk, spec, (height, width))
    folded = {name: graph.layers[name] for m in trunk.convs for name in m.folded}
    return CaffePlan(spec=spec, convs=tuple(trunk.convs + heads.convs), detection=found.settings, folded_layers=folded)


def _check_feature_sizes(graph: NetGraph, trunk: Trunk, spec: ModelSpec, input_size: tuple[int, int]) -> None:
    """Caffe's size arithmetic along the trunk must agree with the builder's geometry."""
    expected = feature_map_sizes(spec)
    size = input_size
    for mapping in trunk.convs:
        size = ConvParams.of(graph.layers[mapping.caffe], graph.path).output_size(size)
        feature = trunk.features.get(mapping.caffe)
        if feature is not None and size != expected[feature]:
            raise NetworkMismatchError(
                graph.path,
                f"layer {mapping.caffe!r} makes a {size} map in Caffe but the builder's {feature} is "
                f"{expected[feature]}; the input size or padding is not one the builder supports",
            )

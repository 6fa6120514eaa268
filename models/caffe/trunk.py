"""The MobileNetV1 backbone and SSD extra stages of a Caffe prototxt, checked against the builder.

The trunk is every convolution that is not an SSD head, in prototxt order. It must be the chain
:func:`models.backbone.mobilenet_v1` and :func:`models.ssd.extra_stage` build:

    stem 3x3/2 -> 13 x (depthwise 3x3 -> pointwise 1x1, MobileNet Table 1) -> K x (1x1 -> 3x3)

each convolution followed by a ReLU, with optional BatchNorm/Scale layers in between (folded
into the convolution's weights on import). The first convolution that does not fit is named.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..geometry import MOBILENET_V1_BLOCKS, STEM_FILTERS
from ..spec import ExtraSpec
from .errors import NetworkMismatchError
from .graph import NetGraph
from .net import ConvParams, Layer

BACKBONE_CONVS = 1 + 2 * len(MOBILENET_V1_BLOCKS)  # stem + 13 depthwise-separable blocks
ACTIVATIONS = {"ReLU": "relu", "ReLU6": "relu6"}
FOLDABLE = ("BatchNorm", "Scale")  # per-channel affine layers folded into the convolution before them


@dataclass(frozen=True)
class ConvMapping:
    """Where one Caffe convolution's weights go.

    ``keras``: the Keras layer name; ``depthwise``: Caffe weights (C, 1, kh, kw) go to a
    DepthwiseConv2D, otherwise (O, I, kh, kw) to a Conv2D. ``top``: the blob it writes (to find
    BatchNorm/Scale layers in a weights file by their input). ``folded``: the names of the
    prototxt's BatchNorm/Scale layers right after it, in order.
    """

    caffe: str
    keras: str
    depthwise: bool
    bias_term: bool
    top: str
    folded: tuple[str, ...] = ()


def mismatch(path, layer: Layer, role: str, what: str) -> NetworkMismatchError:
    return NetworkMismatchError(
        path,
        f"layer {layer.name!r} ({role}): {what}; this importer builds MobileNetV1-SSD "
        f"(stem, 13 depthwise-separable blocks, 1x1+3x3 extra stages, SSD heads), so the "
        f"prototxt describes another network",
    )


def expect(path, layer: Layer, role: str, p: ConvParams, **expected) -> None:
    """Compare convolution parameters with what the builder makes; name the first difference."""
    for field, want in expected.items():
        got = getattr(p, field)
        if got != want:
            raise mismatch(path, layer, role, f"expected {field} {want}, found {got}")


def _activation(graph: NetGraph, conv: Layer, role: str) -> tuple[str, tuple[str, ...]]:
    """The activation after a trunk convolution and the BatchNorm/Scale layers before it.

    Every reader of the convolution's output must see the whole unit, conv -> [BN, Scale] -> ReLU.
    """
    path = graph.path
    reads = graph.reads.get(conv.name, [])
    if not reads:
        raise mismatch(path, conv, role, "its output is never used")
    if any(value.post != reads[0].post for value in reads):
        raise mismatch(path, conv, role, "its output is read both before and after its ReLU")
    first = [graph.layers[name] for name in reads[0].post]
    if not first or first[-1].type not in ACTIVATIONS:
        raise mismatch(path, conv, role, "expected a ReLU after it")
    relu = first[-1]
    if float(relu.param("relu_param").get("negative_slope", 0.0)) != 0.0:
        raise mismatch(path, relu, role, "leaky ReLU (negative_slope) is not supported")
    for layer in first[:-1]:
        if layer.type not in FOLDABLE:
            raise mismatch(path, layer, role, f"expected only BatchNorm/Scale before the ReLU, found {layer.type}")
    return ACTIVATIONS[relu.type], tuple(l.name for l in first[:-1])


def _padding(path, layer: Layer, role: str, p: ConvParams) -> str:
    """A 3x3 convolution's Caffe padding in the builder's terms (pad 1 -> symmetric, 0 -> valid)."""
    if p.pad == (1, 1):
        return "symmetric"
    if p.pad == (0, 0):
        return "valid"
    raise mismatch(path, layer, role, f"expected pad 1 (or 0), found {p.pad}")


@dataclass
class Trunk:
    """The backbone and extra stages as read from the prototxt."""

    alpha: float
    activation: str
    stride2_padding: str
    extras: list[ExtraSpec]
    convs: list[ConvMapping]
    features: dict[str, str]  # Caffe conv name whose output is a feature map -> feature name


class _Units:
    """Collects each trunk convolution's mapping and activation as the trunk is read."""

    def __init__(self, graph: NetGraph):
        self.graph = graph
        self.convs: list[ConvMapping] = []
        self.activations: set[str] = set()

    def add(self, layer: Layer, p: ConvParams, role: str, keras: str, depthwise: bool = False) -> None:
        act, folded = _activation(self.graph, layer, role)
        self.activations.add(act)
        self.convs.append(ConvMapping(layer.name, keras, depthwise, p.bias_term, layer.top[0], folded))


def _check_chain(graph: NetGraph, trunk: list[Layer], params: list[ConvParams]) -> None:
    """Each trunk convolution reads the one before it (the first reads the input), undilated."""
    for prev, layer, p in zip([None, *trunk], trunk, params):
        src = graph.first_input(layer).source
        if src != (None if prev is None else prev.name):
            expected = "the network input" if prev is None else f"the output of {prev.name!r}"
            found = "the network input" if src is None else f"the output of {src!r}"
            raise mismatch(graph.path, layer, "trunk", f"expected it to read {expected}, it reads {found}")
        expect(graph.path, layer, "trunk", p, dilation=(1, 1))


def _read_backbone(graph: NetGraph, trunk: list[Layer], params: list[ConvParams], units: _Units) -> tuple[float, dict[str, str]]:
    """Stem + 13 blocks (MobileNet Table 1, widths times alpha); returns alpha and the block features."""
    path = graph.path
    stem, sp = trunk[0], params[0]
    alpha = sp.num_output / STEM_FILTERS
    expect(path, stem, "stem", sp, kernel=(3, 3), stride=(2, 2), group=1)
    if _padding(path, stem, "stem", sp) != "symmetric":
        raise mismatch(path, stem, "stem", "expected pad 1 (the builder pads stride-2 convolutions)")
    units.add(stem, sp, "stem", "conv1")
    features: dict[str, str] = {}
    channels = sp.num_output
    for i, (filters, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        dw, pw, dwp, pwp = trunk[2 * i - 1], trunk[2 * i], params[2 * i - 1], params[2 * i]
        role = f"MobileNetV1 block {i}, depthwise 3x3"
        expect(path, dw, role, dwp, kernel=(3, 3), stride=(stride, stride), num_output=channels, group=channels, pad=(1, 1))
        units.add(dw, dwp, role, f"conv_dw_{i}", depthwise=True)
        role = f"MobileNetV1 block {i}, pointwise 1x1"
        expect(path, pw, role, pwp, kernel=(1, 1), stride=(1, 1), pad=(0, 0), group=1, num_output=int(filters * alpha))
        units.add(pw, pwp, role, f"conv_pw_{i}")
        features[pw.name] = f"block{i}"
        channels = pwp.num_output
    return alpha, features


def _read_extras(graph: NetGraph, trunk: list[Layer], params: list[ConvParams], units: _Units) -> tuple[list[ExtraSpec], dict[str, str]]:
    """The extra stages after the backbone: 1x1 then a plain 3x3 convolution each (SSD Fig. 2)."""
    path = graph.path
    extras, features = [], {}
    for k, index in enumerate(range(BACKBONE_CONVS, len(trunk), 2), start=1):
        one, three, op, tp = trunk[index], trunk[index + 1], params[index], params[index + 1]
        role = f"extra stage {k}, 1x1"
        expect(path, one, role, op, kernel=(1, 1), stride=(1, 1), pad=(0, 0), group=1)
        units.add(one, op, role, f"extra{k}_1x1")
        role = f"extra stage {k}, 3x3"
        expect(path, three, role, tp, kernel=(3, 3), group=1)
        if tp.stride[0] != tp.stride[1] or tp.stride[0] not in (1, 2):
            raise mismatch(path, three, role, f"expected stride 1 or 2, found {tp.stride}")
        padding = _padding(path, three, role, tp)
        units.add(three, tp, role, f"extra{k}_3x3")
        extras.append(ExtraSpec(bottleneck=op.num_output, filters=tp.num_output, kind="conv",
                                stride=tp.stride[0], padding=padding))
        features[three.name] = f"extra{k}"
    return extras, features


def read_trunk(graph: NetGraph, trunk: list[Layer]) -> Trunk:
    """Check the non-head convolutions against the builder's chain and read its spec fields."""
    path = graph.path
    if len(trunk) < BACKBONE_CONVS or (len(trunk) - BACKBONE_CONVS) % 2:
        raise NetworkMismatchError(
            path,
            f"has {len(trunk)} convolutions before its SSD heads; MobileNetV1-SSD has {BACKBONE_CONVS} "
            f"(a stem and 13 depthwise-separable blocks) plus 2 per extra stage, so this is another network",
        )
    params = [ConvParams.of(layer, path) for layer in trunk]
    _check_chain(graph, trunk, params)
    units = _Units(graph)
    alpha, block_features = _read_backbone(graph, trunk, params, units)
    extras, extra_features = _read_extras(graph, trunk, params, units)
    if len(units.activations) > 1:
        raise NetworkMismatchError(path, f"mixes activations {sorted(units.activations)}; the builder uses one for the whole network")
    # The builder pads every stride-2 3x3 convolution of the backbone the same way; Caffe's
    # pad 1 is its "symmetric" padding (checked on the stem and each depthwise layer above).
    return Trunk(alpha, units.activations.pop(), "symmetric", extras, units.convs, {**block_features, **extra_features})

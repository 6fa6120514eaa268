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


def read_trunk(graph: NetGraph, trunk: list[Layer]) -> Trunk:
    path = graph.path
    if len(trunk) < BACKBONE_CONVS or (len(trunk) - BACKBONE_CONVS) % 2:
        raise NetworkMismatchError(
            path,
            f"has {len(trunk)} convolutions before its SSD heads; MobileNetV1-SSD has {BACKBONE_CONVS} "
            f"(a stem and 13 depthwise-separable blocks) plus 2 per extra stage, so this is another network",
        )
    params = [ConvParams.of(layer, path) for layer in trunk]
    for prev, layer, p in zip([None, *trunk], trunk, params):
        src = graph.first_input(layer).source
        if src != (None if prev is None else prev.name):
            expected = "the network input" if prev is None else f"the output of {prev.name!r}"
            found = "the network input" if src is None else f"the output of {src!r}"
            raise mismatch(path, layer, "trunk", f"expected it to read {expected}, it reads {found}")
        expect(path, layer, "trunk", p, dilation=(1, 1))

    stem, sp = trunk[0], params[0]
    alpha = sp.num_output / STEM_FILTERS
    expect(path, stem, "stem", sp, kernel=(3, 3), stride=(2, 2), group=1)
    stride2_padding = _padding(path, stem, "stem", sp)
    if stride2_padding != "symmetric":
        raise mismatch(path, stem, "stem", "expected pad 1 (the builder pads stride-2 convolutions)")

    activations, convs = set(), []
    features: dict[str, str] = {}

    def unit(layer: Layer, p: ConvParams, role: str, keras: str, depthwise: bool) -> None:
        act, folded = _activation(graph, layer, role)
        activations.add(act)
        convs.append(ConvMapping(layer.name, keras, depthwise, p.bias_term, layer.top[0], folded))

    unit(stem, sp, "stem", "conv1", False)
    channels = sp.num_output
    for i, (filters, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        dw, pw = trunk[2 * i - 1], trunk[2 * i]
        dwp, pwp = params[2 * i - 1], params[2 * i]
        role = f"MobileNetV1 block {i}, depthwise 3x3"
        expect(path, dw, role, dwp, kernel=(3, 3), stride=(stride, stride), num_output=channels, group=channels, pad=(1, 1))
        role = f"MobileNetV1 block {i}, pointwise 1x1"
        expect(path, pw, role, pwp, kernel=(1, 1), stride=(1, 1), pad=(0, 0), group=1, num_output=int(filters * alpha))
        unit(dw, dwp, f"MobileNetV1 block {i}, depthwise 3x3", f"conv_dw_{i}", True)
        unit(pw, pwp, role, f"conv_pw_{i}", False)
        features[pw.name] = f"block{i}"
        channels = pwp.num_output

    extras = []
    for k in range(1, (len(trunk) - BACKBONE_CONVS) // 2 + 1):
        index = BACKBONE_CONVS + 2 * (k - 1)
        one, three = trunk[index], trunk[index + 1]
        op, tp = params[index], params[index + 1]
        role = f"extra stage {k}, 1x1"
        expect(path, one, role, op, kernel=(1, 1), stride=(1, 1), pad=(0, 0), group=1)
        unit(one, op, role, f"extra{k}_1x1", False)
        role = f"extra stage {k}, 3x3"
        expect(path, three, role, tp, kernel=(3, 3), group=1)
        if tp.stride[0] != tp.stride[1] or tp.stride[0] not in (1, 2):
            raise mismatch(path, three, role, f"expected stride 1 or 2, found {tp.stride}")
        padding = _padding(path, three, role, tp)
        unit(three, tp, role, f"extra{k}_3x3", False)
        extras.append(ExtraSpec(bottleneck=op.num_output, filters=tp.num_output, kind="conv",
                                stride=tp.stride[0], padding=padding))
        features[three.name] = f"extra{k}"

    if len(activations) > 1:
        raise NetworkMismatchError(path, f"mixes activations {sorted(activations)}; the builder uses one for the whole network")
    return Trunk(alpha, activations.pop(), stride2_padding, extras, convs, features)

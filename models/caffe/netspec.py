"""From a Caffe MobileNet-SSD deploy prototxt to this app's :class:`ModelSpec`.

The prototxt is read as a graph, not matched by layer names: the convolutions that feed
``DetectionOutput`` (through Permute/Flatten/Concat) are the SSD heads, their ``PriorBox``
siblings give the default boxes, and every other convolution must form the MobileNetV1-SSD
chain the builder makes (:mod:`models.backbone`, :func:`models.ssd.extra_stage`):

    stem 3x3/2 -> 13 x (depthwise 3x3 -> pointwise 1x1) -> K x (1x1 -> 3x3) -> heads

each followed by a ReLU (BatchNorm + Scale in between are allowed: they are folded into the
convolution when the weights are loaded). Anything else is another network, and the error
names the first layer that does not fit. The result also maps every Caffe convolution to the
Keras layer that takes its weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Sequence

from ..geometry import MOBILENET_V1_BLOCKS, STEM_FILTERS, feature_map_sizes
from ..layouts import VOC_CLASSES, caffe_prior_head
from ..spec import BackboneSpec, ExtraSpec, HeadSpec, ModelSpec, PreprocessSpec, SpecError
from .errors import NetworkMismatchError
from .net import ConvParams, Layer, input_blob, net_layers
from .prototxt import Message

# chuanqi305's demo feeds the net (pixel - 127.5) * 0.007843 in OpenCV's BGR order; a deploy
# prototxt does not record it, so it is a property of the published model, stated here.
CAFFE_MOBILENET_SSD_PREPROCESS = PreprocessSpec(channel_order="BGR", mean=(127.5,) * 3, scale=(0.007843,) * 3)
LAYOUT_NAME = "caffe-mobilenet-ssd"
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


@dataclass(frozen=True)
class DetectionSettings:
    """The prototxt's DetectionOutput thresholds (for reference; the app has its own settings)."""

    confidence_threshold: float
    nms_threshold: float
    top_k: int
    keep_top_k: int


@dataclass(frozen=True)
class CaffePlan:
    """A parsed MobileNet-SSD prototxt: the spec to build and where each Caffe layer's weights go."""

    spec: ModelSpec
    convs: tuple[ConvMapping, ...]
    detection: DetectionSettings
    folded_layers: dict[str, Layer]


@dataclass(frozen=True)
class _Value:
    """A blob's content: made by convolution ``source`` (None: the input), then ``post`` layers."""

    source: str | None
    post: tuple[str, ...] = ()  # layer names


class _Graph:
    """The prototxt's layers walked in order: what each blob holds and who made it."""

    def __init__(self, layers: list[Layer], input_name: str, path):
        self.path = path
        self.values: dict[str, _Value] = {input_name: _Value(None)}
        self.producer: dict[str, Layer] = {}
        self.inputs: dict[str, list[_Value]] = {}  # layer name -> what it read, when it ran
        self.reads: dict[str, list[_Value]] = {}  # conv name -> every read of its output
        self.convs: list[Layer] = []
        self.layers: dict[str, Layer] = {}
        for layer in layers:
            handler = _HANDLERS.get(layer.type)
            if handler is None:
                raise NetworkMismatchError(
                    path,
                    f"layer {layer.name!r} has type {layer.type!r}, which MobileNet-SSD does not use "
                    f"(supported: {', '.join(sorted(_HANDLERS))}); this prototxt is another network",
                )
            self.layers[layer.name] = layer
            handler(self, layer)

    def read(self, layer: Layer, consumer: bool = True) -> list[_Value]:
        """The values of ``layer``'s inputs as it runs (recorded: in-place layers change blobs later).

        ``consumer``: count it as a use of a convolution's output (False for the ReLU, BatchNorm
        and Scale layers that make up the convolution's unit).
        """
        values = []
        for blob in layer.bottom:
            if blob not in self.values:
                raise NetworkMismatchError(self.path, f"layer {layer.name!r} reads blob {blob!r}, which no earlier layer writes")
            value = self.values[blob]
            if consumer and value.source is not None:
                self.reads.setdefault(value.source, []).append(value)
            values.append(value)
        self.inputs[layer.name] = values
        return values

    def first_input(self, layer: Layer) -> _Value:
        values = self.inputs.get(layer.name) or []
        if not values:
            raise NetworkMismatchError(self.path, f"layer {layer.name!r} ({layer.type}) has no input")
        return values[0]

    def write(self, layer: Layer, value: _Value) -> None:
        for top in layer.top:
            self.values[top] = value
            self.producer[top] = layer

    def source_layer(self, blob: str, passthrough: Sequence[str]) -> tuple[Layer, list[Layer]]:
        """Walk back from ``blob`` through layers of the ``passthrough`` types; return the first
        other producer and the layers passed."""
        passed: list[Layer] = []
        while True:
            layer = self.producer.get(blob)
            if layer is None:
                raise NetworkMismatchError(self.path, f"blob {blob!r} is not written by any layer")
            if layer.type not in passthrough:
                return layer, passed
            passed.append(layer)
            blob = layer.bottom[0]


def _on_convolution(graph: _Graph, layer: Layer) -> None:
    if len(graph.read(layer)) != 1:
        raise NetworkMismatchError(graph.path, f"layer {layer.name!r}: a convolution with {len(layer.bottom)} inputs is not supported")
    graph.convs.append(layer)
    graph.write(layer, _Value(layer.name))


def _on_elementwise(graph: _Graph, layer: Layer) -> None:
    """ReLU, BatchNorm, Scale: the blob keeps its source; the layer joins its ``post`` list."""
    values = graph.read(layer, consumer=False)
    if len(values) != 1:
        raise NetworkMismatchError(graph.path, f"layer {layer.name!r} ({layer.type}) should have one input, found {len(values)}")
    graph.write(layer, _Value(values[0].source, values[0].post + (layer.name,)))


def _on_other(graph: _Graph, layer: Layer) -> None:
    """Layers of the SSD head plumbing: traced back later from DetectionOutput."""
    graph.read(layer)
    graph.write(layer, _Value(None))


def _on_input(graph: _Graph, layer: Layer) -> None:
    graph.write(layer, _Value(None))


# Caffe layer type -> how walking the graph handles it.
_HANDLERS: dict[str, Callable[[_Graph, Layer], None]] = {
    "Convolution": _on_convolution,
    "ReLU": _on_elementwise,
    "ReLU6": _on_elementwise,
    "BatchNorm": _on_elementwise,
    "Scale": _on_elementwise,
    "Input": _on_input,
    "Permute": _on_other,
    "Flatten": _on_other,
    "Reshape": _on_other,
    "Softmax": _on_other,
    "Concat": _on_other,
    "PriorBox": _on_other,
    "DetectionOutput": _on_other,
}


# -- checks ------------------------------------------------------------------------------


def _mismatch(path, layer: Layer, role: str, what: str) -> NetworkMismatchError:
    return NetworkMismatchError(
        path,
        f"layer {layer.name!r} ({role}): {what}; this importer builds MobileNetV1-SSD "
        f"(stem, 13 depthwise-separable blocks, 1x1+3x3 extra stages, SSD heads), so the "
        f"prototxt describes another network",
    )


def _expect(path, layer: Layer, role: str, p: ConvParams, **expected) -> None:
    """Compare convolution parameters with what the builder makes; name the first difference."""
    for field, want in expected.items():
        got = getattr(p, field)
        if got != want:
            raise _mismatch(path, layer, role, f"expected {field} {want}, found {got}")


def _activation(graph: _Graph, conv: Layer, role: str) -> tuple[str, tuple[str, ...]]:
    """The activation after a trunk convolution and the BatchNorm/Scale layers before it.

    Every reader of the convolution's output must see the whole unit, conv -> [BN, Scale] -> ReLU.
    """
    path = graph.path
    reads = graph.reads.get(conv.name, [])
    if not reads:
        raise _mismatch(path, conv, role, "its output is never used")
    if any(value.post != reads[0].post for value in reads):
        raise _mismatch(path, conv, role, "its output is read both before and after its ReLU")
    first = [graph.layers[name] for name in reads[0].post]
    if not first or first[-1].type not in ACTIVATIONS:
        raise _mismatch(path, conv, role, "expected a ReLU after it")
    relu = first[-1]
    if float(relu.param("relu_param").get("negative_slope", 0.0)) != 0.0:
        raise _mismatch(path, relu, role, "leaky ReLU (negative_slope) is not supported")
    for layer in first[:-1]:
        if layer.type not in FOLDABLE:
            raise _mismatch(path, layer, role, f"expected only BatchNorm/Scale before the ReLU, found {layer.type}")
    return ACTIVATIONS[relu.type], tuple(l.name for l in first[:-1])


def _padding(path, layer: Layer, role: str, p: ConvParams) -> str:
    """A 3x3 convolution's Caffe padding in the builder's terms (pad 1 -> symmetric, 0 -> valid)."""
    if p.pad == (1, 1):
        return "symmetric"
    if p.pad == (0, 0):
        return "valid"
    raise _mismatch(path, layer, role, f"expected pad 1 (or 0), found {p.pad}")


@dataclass
class _Trunk:
    """The backbone and extra stages as read from the prototxt."""

    alpha: float
    activation: str
    stride2_padding: str
    extras: list[ExtraSpec]
    convs: list[ConvMapping]
    features: dict[str, str]  # Caffe conv name whose output is a feature map -> feature name


def _read_trunk(graph: _Graph, trunk: list[Layer]) -> _Trunk:
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
            raise _mismatch(path, layer, "trunk", f"expected it to read {expected}, it reads {found}")
        _expect(path, layer, "trunk", p, dilation=(1, 1))

    stem, sp = trunk[0], params[0]
    alpha = sp.num_output / STEM_FILTERS
    _expect(path, stem, "stem", sp, kernel=(3, 3), stride=(2, 2), group=1)
    stride2_padding = _padding(path, stem, "stem", sp)
    if stride2_padding != "symmetric":
        raise _mismatch(path, stem, "stem", "expected pad 1 (the builder pads stride-2 convolutions)")

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
        _expect(path, dw, role, dwp, kernel=(3, 3), stride=(stride, stride), num_output=channels, group=channels, pad=(1, 1))
        role = f"MobileNetV1 block {i}, pointwise 1x1"
        _expect(path, pw, role, pwp, kernel=(1, 1), stride=(1, 1), pad=(0, 0), group=1, num_output=int(filters * alpha))
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
        _expect(path, one, role, op, kernel=(1, 1), stride=(1, 1), pad=(0, 0), group=1)
        unit(one, op, role, f"extra{k}_1x1", False)
        role = f"extra stage {k}, 3x3"
        _expect(path, three, role, tp, kernel=(3, 3), group=1)
        if tp.stride[0] != tp.stride[1] or tp.stride[0] not in (1, 2):
            raise _mismatch(path, three, role, f"expected stride 1 or 2, found {tp.stride}")
        padding = _padding(path, three, role, tp)
        unit(three, tp, role, f"extra{k}_3x3", False)
        extras.append(ExtraSpec(bottleneck=op.num_output, filters=tp.num_output, kind="conv",
                                stride=tp.stride[0], padding=padding))
        features[three.name] = f"extra{k}"

    if len(activations) > 1:
        raise NetworkMismatchError(path, f"mixes activations {sorted(activations)}; the builder uses one for the whole network")
    return _Trunk(alpha, activations.pop(), stride2_padding, extras, convs, features)


# -- heads ---------------------------------------------------------------------------------


def _head_convs(graph: _Graph, concat: Layer, role: str) -> list[Layer]:
    """The convolutions feeding a loc/conf Concat through Permute(0, 2, 3, 1) + Flatten."""
    path = graph.path
    if int(concat.param("concat_param").get("axis", 1)) != 1:
        raise _mismatch(path, concat, role, "expected concat axis 1")
    convs = []
    for blob in concat.bottom:
        conv, passed = graph.source_layer(blob, ("Flatten", "Permute"))
        if conv.type != "Convolution":
            raise _mismatch(path, conv, role, f"expected a convolution feeding {concat.name!r}, found {conv.type}")
        permutes = [l for l in passed if l.type == "Permute"]
        orders = [[int(o) for o in l.param("permute_param").get_all("order")] for l in permutes]
        if orders != [[0, 2, 3, 1]]:
            # Caffe is NCHW: only this permutation gives SSD's (cell, box, value) order.
            raise _mismatch(path, conv, role, f"expected one Permute with order [0, 2, 3, 1] after it, found {orders}")
        convs.append(conv)
    return convs


def _detection_output(graph: _Graph) -> Layer:
    found = [l for l in graph.layers.values() if l.type == "DetectionOutput"]
    if len(found) != 1:
        raise NetworkMismatchError(
            graph.path, f"has {len(found)} DetectionOutput layers; an SSD deploy prototxt has exactly one"
        )
    det = found[0]
    if len(det.bottom) < 3:
        raise _mismatch(graph.path, det, "detection output", "expected 3 inputs (loc, conf, priors)")
    return det


def _detection_settings(path, det: Layer) -> tuple[int, DetectionSettings]:
    p = det.param("detection_output_param")
    role = "detection output"
    if "num_classes" not in p:
        raise _mismatch(path, det, role, "detection_output_param has no num_classes")
    # caffe.proto defaults: share_location true, background 0, code_type CORNER.
    checks = {
        "share_location": (bool(p.get("share_location", True)), True),
        "background_label_id": (int(p.get("background_label_id", 0)), 0),
        "code_type": (str(p.get("code_type", "CORNER")), "CENTER_SIZE"),
        "variance_encoded_in_target": (bool(p.get("variance_encoded_in_target", False)), False),
    }
    for name, (got, want) in checks.items():
        if got != want:
            raise _mismatch(path, det, role, f"expected {name} {want}, found {got} (the app decodes SSD's CENTER_SIZE boxes only)")
    nms = p.message("nms_param")
    settings = DetectionSettings(
        confidence_threshold=float(p.get("confidence_threshold", 0.0)),
        nms_threshold=float(nms.get("nms_threshold", 0.3)),
        top_k=int(nms.get("top_k", -1)),
        keep_top_k=int(p.get("keep_top_k", -1)),
    )
    return int(p.get("num_classes")), settings


def _check_softmax(graph: _Graph, det: Layer, num_classes: int) -> Layer:
    """The conf input must be a softmax over classes of the conf Concat; return the Concat."""
    path = graph.path
    concat, passed = graph.source_layer(det.bottom[1], ("Flatten", "Reshape", "Softmax"))
    softmaxes = [l for l in passed if l.type == "Softmax"]
    reshapes = [l for l in passed if l.type == "Reshape"]
    if len(softmaxes) != 1 or len(reshapes) != 1:
        raise _mismatch(path, det, "detection output", "expected its class scores to be Concat -> Reshape -> Softmax -> Flatten")
    dims = [int(d) for d in reshapes[0].param("reshape_param").message("shape").get_all("dim")]
    if len(dims) != 3 or dims[2] != num_classes:
        raise _mismatch(path, reshapes[0], "class scores", f"expected shape [0, -1, {num_classes}], found {dims}")
    axis = int(softmaxes[0].param("softmax_param").get("axis", 1))
    if axis not in (2, -1):
        raise _mismatch(path, softmaxes[0], "class scores", f"expected the softmax over classes (axis 2), found axis {axis}")
    if concat.type != "Concat":
        raise _mismatch(path, concat, "class scores", f"expected a Concat of the class predictions, found {concat.type}")
    return concat


def _prior_head(path, prior: Layer, source: str, input_size: tuple[int, int]) -> tuple[HeadSpec, tuple[float, ...]]:
    """A HeadSpec (and the variances) from one Caffe PriorBox layer."""
    p = prior.param("prior_box_param")
    role = f"default boxes of {source}"
    min_sizes = [float(v) for v in p.get_all("min_size")]
    max_sizes = [float(v) for v in p.get_all("max_size")]
    if len(min_sizes) != 1 or len(max_sizes) > 1:
        raise _mismatch(path, prior, role, f"expected one min_size and at most one max_size, found {min_sizes} and {max_sizes}")
    if max_sizes and max_sizes[0] <= min_sizes[0]:
        raise _mismatch(path, prior, role, f"max_size {max_sizes[0]} must exceed min_size {min_sizes[0]}")
    if bool(p.get("clip", False)):
        raise _mismatch(path, prior, role, "clip: true is not supported (the app's default boxes are not clipped)")
    h, w = input_size
    image = (int(p.get("img_h", p.get("img_size", h))), int(p.get("img_w", p.get("img_size", w))))
    if image != (h, w):
        raise _mismatch(path, prior, role, f"its image size {image} differs from the input size {input_size}")
    step = float(p.get("step", 0.0))
    if "step_h" in p or "step_w" in p:
        step_h, step_w = float(p.get("step_h", 0.0)), float(p.get("step_w", 0.0))
        if step_h != step_w:
            raise _mismatch(path, prior, role, f"step_h {step_h} != step_w {step_w} is not supported")
        step = step_h
    variances = tuple(float(v) for v in p.get_all("variance")) or (0.1,)  # Caffe's default
    if len(variances) == 1:
        variances = variances * 4
    if len(variances) != 4:
        raise _mismatch(path, prior, role, f"expected 1 or 4 variances, found {len(variances)}")
    head = caffe_prior_head(
        source,
        min_sizes[0],
        max_sizes[0] if max_sizes else None,
        [float(r) for r in p.get_all("aspect_ratio")],
        flip=bool(p.get("flip", True)),
        image_size=min(h, w),
        step=step if step > 0 else None,
        offset=float(p.get("offset", 0.5)),
    )
    return head, variances


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
    layers = net_layers(net, path)
    input_name, (_, channels, height, width) = input_blob(net, layers, path)
    if channels != 3:
        raise NetworkMismatchError(path, f"input {input_name!r} has {channels} channels; the app feeds 3 (BGR)")
    graph = _Graph(layers, input_name, path)

    det = _detection_output(graph)
    num_classes, settings = _detection_settings(path, det)
    loc_concat, _ = graph.source_layer(det.bottom[0], ("Flatten",))
    if loc_concat.type != "Concat":
        raise _mismatch(path, loc_concat, "box offsets", f"expected a Concat of the box predictions, found {loc_concat.type}")
    loc_convs = _head_convs(graph, loc_concat, "box predictions")
    conf_convs = _head_convs(graph, _check_softmax(graph, det, num_classes), "class predictions")
    prior_concat, _ = graph.source_layer(det.bottom[2], ("Flatten",))
    priors = [graph.source_layer(b, ())[0] for b in prior_concat.bottom] if prior_concat.type == "Concat" else []
    if not priors or any(p.type != "PriorBox" for p in priors):
        raise _mismatch(path, prior_concat, "default boxes", "expected a Concat of PriorBox layers")
    if not (len(loc_convs) == len(conf_convs) == len(priors)):
        raise _mismatch(path, det, "detection output",
                        f"{len(loc_convs)} box, {len(conf_convs)} class and {len(priors)} PriorBox inputs differ in number")

    head_names = {c.name for c in loc_convs + conf_convs}
    trunk = _read_trunk(graph, [c for c in graph.convs if c.name not in head_names])

    heads, variances, head_maps, kernel_sizes = [], set(), [], set()
    for loc, conf, prior in zip(loc_convs, conf_convs, priors):
        feature = graph.first_input(loc)
        if graph.first_input(conf) != feature or graph.first_input(prior) != feature:
            raise _mismatch(path, prior, "SSD head", f"{loc.name!r}, {conf.name!r} and {prior.name!r} read different feature maps")
        if feature.source not in trunk.features:
            raise _mismatch(path, loc, "SSD head",
                            f"it reads the output of {feature.source!r}; heads may read only a pointwise block output or an extra stage")
        source = trunk.features[feature.source]
        head, var = _prior_head(path, prior, source, (height, width))
        heads.append(head)
        variances.add(var)
        for conv, per_box, role in ((loc, 4, "box predictions"), (conf, num_classes, "class predictions")):
            p = ConvParams.of(conv, path)
            k = p.kernel[0]
            _expect(path, conv, f"{role} of {source}", p, kernel=(k, k), stride=(1, 1), pad=(k // 2, k // 2),
                    group=1, dilation=(1, 1), num_output=per_box * head.boxes_per_cell)
            kernel_sizes.add(k)
            prefix = "box" if per_box == 4 else "cls"
            head_maps.append(ConvMapping(conv.name, f"{prefix}_{source}", False, p.bias_term, conv.top[0]))
    if len(variances) != 1:
        raise NetworkMismatchError(path, f"its PriorBox layers use different variances {sorted(variances)}; the app uses one set")
    if len(kernel_sizes) != 1:
        raise NetworkMismatchError(path, f"its head convolutions mix kernel sizes {sorted(kernel_sizes)}; the app uses one")

    names = resolve_class_names(num_classes, class_names, f"{path or 'the prototxt'}")
    try:
        spec = ModelSpec(
            class_names=names,
            input_size=(height, width),
            preprocess=preprocess,
            backbone=BackboneSpec(alpha=trunk.alpha, activation=trunk.activation, use_bias=True,
                                  batch_norm=False, stride2_padding=trunk.stride2_padding),
            extras=tuple(trunk.extras),
            heads=tuple(heads),
            head_kernel_size=kernel_sizes.pop(),
            variances=variances.pop(),  # type: ignore[arg-type]
            layout=LAYOUT_NAME,
        ).validate()
    except SpecError as exc:
        raise NetworkMismatchError(path, f"does not make a valid model spec: {exc}") from exc
    _check_feature_sizes(graph, trunk, spec, (height, width))
    folded = {name: graph.layers[name] for m in trunk.convs for name in m.folded}
    return CaffePlan(spec=spec, convs=tuple(trunk.convs + head_maps), detection=settings, folded_layers=folded)


def _check_feature_sizes(graph: _Graph, trunk: _Trunk, spec: ModelSpec, input_size: tuple[int, int]) -> None:
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

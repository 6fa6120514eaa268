"""The SSD heads of a Caffe prototxt: found from ``DetectionOutput`` backwards.

``DetectionOutput`` reads three Concats: box offsets (``mbox_loc``), class scores
(``mbox_conf`` -> Reshape -> Softmax -> Flatten) and default boxes (``mbox_priorbox``). Each
Concat input leads back (through Permute(0, 2, 3, 1) + Flatten) to one head convolution or
PriorBox layer; the k-th of each read the same feature map. PriorBox parameters become a
:class:`~models.spec.HeadSpec` with Caffe's box order (see :func:`models.layouts.caffe_prior_head`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..layouts import caffe_prior_head
from ..spec import HeadSpec
from .errors import NetworkMismatchError
from .graph import NetGraph
from .net import ConvParams, Layer
from .trunk import ConvMapping, Trunk, expect, mismatch


@dataclass(frozen=True)
class DetectionSettings:
    """The prototxt's DetectionOutput thresholds (for reference; the app has its own settings)."""

    confidence_threshold: float
    nms_threshold: float
    top_k: int
    keep_top_k: int


def _head_convs(graph: NetGraph, concat: Layer, role: str) -> list[Layer]:
    """The convolutions feeding a loc/conf Concat through Permute(0, 2, 3, 1) + Flatten."""
    path = graph.path
    if int(concat.param("concat_param").get("axis", 1)) != 1:
        raise mismatch(path, concat, role, "expected concat axis 1")
    convs = []
    for blob in concat.bottom:
        conv, passed = graph.source_layer(blob, ("Flatten", "Permute"))
        if conv.type != "Convolution":
            raise mismatch(path, conv, role, f"expected a convolution feeding {concat.name!r}, found {conv.type}")
        permutes = [l for l in passed if l.type == "Permute"]
        orders = [[int(o) for o in l.param("permute_param").get_all("order")] for l in permutes]
        if orders != [[0, 2, 3, 1]]:
            # Caffe is NCHW: only this permutation gives SSD's (cell, box, value) order.
            raise mismatch(path, conv, role, f"expected one Permute with order [0, 2, 3, 1] after it, found {orders}")
        convs.append(conv)
    return convs


def _detection_output(graph: NetGraph) -> Layer:
    found = [l for l in graph.layers.values() if l.type == "DetectionOutput"]
    if len(found) != 1:
        raise NetworkMismatchError(
            graph.path, f"has {len(found)} DetectionOutput layers; an SSD deploy prototxt has exactly one"
        )
    det = found[0]
    if len(det.bottom) < 3:
        raise mismatch(graph.path, det, "detection output", "expected 3 inputs (loc, conf, priors)")
    return det


def _detection_settings(path, det: Layer) -> tuple[int, DetectionSettings]:
    p = det.param("detection_output_param")
    role = "detection output"
    if "num_classes" not in p:
        raise mismatch(path, det, role, "detection_output_param has no num_classes")
    # caffe.proto defaults: share_location true, background 0, code_type CORNER.
    checks = {
        "share_location": (bool(p.get("share_location", True)), True),
        "background_label_id": (int(p.get("background_label_id", 0)), 0),
        "code_type": (str(p.get("code_type", "CORNER")), "CENTER_SIZE"),
        "variance_encoded_in_target": (bool(p.get("variance_encoded_in_target", False)), False),
    }
    for name, (got, want) in checks.items():
        if got != want:
            raise mismatch(path, det, role, f"expected {name} {want}, found {got} (the app decodes SSD's CENTER_SIZE boxes only)")
    nms = p.message("nms_param")
    settings = DetectionSettings(
        confidence_threshold=float(p.get("confidence_threshold", 0.0)),
        nms_threshold=float(nms.get("nms_threshold", 0.3)),
        top_k=int(nms.get("top_k", -1)),
        keep_top_k=int(p.get("keep_top_k", -1)),
    )
    return int(p.get("num_classes")), settings


def _check_softmax(graph: NetGraph, det: Layer, num_classes: int) -> Layer:
    """The conf input must be a softmax over classes of the conf Concat; return the Concat."""
    path = graph.path
    concat, passed = graph.source_layer(det.bottom[1], ("Flatten", "Reshape", "Softmax"))
    softmaxes = [l for l in passed if l.type == "Softmax"]
    reshapes = [l for l in passed if l.type == "Reshape"]
    if len(softmaxes) != 1 or len(reshapes) != 1:
        raise mismatch(path, det, "detection output", "expected its class scores to be Concat -> Reshape -> Softmax -> Flatten")
    dims = [int(d) for d in reshapes[0].param("reshape_param").message("shape").get_all("dim")]
    if len(dims) != 3 or dims[2] != num_classes:
        raise mismatch(path, reshapes[0], "class scores", f"expected shape [0, -1, {num_classes}], found {dims}")
    axis = int(softmaxes[0].param("softmax_param").get("axis", 1))
    if axis not in (2, -1):
        raise mismatch(path, softmaxes[0], "class scores", f"expected the softmax over classes (axis 2), found axis {axis}")
    if concat.type != "Concat":
        raise mismatch(path, concat, "class scores", f"expected a Concat of the class predictions, found {concat.type}")
    return concat


def _prior_head(path, prior: Layer, source: str, input_size: tuple[int, int]) -> tuple[HeadSpec, tuple[float, ...]]:
    """A HeadSpec (and the variances) from one Caffe PriorBox layer."""
    p = prior.param("prior_box_param")
    role = f"default boxes of {source}"
    min_sizes = [float(v) for v in p.get_all("min_size")]
    max_sizes = [float(v) for v in p.get_all("max_size")]
    if len(min_sizes) != 1 or len(max_sizes) > 1:
        raise mismatch(path, prior, role, f"expected one min_size and at most one max_size, found {min_sizes} and {max_sizes}")
    if max_sizes and max_sizes[0] <= min_sizes[0]:
        raise mismatch(path, prior, role, f"max_size {max_sizes[0]} must exceed min_size {min_sizes[0]}")
    if bool(p.get("clip", False)):
        raise mismatch(path, prior, role, "clip: true is not supported (the app's default boxes are not clipped)")
    h, w = input_size
    image = (int(p.get("img_h", p.get("img_size", h))), int(p.get("img_w", p.get("img_size", w))))
    if image != (h, w):
        raise mismatch(path, prior, role, f"its image size {image} differs from the input size {input_size}")
    step = float(p.get("step", 0.0))
    if "step_h" in p or "step_w" in p:
        step_h, step_w = float(p.get("step_h", 0.0)), float(p.get("step_w", 0.0))
        if step_h != step_w:
            raise mismatch(path, prior, role, f"step_h {step_h} != step_w {step_w} is not supported")
        step = step_h
    variances = tuple(float(v) for v in p.get_all("variance")) or (0.1,)  # Caffe's default
    if len(variances) == 1:
        variances = variances * 4
    if len(variances) != 4:
        raise mismatch(path, prior, role, f"expected 1 or 4 variances, found {len(variances)}")
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


@dataclass(frozen=True)
class HeadLayers:
    """The layers of each SSD head, in DetectionOutput's order, and the class count."""

    loc: list[Layer]
    conf: list[Layer]
    priors: list[Layer]
    num_classes: int
    settings: DetectionSettings


def find_head_layers(graph: NetGraph) -> HeadLayers:
    """Trace DetectionOutput's inputs back to the head convolutions and PriorBox layers."""
    path = graph.path
    det = _detection_output(graph)
    num_classes, settings = _detection_settings(path, det)
    loc_concat, _ = graph.source_layer(det.bottom[0], ("Flatten",))
    if loc_concat.type != "Concat":
        raise mismatch(path, loc_concat, "box offsets", f"expected a Concat of the box predictions, found {loc_concat.type}")
    loc = _head_convs(graph, loc_concat, "box predictions")
    conf = _head_convs(graph, _check_softmax(graph, det, num_classes), "class predictions")
    prior_concat, _ = graph.source_layer(det.bottom[2], ("Flatten",))
    priors = [graph.source_layer(b, ())[0] for b in prior_concat.bottom] if prior_concat.type == "Concat" else []
    if not priors or any(p.type != "PriorBox" for p in priors):
        raise mismatch(path, prior_concat, "default boxes", "expected a Concat of PriorBox layers")
    if not (len(loc) == len(conf) == len(priors)):
        raise mismatch(path, det, "detection output",
                       f"{len(loc)} box, {len(conf)} class and {len(priors)} PriorBox inputs differ in number")
    return HeadLayers(loc, conf, priors, num_classes, settings)


@dataclass(frozen=True)
class Heads:
    """The heads as spec fields, and where their convolutions' weights go."""

    heads: tuple[HeadSpec, ...]
    variances: tuple[float, ...]  # four
    kernel_size: int
    convs: list[ConvMapping]


def _head_mapping(path, conv: Layer, values_per_box: int, head: HeadSpec, role: str) -> tuple[ConvMapping, int]:
    """Check one head convolution; return its mapping and kernel size."""
    p = ConvParams.of(conv, path)
    k = p.kernel[0]
    expect(path, conv, f"{role} of {head.source}", p, kernel=(k, k), stride=(1, 1), pad=(k // 2, k // 2),
           group=1, dilation=(1, 1), num_output=values_per_box * head.boxes_per_cell)
    prefix = "box" if role == "box predictions" else "cls"
    return ConvMapping(conv.name, f"{prefix}_{head.source}", False, p.bias_term, conv.top[0]), k


def read_heads(graph: NetGraph, found: HeadLayers, trunk: Trunk, input_size: tuple[int, int]) -> Heads:
    """HeadSpecs from the PriorBox layers, each head's feature map named as the builder names it."""
    path = graph.path
    heads, variances, kernel_sizes, convs = [], set(), set(), []
    for loc, conf, prior in zip(found.loc, found.conf, found.priors):
        feature = graph.first_input(loc)
        if graph.first_input(conf) != feature or graph.first_input(prior) != feature:
            raise mismatch(path, prior, "SSD head", f"{loc.name!r}, {conf.name!r} and {prior.name!r} read different feature maps")
        if feature.source not in trunk.features:
            raise mismatch(path, loc, "SSD head",
                           f"it reads the output of {feature.source!r}; heads may read only a pointwise block output or an extra stage")
        head, var = _prior_head(path, prior, trunk.features[feature.source], input_size)
        heads.append(head)
        variances.add(var)
        for conv, values_per_box, role in ((loc, 4, "box predictions"), (conf, found.num_classes, "class predictions")):
            mapping, k = _head_mapping(path, conv, values_per_box, head, role)
            convs.append(mapping)
            kernel_sizes.add(k)
    if len(variances) != 1:
        raise NetworkMismatchError(path, f"its PriorBox layers use different variances {sorted(variances)}; the app uses one set")
    if len(kernel_sizes) != 1:
        raise NetworkMismatchError(path, f"its head convolutions mix kernel sizes {sorted(kernel_sizes)}; the app uses one")
    return Heads(tuple(heads), variances.pop(), kernel_sizes.pop(), convs)

"""The model spec: everything needed to rebuild a detector, as plain data.

A :class:`ModelSpec` describes one SSD network completely: input size, class names,
preprocessing, backbone options, the extra feature stages, which feature maps predict and
with which default boxes, and the box-coding variances. It is saved inside every model file
(see :mod:`models.model_file`), so a file always carries its own class names and box layout.

Two layouts ship as presets in :mod:`models.layouts` (the seed MobileNet-SSD with 8,752 boxes
and the Caffe MobileNet-SSD with 1,917 boxes); both are instances of this one dataclass, built
by one builder, never separate code paths.

``to_dict()`` gives only YAML/JSON-safe types (str, int, float, bool, None, lists, dicts), so
``yaml.safe_dump(spec.to_dict())`` and ``ModelSpec.from_dict(yaml.safe_load(text))`` round-trip.
This module itself imports only the standard library.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

ACTIVATIONS = ("relu", "relu6")
HEAD_KINDS = ("conv", "separable")
STRIDE2_PADDINGS = ("same", "symmetric", "valid")
EXTRA_KINDS = ("separable", "conv")
CHANNEL_ORDERS = ("BGR", "RGB")

# The feature maps a head may read, per backbone kind, in network order (then "extraN").
# MobileNetV1: its 13 depthwise-separable blocks. EfficientNet-Lite0: its 16 inverted-residual
# blocks and "top", the 1x1 convolution to 1280 channels that ends the ImageNet trunk.
BACKBONE_BLOCKS = 13
BACKBONE_FEATURES: dict[str, tuple[str, ...]] = {
    "mobilenet_v1": tuple(f"block{i}" for i in range(1, 14)),
    "efficientnet_lite0": tuple(f"block{i}" for i in range(1, 17)) + ("top",),
}


# Bounds on what a model file can make the program allocate. A detector's input is a few
# hundred pixels (300 here); 2048 leaves room for high-resolution variants. A file asking for
# 20000x20000 grew this process past 8 GB before it was refused (issue 15).
MAX_INPUT_SIDE = 2048
MAX_LIST_LENGTH = 32  # heads, extra stages, aspect ratios per head


class SpecError(ValueError):
    """A model spec is inconsistent or a field has the wrong type or value."""


@dataclass(frozen=True)
class PreprocessSpec:
    """How a BGR uint8 frame becomes the network's input tensor (inside the model).

    ``x = (pixel[channel_order] - mean) * scale``, with ``mean`` and ``scale`` given per channel
    in the network's channel order. MobileNet style: RGB, mean 127.5, scale 1/127.5 (range
    [-1, 1]); Caffe MobileNet-SSD: BGR, mean 127.5, scale 0.007843.
    """

    channel_order: str = "RGB"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    scale: tuple[float, float, float] = (1 / 127.5, 1 / 127.5, 1 / 127.5)

    def validate(self) -> None:
        if self.channel_order not in CHANNEL_ORDERS:
            raise SpecError(
                f"preprocess.channel_order must be one of {CHANNEL_ORDERS}, got {self.channel_order!r}"
            )
        for name in ("mean", "scale"):
            value = getattr(self, name)
            if len(value) != 3:
                raise SpecError(f"preprocess.{name} needs 3 values (one per channel), got {value!r}")


@dataclass(frozen=True)
class BackboneSpec:
    """Backbone options.

    ``kind``: "mobilenet_v1" (Howard et al. 2017, Table 1; every option below applies) or
    "efficientnet_lite0" (Tan & Le 2019, the "Lite" variant: no squeeze-excite, ReLU6; its
    published ImageNet weights fix alpha 1.0, ReLU6, batch norm and "same" padding).

    ``stride2_padding``: "same" pads a stride-2 3x3 convolution explicitly the Keras way,
    ((0,1),(0,1)) on an even input size and ((1,1),(1,1)) on an odd one (the output is
    ceil(n/2)), then runs a "valid" convolution; "symmetric" pads one pixel on every side as
    Caffe's ``pad: 1`` does.
    ``use_bias`` / ``batch_norm``: the seed layout has no biases and batch norm after every
    convolution; an imported Caffe model has its batch norm folded into biased convolutions.
    """

    alpha: float = 1.0
    activation: str = "relu6"
    use_bias: bool = False
    batch_norm: bool = True
    stride2_padding: str = "same"
    kind: str = "mobilenet_v1"

    def validate(self) -> None:
        if self.kind not in BACKBONE_FEATURES:
            raise SpecError(f"backbone.kind must be one of {sorted(BACKBONE_FEATURES)}, got {self.kind!r}")
        if self.kind == "efficientnet_lite0":
            fixed = {"alpha": 1.0, "activation": "relu6", "use_bias": False, "batch_norm": True,
                     "stride2_padding": "same"}
            wrong = {k: getattr(self, k) for k, v in fixed.items() if getattr(self, k) != v}
            if wrong:
                raise SpecError(
                    f"backbone: efficientnet_lite0 has fixed options {fixed} (its ImageNet weights "
                    f"were trained so); got {wrong}"
                )
        if not (0 < self.alpha <= 4):
            raise SpecError(f"backbone.alpha (width multiplier) must be in (0, 4], got {self.alpha}")
        if self.activation not in ACTIVATIONS:
            raise SpecError(f"backbone.activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.stride2_padding not in ("same", "symmetric"):
            raise SpecError(
                f"backbone.stride2_padding must be 'same' or 'symmetric', got {self.stride2_padding!r}"
            )


@dataclass(frozen=True)
class ExtraSpec:
    """One extra feature stage after the backbone (SSD paper, Fig. 2 "extra feature layers").

    A 1x1 convolution to ``bottleneck`` channels, then a stride-``stride`` 3x3 stage to
    ``filters`` channels: a depthwise-separable block (``kind="separable"``) or a plain 3x3
    convolution (``kind="conv"``, as in the Caffe MobileNet-SSD). ``padding`` applies to the
    3x3 stage: "same", "symmetric" (Caffe ``pad: 1``) or "valid" (no padding: 3x3 -> 1x1).
    Activation, bias and batch norm follow the backbone's options.
    """

    bottleneck: int
    filters: int
    kind: str = "separable"
    stride: int = 2
    padding: str = "same"

    def validate(self, index: int) -> None:
        where = f"extras[{index}]"
        if self.kind not in EXTRA_KINDS:
            raise SpecError(f"{where}.kind must be one of {EXTRA_KINDS}, got {self.kind!r}")
        if self.padding not in STRIDE2_PADDINGS:
            raise SpecError(f"{where}.padding must be one of {STRIDE2_PADDINGS}, got {self.padding!r}")
        if self.stride not in (1, 2):
            raise SpecError(f"{where}.stride must be 1 or 2, got {self.stride}")
        if self.bottleneck < 1 or self.filters < 1:
            raise SpecError(f"{where}: bottleneck and filters must be positive, got {self}")


@dataclass(frozen=True)
class HeadSpec:
    """One prediction layer: the feature map it reads and the default boxes of each cell.

    Sizes are fractions of the input side (normalised). Per cell, boxes come in the order of
    ``aspect_ratios``; at ratio 1 a box of side ``min_size`` is followed, when ``max_size`` is
    set, by a second square box of side ``sqrt(min_size * max_size)`` (SSD paper, Sec. 2.2;
    the same order as Caffe's PriorBox and ssd_keras). A ratio r gives width
    ``min_size * sqrt(r)`` and height ``min_size / sqrt(r)``.
    ``step`` is the distance between cell centres in input pixels; ``None`` means input size
    divided by the feature map size (Caffe's default). ``offset`` is the centre's position in
    the cell, in steps.
    ``fuse`` names a coarser feature map (half the source's size, or a quarter, ...: some
    stride-2 stages later), or a tuple of them, whose features are added to the source's
    before this head predicts (a top-down path: FPN, Lin et al. 2017; FSSD, Li & Zhou 2017).
    SSD's finest map comes early in the backbone and knows little of what it sees, so its
    small objects score low; the coarser maps' semantics lift them. ``None``: the head reads
    its source alone (SSD). One map is written as its name, several as a tuple (a YAML list).
    """

    source: str
    min_size: float
    max_size: float | None
    aspect_ratios: tuple[float, ...]
    step: float | None = None
    offset: float = 0.5
    fuse: str | tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # One spelling per meaning, so that equal heads compare equal after a YAML round trip:
        # one map is its name, several a tuple (YAML gives a list).
        if isinstance(self.fuse, (list, tuple)):
            maps = tuple(self.fuse)
            object.__setattr__(self, "fuse", (maps[0] if len(maps) == 1 else maps) if maps else None)

    @property
    def fuse_maps(self) -> tuple[str, ...]:
        """The maps of ``fuse`` as a tuple (empty without a top-down path)."""
        if self.fuse is None:
            return ()
        return tuple(self.fuse) if isinstance(self.fuse, tuple) else (self.fuse,)

    @property
    def boxes_per_cell(self) -> int:
        extra = 1 if (self.max_size is not None and 1.0 in self.aspect_ratios) else 0
        return len(self.aspect_ratios) + extra

    def validate(self, index: int) -> None:
        where = f"heads[{index}] ({self.source})"
        if not self.aspect_ratios:
            raise SpecError(f"{where}: aspect_ratios is empty; give at least [1.0]")
        if any(r <= 0 for r in self.aspect_ratios):
            raise SpecError(f"{where}: aspect ratios must be positive, got {self.aspect_ratios}")
        if self.min_size <= 0:
            raise SpecError(f"{where}: min_size must be positive, got {self.min_size}")
        if self.max_size is not None and self.max_size <= 0:
            raise SpecError(f"{where}: max_size must be positive or null, got {self.max_size}")
        if self.step is not None and self.step <= 0:
            raise SpecError(f"{where}: step must be positive or null, got {self.step}")
        maps = self.fuse_maps
        if not all(isinstance(m, str) for m in maps):
            raise SpecError(f"{where}: fuse must be a feature map's name, a list of them or null, got {self.fuse!r}")
        if len(set(maps)) != len(maps) or self.source in maps:
            raise SpecError(f"{where}: fuse {list(maps)} names a map twice or the head's own source; "
                            "name each coarser map once")


@dataclass(frozen=True)
class ModelSpec:
    """A complete, serialisable description of one SSD detector.

    ``class_names`` are the user's classes only; background is internal (class index 0 of the
    network's output) and is never listed here. ``input_size`` is (height, width) in pixels.
    ``head_kind``: "conv" predicts with one k x k convolution per head (SSD); "separable" with
    a 3x3 depthwise convolution + batch norm + ReLU6, then a 1x1 convolution (SSDLite,
    Sandler et al. 2018, Sec. 6.3), far cheaper on wide feature maps.
    """

    class_names: tuple[str, ...]
    input_size: tuple[int, int] = (300, 300)
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    backbone: BackboneSpec = field(default_factory=BackboneSpec)
    extras: tuple[ExtraSpec, ...] = ()
    heads: tuple[HeadSpec, ...] = ()
    head_kernel_size: int = 3
    head_kind: str = "conv"
    variances: tuple[float, ...] = (0.1, 0.1, 0.2, 0.2)  # four, checked below
    layout: str = "custom"

    @property
    def num_classes(self) -> int:
        """Number of network outputs per box: the user's classes plus background."""
        return len(self.class_names) + 1

    def validate(self) -> "ModelSpec":
        """Check every field; return self so calls chain. Raises :class:`SpecError`."""
        if not self.class_names:
            raise SpecError("class_names is empty: a detector needs at least one class")
        if len(set(self.class_names)) != len(self.class_names):
            dup = sorted({n for n in self.class_names if self.class_names.count(n) > 1})
            raise SpecError(f"class_names has duplicates: {dup}")
        for name in self.class_names:
            if not isinstance(name, str) or not name.strip():
                raise SpecError(f"class names must be non-empty strings, got {name!r}")
            if name.strip().lower() == "background":
                raise SpecError(
                    "'background' is internal and must not be listed in class_names; "
                    "remove it (the network adds its own background class)"
                )
        h, w = self.input_size
        if h < 32 or w < 32:
            raise SpecError(f"input_size must be at least 32x32, got {self.input_size}")
        if h > MAX_INPUT_SIDE or w > MAX_INPUT_SIDE:
            raise SpecError(f"input_size {h}x{w} is larger than the limit of {MAX_INPUT_SIDE}x{MAX_INPUT_SIDE} "
                            f"(detectors take a few hundred pixels; the file is damaged or crafted)")
        for name, items in (("heads", self.heads), ("extras", self.extras),
                            *((f"heads[{i}].aspect_ratios", hd.aspect_ratios) for i, hd in enumerate(self.heads))):
            if len(items) > MAX_LIST_LENGTH:
                raise SpecError(f"{name} has {len(items)} entries, more than the limit of {MAX_LIST_LENGTH}")
        if len(self.variances) != 4 or any(v <= 0 for v in self.variances):
            raise SpecError(f"variances needs 4 positive numbers, got {self.variances}")
        if self.head_kernel_size not in (1, 3):
            raise SpecError(f"head_kernel_size must be 1 or 3, got {self.head_kernel_size}")
        if self.head_kind not in HEAD_KINDS:
            raise SpecError(f"head_kind must be one of {HEAD_KINDS}, got {self.head_kind!r}")
        self.preprocess.validate()
        self.backbone.validate()
        for i, extra in enumerate(self.extras):
            extra.validate(i)
        if not self.heads:
            raise SpecError("heads is empty: a detector needs at least one prediction layer")
        known = set(feature_names(self))
        for i, head in enumerate(self.heads):
            head.validate(i)
            if head.source not in known:
                raise SpecError(
                    f"heads[{i}].source {head.source!r} is not a feature map of this network; "
                    f"expected one of {', '.join(feature_names(self))}"
                )
            for name in head.fuse_maps:
                if name not in known:
                    raise SpecError(
                        f"heads[{i}].fuse {name!r} is not a feature map of this network; "
                        f"expected one of {', '.join(feature_names(self))} (or null: no fusion)"
                    )
        return self

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-safe data (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelSpec":
        """Build and validate a spec from ``to_dict()`` output (or hand-written YAML)."""
        if not isinstance(data, dict):
            raise SpecError(f"a model spec must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SpecError(f"unknown model spec fields {sorted(unknown)}; known fields: {sorted(known)}")
        if "class_names" not in data:
            raise SpecError("model spec has no class_names")
        try:
            spec = cls(
                class_names=tuple(str(n) for n in data["class_names"]),
                input_size=_pair(data.get("input_size", (300, 300)), "input_size"),
                preprocess=_sub(PreprocessSpec, data.get("preprocess", {}), "preprocess", tuple_fields=("mean", "scale")),
                backbone=_sub(BackboneSpec, data.get("backbone", {}), "backbone"),
                extras=tuple(
                    _sub(ExtraSpec, e, f"extras[{i}]") for i, e in enumerate(data.get("extras", []))
                ),
                heads=tuple(
                    _sub(HeadSpec, h, f"heads[{i}]", tuple_fields=("aspect_ratios",))
                    for i, h in enumerate(data.get("heads", []))
                ),
                head_kernel_size=int(data.get("head_kernel_size", 3)),
                head_kind=str(data.get("head_kind", "conv")),
                variances=tuple(float(v) for v in data.get("variances", (0.1, 0.1, 0.2, 0.2))),
                layout=str(data.get("layout", "custom")),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, SpecError):
                raise
            raise SpecError(f"model spec has a field of the wrong type: {exc}") from exc
        return spec.validate()

    def with_classes(self, class_names: list[str] | tuple[str, ...]) -> "ModelSpec":
        """The same network with other classes (only the class predictors change)."""
        return dataclasses.replace(self, class_names=tuple(class_names)).validate()


def feature_names(spec: ModelSpec) -> list[str]:
    """Names of the feature maps a head can read, in network order."""
    return list(BACKBONE_FEATURES[spec.backbone.kind]) + [
        f"extra{i}" for i in range(1, len(spec.extras) + 1)
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    values = tuple(int(v) for v in value)
    if len(values) != 2:
        raise SpecError(f"{name} needs (height, width), got {value!r}")
    return values


def _sub(cls: type, data: Any, where: str, tuple_fields: tuple[str, ...] = ()) -> Any:
    if not isinstance(data, dict):
        raise SpecError(f"{where} must be a mapping, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise SpecError(f"{where}: unknown fields {sorted(unknown)}; known fields: {sorted(known)}")
    values = dict(data)
    for name in tuple_fields:
        if name in values and values[name] is not None:
            values[name] = tuple(float(v) for v in values[name])
    try:
        return cls(**values)
    except TypeError as exc:
        raise SpecError(f"{where}: {exc}") from exc

"""A parsed deploy prototxt as a list of layers with typed parameters.

Layers keep the prototxt's order (Caffe runs them in that order). Layers that a
``include { phase: TRAIN }`` / ``exclude { phase: TEST }`` rule keeps out of the test net are
dropped, so a deploy or test prototxt reads as OpenCV-DNN and Caffe's test net see it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .errors import NetworkMismatchError
from .prototxt import Message


@dataclass(frozen=True)
class Layer:
    """One prototxt layer: name, type, input and output blob names, and its full message."""

    name: str
    type: str
    bottom: tuple[str, ...]
    top: tuple[str, ...]
    message: Message

    def param(self, name: str) -> Message:
        """A ``*_param`` block (empty when absent: every field at its default)."""
        return self.message.message(name)


def _in_test_phase(layer: Message) -> bool:
    """Caffe's NetStateRule check, reduced to the phase (the only rule deploy files use)."""
    includes = layer.get_all("include")
    if includes and not any(rule.get("phase", "TEST") == "TEST" for rule in includes):
        return False
    return not any(rule.get("phase") == "TEST" for rule in layer.get_all("exclude"))


def net_layers(net: Message, path: str | os.PathLike | None = None) -> list[Layer]:
    """The test-phase layers of a NetParameter message, in order."""
    if "layers" in net and "layer" not in net:
        raise NetworkMismatchError(
            path,
            "uses the old V1 'layers' format; upgrade it with Caffe's upgrade_net_proto_text tool "
            "(or use the current 'layer' format)",
        )
    layers = []
    for msg in net.get_all("layer"):
        if not isinstance(msg, Message):
            raise NetworkMismatchError(path, f"has a 'layer' field that is not a block: {msg!r}")
        if not _in_test_phase(msg):
            continue
        layers.append(
            Layer(
                name=str(msg.get("name", "")),
                type=str(msg.get("type", "")),
                bottom=tuple(str(b) for b in msg.get_all("bottom")),
                top=tuple(str(t) for t in msg.get_all("top")),
                message=msg,
            )
        )
    if not layers:
        raise NetworkMismatchError(path, "has no layers, so it is not a Caffe network prototxt")
    return layers


def input_blob(net: Message, layers: list[Layer], path: str | os.PathLike | None = None) -> tuple[str, tuple[int, ...]]:
    """Name and (N, C, H, W) shape of the network input.

    Deploy files state it as ``input`` + ``input_shape { dim ... }``, as ``input`` + four
    ``input_dim``, or as a layer of type ``Input`` (``input_param { shape { dim ... } }``).
    """
    if "input" in net:
        name = str(net.get_all("input")[0])
        if "input_shape" in net:
            dims = net.get_all("input_shape")[0].get_all("dim")
        else:
            dims = net.get_all("input_dim")[:4]
    else:
        inputs = [layer for layer in layers if layer.type == "Input"]
        if not inputs:
            raise NetworkMismatchError(
                path, "declares no input (expected 'input' with 'input_shape', or an Input layer)"
            )
        name = inputs[0].top[0] if inputs[0].top else inputs[0].name
        dims = inputs[0].param("input_param").message("shape").get_all("dim")
    shape = tuple(int(d) for d in dims)
    if len(shape) != 4:
        raise NetworkMismatchError(path, f"input {name!r} should have 4 dimensions (N, C, H, W), got {shape}")
    return name, shape


def _pair(msg: Message, name: str, default: int, where: str, path: Any) -> tuple[int, int]:
    """A Caffe spatial parameter: ``name`` (once for both axes, or (h, w)) or ``name_h``/``name_w``."""
    if f"{name}_h" in msg or f"{name}_w" in msg:
        return int(msg.get(f"{name}_h", default)), int(msg.get(f"{name}_w", default))
    values = [int(v) for v in msg.get_all(name)]
    if not values:
        return default, default
    if len(values) > 2:
        raise NetworkMismatchError(path, f"layer {where!r}: {name} has {len(values)} values; only 2-D convolutions are supported")
    return (values[0], values[-1])


@dataclass(frozen=True)
class ConvParams:
    """The ``convolution_param`` of a Convolution layer, defaults applied (caffe.proto)."""

    num_output: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int]
    group: int
    bias_term: bool

    @classmethod
    def of(cls, layer: Layer, path: str | os.PathLike | None = None) -> "ConvParams":
        try:
            return cls._of(layer, path)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, NetworkMismatchError):
                raise
            raise NetworkMismatchError(path, f"layer {layer.name!r}: convolution_param has a value of the wrong type ({exc})") from exc

    @classmethod
    def _of(cls, layer: Layer, path: str | os.PathLike | None) -> "ConvParams":
        p = layer.param("convolution_param")
        if "num_output" not in p:
            raise NetworkMismatchError(path, f"layer {layer.name!r}: convolution_param has no num_output")
        kernel = _pair(p, "kernel_size", 0, layer.name, path)
        if kernel == (0, 0) and "kernel_h" in p:
            kernel = (int(p.get("kernel_h")), int(p.get("kernel_w")))
        if min(kernel) < 1:
            raise NetworkMismatchError(path, f"layer {layer.name!r}: convolution_param has no kernel_size")
        return cls(
            num_output=int(p.get("num_output")),
            kernel=kernel,
            stride=_pair(p, "stride", 1, layer.name, path),
            pad=_pair(p, "pad", 0, layer.name, path),
            dilation=_pair(p, "dilation", 1, layer.name, path),
            group=int(p.get("group", 1)),
            bias_term=bool(p.get("bias_term", True)),
        )

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Caffe's output size: floor((n + 2 pad - dilation (k - 1) - 1) / stride) + 1 per axis."""
        return tuple(  # type: ignore[return-value]
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, p, d, k, s in zip(size, self.pad, self.dilation, self.kernel, self.stride)
        )

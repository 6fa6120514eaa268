"""A deploy prototxt as a data-flow graph: what each blob holds when each layer reads it.

Caffe layers may work in place (``ReLU``, ``BatchNorm`` and ``Scale`` usually write the blob
they read), so a blob name alone does not say what it holds. Walking the layers in order, each
blob is tracked as a :class:`BlobValue`: the convolution that made it plus the per-element
layers applied since. Every layer's inputs are recorded as it runs, so later checks see
exactly what a head or the next convolution consumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .errors import NetworkMismatchError
from .net import Layer


@dataclass(frozen=True)
class BlobValue:
    """A blob's content: made by convolution ``source`` (None: the input), then ``post`` layers."""

    source: str | None
    post: tuple[str, ...] = ()  # layer names


class NetGraph:
    """The prototxt's layers walked in order: what each blob holds and who made it."""

    def __init__(self, layers: list[Layer], input_name: str, path):
        self.path = path
        self.values: dict[str, BlobValue] = {input_name: BlobValue(None)}
        self.producer: dict[str, Layer] = {}
        self.inputs: dict[str, list[BlobValue]] = {}  # layer name -> what it read, when it ran
        self.reads: dict[str, list[BlobValue]] = {}  # conv name -> every read of its output
        self.convs: list[Layer] = []
        self.layers: dict[str, Layer] = {}
        for layer in layers:
            handler = HANDLERS.get(layer.type)
            if handler is None:
                raise NetworkMismatchError(
                    path,
                    f"layer {layer.name!r} has type {layer.type!r}, which MobileNet-SSD does not use "
                    f"(supported: {', '.join(sorted(HANDLERS))}); this prototxt is another network",
                )
            self.layers[layer.name] = layer
            handler(self, layer)

    def read(self, layer: Layer, consumer: bool = True) -> list[BlobValue]:
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

    def first_input(self, layer: Layer) -> BlobValue:
        values = self.inputs.get(layer.name) or []
        if not values:
            raise NetworkMismatchError(self.path, f"layer {layer.name!r} ({layer.type}) has no input")
        return values[0]

    def write(self, layer: Layer, value: BlobValue) -> None:
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
            if not layer.bottom or layer.bottom[0] == blob:
                raise NetworkMismatchError(self.path, f"layer {layer.name!r} ({layer.type}) must not work in place here")
            passed.append(layer)
            blob = layer.bottom[0]


def _on_convolution(graph: NetGraph, layer: Layer) -> None:
    if len(graph.read(layer)) != 1:
        raise NetworkMismatchError(graph.path, f"layer {layer.name!r}: a convolution with {len(layer.bottom)} inputs is not supported")
    graph.convs.append(layer)
    graph.write(layer, BlobValue(layer.name))


def _on_elementwise(graph: NetGraph, layer: Layer) -> None:
    """ReLU, BatchNorm, Scale: the blob keeps its source; the layer joins its ``post`` list."""
    values = graph.read(layer, consumer=False)
    if len(values) != 1:
        raise NetworkMismatchError(graph.path, f"layer {layer.name!r} ({layer.type}) should have one input, found {len(values)}")
    graph.write(layer, BlobValue(values[0].source, values[0].post + (layer.name,)))


def _on_other(graph: NetGraph, layer: Layer) -> None:
    """Layers of the SSD head plumbing: traced back later from DetectionOutput."""
    graph.read(layer)
    graph.write(layer, BlobValue(None))


def _on_input(graph: NetGraph, layer: Layer) -> None:
    graph.write(layer, BlobValue(None))


# Caffe layer type -> how walking the graph handles it.
HANDLERS: dict[str, Callable[[NetGraph, Layer], None]] = {
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

"""Feature-map geometry: padding and output sizes of the network's 3x3 stages.

One place decides how a 3x3 convolution pads, so that the model builder (which inserts the
padding) and the default-box generator (which needs every feature map's size without building
the model) can never disagree.
"""

from __future__ import annotations

from .spec import BACKBONE_BLOCKS, ModelSpec

# MobileNetV1 depthwise-separable blocks (Howard et al. 2017, Table 1): (pointwise filters, stride).
MOBILENET_V1_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)
STEM_FILTERS = 32
assert len(MOBILENET_V1_BLOCKS) == BACKBONE_BLOCKS


def pad_amounts(size: int, stride: int, padding: str, kernel: int = 3) -> tuple[int, int]:
    """Zero padding (before, after) along one axis of a ``kernel``-wide convolution.

    - "same": the Keras/TensorFlow rule, output ``ceil(size / stride)``, the odd pixel of
      padding after (so ((0,1),(0,1)) for stride 2 on an even size, ((1,1),(1,1)) on odd).
    - "symmetric": ``kernel // 2`` on both sides (Caffe's ``pad: 1`` for 3x3).
    - "valid": none.
    """
    if padding == "valid":
        return (0, 0)
    if padding == "symmetric":
        return (kernel // 2, kernel // 2)
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return (total // 2, total - total // 2)
    raise ValueError(f"padding must be 'same', 'symmetric' or 'valid', got {padding!r}")


def conv_output_size(size: int, stride: int, padding: str, kernel: int = 3) -> int:
    """Output length of a convolution along one axis, with :func:`pad_amounts` padding."""
    before, after = pad_amounts(size, stride, padding, kernel)
    out = (size + before + after - kernel) // stride + 1
    if out < 1:
        raise ValueError(
            f"a {kernel}x{kernel} stride-{stride} '{padding}' convolution on a map of {size} "
            f"pixels leaves nothing; the input is too small for this layout"
        )
    return out


def feature_map_sizes(spec: ModelSpec) -> dict[str, tuple[int, int]]:
    """(height, width) of every named feature map (block1..block13, extra1..), in order."""
    pad = spec.backbone.stride2_padding
    h, w = spec.input_size

    def step(size: tuple[int, int], stride: int, padding: str) -> tuple[int, int]:
        return (conv_output_size(size[0], stride, padding), conv_output_size(size[1], stride, padding))

    sizes: dict[str, tuple[int, int]] = {}
    size = step((h, w), 2, pad)  # the stem: 3x3, stride 2
    for i, (_, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        size = step(size, stride, pad if stride == 2 else "same")
        sizes[f"block{i}"] = size
    for i, extra in enumerate(spec.extras, start=1):
        size = step(size, extra.stride, extra.padding)
        sizes[f"extra{i}"] = size
    return sizes

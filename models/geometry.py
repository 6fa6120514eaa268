"""Feature-map geometry: padding and output sizes of the network's 3x3 stages.

One place decides how a 3x3 convolution pads, so that the model builder (which inserts the
padding) and the default-box generator (which needs every feature map's size without building
the model) can never disagree.
"""

from __future__ import annotations

from .spec import BACKBONE_BLOCKS, BACKBONE_FEATURES, ModelSpec

# MobileNetV1 depthwise-separable blocks (Howard et al. 2017, Table 1): (pointwise filters, stride).
MOBILENET_V1_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)
STEM_FILTERS = 32
assert len(MOBILENET_V1_BLOCKS) == BACKBONE_BLOCKS

# EfficientNet-Lite0 (Tan & Le 2019, Table 1, with the Lite changes: no squeeze-excite, ReLU6,
# stem and head not rescaled): stages as (expand ratio, kernel, first stride, filters, repeats).
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1),
)
LITE0_TOP_FILTERS = 1280


def lite0_blocks() -> list[tuple[int, int, int, int]]:
    """The 16 blocks of EfficientNet-Lite0 as (expand ratio, kernel, stride, filters); only the
    first block of a stage has the stage's stride."""
    blocks = []
    for expand, kernel, stride, filters, repeats in LITE0_STAGES:
        for r in range(repeats):
            blocks.append((expand, kernel, stride if r == 0 else 1, filters))
    return blocks


def backbone_strides(kind: str) -> list[tuple[str, int]]:
    """(feature name, stride of the stage that makes it) in network order, after the stride-2 stem."""
    table = {
        "mobilenet_v1": [(f"block{i}", s) for i, (_, s) in enumerate(MOBILENET_V1_BLOCKS, start=1)],
        "efficientnet_lite0": [(f"block{i}", b[2]) for i, b in enumerate(lite0_blocks(), start=1)] + [("top", 1)],
    }
    strides = table[kind]
    assert tuple(n for n, _ in strides) == BACKBONE_FEATURES[kind]
    return strides


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


def half_size(size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the map a stride-2 "same" stage makes of a ``size`` map: each side
    halved, rounded up. A top-down path (:func:`models.ssd.top_down_fuse`) reads such a pair."""
    return (conv_output_size(size[0], 2, "same"), conv_output_size(size[1], 2, "same"))


def halvings(fine: tuple[int, int], coarse: tuple[int, int]) -> int | None:
    """The k >= 1 with ``coarse`` = :func:`half_size` applied k times to ``fine`` (the map k
    stride-2 stages later), or None when no such k exists. A top-down path upsamples the
    coarse map by 2**k to lay it over the fine one."""
    size, k = fine, 0
    while size != (1, 1) and size[0] >= coarse[0] and size[1] >= coarse[1]:
        size, k = half_size(size), k + 1
        if size == coarse:
            return k
    return None


def feature_map_sizes(spec: ModelSpec) -> dict[str, tuple[int, int]]:
    """(height, width) of every named feature map (the backbone's, then extra1..), in order."""
    pad = spec.backbone.stride2_padding
    h, w = spec.input_size

    def step(size: tuple[int, int], stride: int, padding: str) -> tuple[int, int]:
        return (conv_output_size(size[0], stride, padding), conv_output_size(size[1], stride, padding))

    sizes: dict[str, tuple[int, int]] = {}
    size = step((h, w), 2, pad)  # the stem: 3x3, stride 2
    # "same" padding gives ceil(n / stride) whatever the kernel, so 3x3 stands for every kernel
    for name, stride in backbone_strides(spec.backbone.kind):
        size = step(size, stride, pad if stride == 2 else "same")
        sizes[name] = size
    for i, extra in enumerate(spec.extras, start=1):
        size = step(size, extra.stride, extra.padding)
        sizes[f"extra{i}"] = size
    return sizes

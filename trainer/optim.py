"""Optimisers and their state, addressed by variable path so state survives a rebuild.

The optimiser is rebuilt when the set of trainable variables changes (a frozen backbone is
released: JAX's stateless optimiser step needs one slot per trainable variable) and when a
run resumes. Its state (step counter, momenta, Adam moments, loss scale) is read and written
as {path: array}; slots of variables it did not track before start at zero.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np

# One fixed name, so slot paths ("optimizer/conv1_kernel_momentum") are the same in every
# optimiser this run builds, across rebuilds and resumes.
OPTIMIZER_NAME = "optimizer"

OPTIMIZERS: dict[str, Callable[..., keras.optimizers.Optimizer]] = {
    "sgd": lambda lr, momentum: keras.optimizers.SGD(lr, momentum=momentum, name=OPTIMIZER_NAME),
    "adam": lambda lr, momentum: keras.optimizers.Adam(lr, beta_1=momentum, name=OPTIMIZER_NAME),
}
DEFAULT_LR = {"sgd": 1e-2, "adam": 1e-3}
DEFAULT_MOMENTUM = {"sgd": 0.9, "adam": 0.9}


def make_optimizer(kind: str, learning_rate, momentum: float | None = None) -> keras.optimizers.Optimizer:
    """SGD with momentum (the SSD paper) or Adam, with a learning rate or schedule."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {kind!r}")
    return OPTIMIZERS[kind](learning_rate, DEFAULT_MOMENTUM[kind] if momentum is None else momentum)


def optimizer_state(optimizer: keras.optimizers.Optimizer) -> dict[str, np.ndarray]:
    """Every optimiser variable as {path: numpy array} (a LossScaleOptimizer included)."""
    return {v.path: np.array(keras.ops.convert_to_numpy(v)) for v in optimizer.variables}


def load_optimizer_state(optimizer: keras.optimizers.Optimizer, state: dict[str, np.ndarray]) -> tuple[int, int]:
    """Assign saved values to the (built) optimiser's variables of the same path and shape.

    Returns (assigned, left at their initial value). Saved slots of variables this optimiser
    does not track (frozen ones) are ignored.
    """
    assigned = fresh = 0
    for v in optimizer.variables:
        value = state.get(v.path)
        if value is not None and tuple(value.shape) == tuple(v.shape):
            v.assign(value.astype(v.dtype))
            assigned += 1
        else:
            fresh += 1
    return assigned, fresh

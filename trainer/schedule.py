"""Learning-rate schedules: linear warm-up, then cosine or step decay, in ``keras.ops``.

The schedule is a function of the optimiser's step counter only, which is part of the saved
optimiser state: a resumed run continues on exactly the same curve.

Warm-up matters for SSD from random initialisation: the first updates of an untrained
detector have huge confidence gradients (hard negatives everywhere) and a full learning rate
at step 0 often ends in NaN.
"""

from __future__ import annotations

import math

import keras
from keras import ops

# Step decay: x0.1 at 2/3 and again at 5/6 of training (the SSD paper's VOC schedule, 80k /
# 100k / 120k iterations, is at 2/3 and 5/6).
STEP_MILESTONES = (2 / 3, 5 / 6)
STEP_GAMMA = 0.1


def _cosine(progress, base: float):
    return base * 0.5 * (1.0 + ops.cos(math.pi * progress))


def _step(progress, base: float):
    passed = sum(ops.cast(progress >= m, "float32") for m in STEP_MILESTONES)
    return base * ops.power(STEP_GAMMA, passed)


DECAYS = {"cosine": _cosine, "step": _step}


class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``base_lr`` reached linearly over ``warmup_steps``, then decayed by ``decay`` until
    ``total_steps`` (cosine to 0, or step decay x0.1 at 2/3 and 5/6)."""

    def __init__(self, base_lr: float, total_steps: int, warmup_steps: int = 0, decay: str = "cosine"):
        if decay not in DECAYS:
            raise ValueError(f"decay must be one of {sorted(DECAYS)}, got {decay!r}")
        if total_steps < 1:
            raise ValueError(f"total_steps must be at least 1, got {total_steps}")
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(max(0, min(warmup_steps, total_steps - 1)))
        self.decay = decay

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.base_lr * (step + 1.0) / float(max(self.warmup_steps, 1))
        span = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        decayed = DECAYS[self.decay](progress, self.base_lr)
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {"base_lr": self.base_lr, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "decay": self.decay}

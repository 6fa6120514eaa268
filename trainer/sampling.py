"""Oversampling images of weak or rare classes: per-image repeat factors and epoch orders.

A user who labelled 40 photos of their rare class among 2,000 others, or whose model stays
weak on one class, can ask for that class's images to be seen more often per epoch
(``--oversample person=2``). This is image-level repeat-factor sampling (Gupta et al. 2019,
LVIS, Sec. 4: an image's factor is the largest of its classes' factors) with the factors
chosen by the user instead of derived from class frequencies: the weak class is not always
the rarest one (here ``person`` is in 583 training images but scores lowest), so the user
names it.

The epoch's length is fixed (the learning-rate schedule and resuming mid-epoch count
steps): each image appears ``floor(r)`` times, and ``round(sum of fractional parts)`` further
images are drawn without replacement with probability proportional to their fractional part
(for ``r = 1.5`` half of those images appear twice). The draw and the shuffle are seeded by
(run seed, epoch), so an epoch's order is reproducible.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .errors import DataError
from .scan import Sample

MAX_FACTOR = 10.0


def parse_oversample(text: str, option: str = "--oversample") -> dict[str, float]:
    """``"person=2,cow=1.5"`` -> ``{"person": 2.0, "cow": 1.5}``. Factors from 1 to 10."""
    factors: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.rpartition("=")
        name = name.strip()
        try:
            factor = float(value) if sep and name else float("nan")
        except ValueError:
            factor = float("nan")
        if not 1.0 <= factor <= MAX_FACTOR:  # also refuses NaN
            raise DataError(option, f"expected CLASS=FACTOR with a factor from 1 to {MAX_FACTOR:g} "
                                    f"(e.g. person=2), got {part!r}")
        if name in factors:
            raise DataError(option, f"class {name!r} is given twice")
        factors[name] = factor
    if not factors:
        raise DataError(option, f"expected CLASS=FACTOR[,CLASS=FACTOR...] (e.g. person=2), got {text!r}")
    return factors


def repeat_factors(samples: Sequence[Sample], factors: Mapping[str, float],
                   class_names: Sequence[str]) -> np.ndarray:
    """Per sample, how often it is seen per epoch (float64 (N,), at least 1): the largest
    factor among the classes it shows. Raises DataError for a class the run does not train."""
    unknown = sorted(set(factors) - set(class_names))
    if unknown:
        raise DataError("--oversample", f"{', '.join(unknown)} is not among the classes trained "
                                        f"({', '.join(class_names)}); check the spelling")
    return np.asarray([max([factors.get(n, 1.0) for n in s.names] or [1.0]) for s in samples], np.float64)


def epoch_length(repeats: np.ndarray) -> int:
    """Images per epoch: ``sum(floor(r)) + round(sum(frac(r)))`` (the same every epoch)."""
    whole = np.floor(repeats)
    return int(whole.sum()) + int(round(float((repeats - whole).sum())))


def epoch_order(repeats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample indices of one epoch (int64 (epoch_length,)), shuffled, each ``i`` appearing
    ``floor(r[i])`` or ``floor(r[i]) + 1`` times (the latter with probability ``frac(r[i])``,
    up to the fixed-length draw)."""
    whole = np.floor(repeats).astype(np.int64)
    frac = repeats - whole
    extra_count = epoch_length(repeats) - int(whole.sum())
    indices = np.repeat(np.arange(len(repeats), dtype=np.int64), whole)
    if extra_count:
        extra = rng.choice(len(repeats), size=extra_count, replace=False, p=frac / frac.sum())
        indices = np.concatenate([indices, extra.astype(np.int64)])
    return rng.permutation(indices)


def occurrences(order: np.ndarray) -> np.ndarray:
    """For each position of ``order``, how many times its index appeared before it (0 for
    the first time): repeated images get their own augmentation."""
    seen: dict[int, int] = {}
    out = np.empty(len(order), np.int64)
    for k, i in enumerate(order.tolist()):
        out[k] = seen.get(i, 0)
        seen[i] = out[k] + 1
    return out


def describe(samples: Sequence[Sample], factors: Mapping[str, float], repeats: np.ndarray) -> str:
    """One line for the log: which classes, how many images, the epoch's length."""
    parts = [f"{name} x{f:g} ({sum(1 for s in samples if name in s.names)} images)" for name, f in factors.items()]
    return (f"oversampling {', '.join(parts)}: {epoch_length(repeats)} images per epoch "
            f"instead of {len(samples)}")

"""The inference runtime: the one path from pictures to :class:`models.Detections`. Qt-free.

Everything that runs a detector goes through here: the GUI pipeline, ``detect``, ``eval``,
the trainer's validation and the benchmarks. So the mAP the trainer reports is measured on
the code users run, and a fix lands everywhere at once.

- :mod:`runtime.engines`: network + softmax + box decoding as one compiled graph (LiteRT /
  XNNPACK on a CPU, ``tf.function`` / ``jax.jit`` / torch otherwise), converted graphs cached.
- :mod:`runtime.predictor`: :class:`Predictor`, three timed stages (preprocess, inference,
  selection); one call at a time (it owns its lock), timings and raw outputs returned with
  each result.
- :mod:`runtime.batch`: many pictures through a predictor with decoding on a thread pool
  (evaluation, validation, accuracy benchmarks).
- :mod:`runtime.images`: any decoded picture to BGR uint8; :mod:`runtime.stats`: the one
  percentile definition; :mod:`runtime.quiet`: silencing native log noise;
  :mod:`runtime.voc_writer`: detections as labelImg's VOC files (snapshots, ``autolabel``).

Imports flow ``detector_app -> runtime -> models`` and ``trainer -> runtime -> models``.
Heavy modules (TensorFlow, OpenCV) load only when used, so ``import runtime`` is cheap.
"""

from .images import ImageFormatError, to_bgr8
from .stats import percentile, summarise

__all__ = ["ImageFormatError", "percentile", "summarise", "to_bgr8"]

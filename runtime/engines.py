"""Inference engines: run network + softmax + box decoding on a batch of resized frames.

Part of the runtime (:mod:`runtime`). Every engine maps uint8 BGR (B, H, W, 3) to (corners (B, N, 4), probs (B, N, C+1)) as float32
NumPy arrays, from the graph of :func:`models.inference.build_inference_model`.

- ``keras``: the graph compiled for the active Keras backend (``tf.function``; ``jax.jit``
  over ``stateless_call``; ``torch.no_grad``). XLA only on a GPU: on this CPU it is slower.
- ``litert``: the same graph converted to LiteRT (TensorFlow backend only) and run by the
  XNNPACK CPU delegate, which folds batch norm into the convolutions and fuses activations.
  Conversion takes a few seconds, so converted graphs are cached by content hash.
- ``litert-int8`` / ``litert-fp16``: the same conversion with the weights stored as int8
  (dynamic-range quantisation: activations are quantised on the fly, no calibration data) or
  float16. Not chosen by ``auto``: their speed and mAP change are measured by
  ``python -m bench.accuracy`` and written in README and bench/NOTES.md.

``auto`` picks LiteRT on a CPU-only TensorFlow install, else ``keras``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from models import SSDModel
from models.atomic import write_bytes_atomic
from models.inference import build_inference_model

from .quiet import native_stderr_silenced

log = logging.getLogger(__name__)

InferFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


# -- keras: compiled for the active backend -------------------------------------------------

def _keras_tensorflow(graph: keras.Model) -> InferFn:
    import tensorflow as tf

    h, w = graph.input.shape[1:3]
    fn = tf.function(
        lambda images: graph(images, training=False),
        input_signature=[tf.TensorSpec([None, h, w, 3], tf.uint8)],
        jit_compile=bool(tf.config.list_logical_devices("GPU")),
        reduce_retracing=True,
    )

    def infer(batch: np.ndarray):
        corners, probs = fn(batch)
        return corners.numpy(), probs.numpy()

    return infer


def _keras_jax(graph: keras.Model) -> InferFn:
    import jax

    @jax.jit
    def run(tv, ntv, images):
        outputs, _ = graph.stateless_call(tv, ntv, images, training=False)
        return outputs

    def infer(batch: np.ndarray):
        # The variables' current values, read per call: the trainer validates a model whose
        # weights change between epochs through this same engine.
        trainable = [v.value for v in graph.trainable_variables]
        non_trainable = [v.value for v in graph.non_trainable_variables]
        corners, probs = run(trainable, non_trainable, batch)
        return np.asarray(corners), np.asarray(probs)

    return infer


def _keras_torch(graph: keras.Model) -> InferFn:
    import torch

    def infer(batch: np.ndarray):
        with torch.no_grad():
            corners, probs = graph(torch.from_numpy(batch), training=False)
        return corners.cpu().numpy(), probs.cpu().numpy()

    return infer


KERAS_COMPILERS: dict[str, Callable[[keras.Model], InferFn]] = {
    "tensorflow": _keras_tensorflow,
    "jax": _keras_jax,
    "torch": _keras_torch,
}


def keras_engine(model: SSDModel) -> InferFn:
    backend = keras.backend.backend()
    if backend not in KERAS_COMPILERS:
        raise RuntimeError(f"unsupported Keras backend {backend!r}; use one of {sorted(KERAS_COMPILERS)}")
    return KERAS_COMPILERS[backend](build_inference_model(model))


# -- litert: converted once (cached), run with XNNPACK -------------------------------------

LITERT_FORMAT = "1"  # bump when the converted graph changes


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("DETECTOR_CACHE_DIR", os.path.join(base, "detector_app")))


def model_digest(model: SSDModel) -> str:
    """Content hash of a model: its spec and every weight's bytes."""
    h = hashlib.sha256()
    h.update(json.dumps(model.spec.to_dict(), sort_keys=True).encode())
    for w in model.weights:
        h.update(w.path.encode())
        h.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return h.hexdigest()[:32]


# Weight storage of a converted graph: None keeps float32.
QUANTISATIONS = (None, "int8", "fp16")


def keras_to_litert(graph: keras.Model, quantise: str | None = None) -> bytes:
    """Convert a Keras 3 model with ``TFLiteConverter.from_keras_model`` (needs TensorFlow).

    ``quantise``: None (float32), ``"int8"`` (dynamic-range: int8 weights, activations
    quantised per call) or ``"fp16"`` (float16 weights). The converter exports a SavedModel
    first and prints its signature on stdout; that print is swallowed here so command-line
    output stays readable.
    """
    import contextlib
    import io

    import tensorflow as tf

    if quantise not in QUANTISATIONS:
        raise ValueError(f"unknown quantisation {quantise!r}; expected one of {QUANTISATIONS}")
    converter = tf.lite.TFLiteConverter.from_keras_model(graph)
    if quantise is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantise == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def convert_to_litert(model: SSDModel, quantise: str | None = None) -> bytes:
    """The inference graph of ``model`` (network + softmax + decoding) as a LiteRT flatbuffer."""
    return keras_to_litert(build_inference_model(model), quantise)


def _convert_file(model_path: str, out_path: str, quantise: str, parent_pid: int) -> None:
    """Child-process entry of :class:`ChildConversion`: model file in, LiteRT file out.

    The child watches its parent from its first milliseconds (:data:`CHILD_CODE` arms the
    watch before TensorFlow is imported): if the app ends (closed, killed) while it converts,
    it removes its folder (the output file's) and exits instead of running on for a minute.
    Here, a conversion that fails or finishes once the parent is gone cleans up too (nobody
    is left to read its error or its file).
    """
    from models.model_file import load_model

    from .orphan import is_orphaned, leave

    folder = Path(out_path).parent
    try:
        data = convert_to_litert(load_model(model_path), quantise or None)
    except BaseException:
        if is_orphaned(parent_pid):
            leave(folder)
        raise
    if is_orphaned(parent_pid):
        leave(folder)
    write_bytes_atomic(out_path, data)


#: What the converter child runs: ``argv`` = model file, output file (in the child's own
#: folder), quantisation, parent's pid. The orphan watch starts before anything heavy is
#: imported.
CHILD_CODE = (
    "import os, sys; from runtime.orphan import exit_with_parent; "
    "exit_with_parent(int(sys.argv[4]), os.path.dirname(sys.argv[2])); "
    "from runtime.engines import _convert_file; "
    "_convert_file(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))"
)

#: The child's stderr, kept in its folder (a pipe to a parent that died would turn its
#: messages into errors, and an unread pipe fills and blocks the writer).
CHILD_LOG = "child.log"


class ChildConversion:
    """:func:`convert_to_litert` in a child Python process, cancellable.

    The converter holds the GIL for seconds (tens on a busy machine); a GUI that converts on
    a worker thread would freeze meanwhile. The child costs a TensorFlow import, but the
    caller's threads keep running. :meth:`cancel` kills the child and removes its temporary
    folder; so does the end of the parent process (the child watches for it).
    """

    def __init__(self, model: SSDModel, quantise: str | None = None):
        import subprocess
        import sys

        from models.model_file import save_model

        self.quantise = quantise
        self._tmp = tempfile.mkdtemp(prefix="litert-")
        self._out = Path(self._tmp) / "model.tflite"
        self.cancelled = False
        try:
            src = save_model(model, Path(self._tmp) / "model.keras")
            with open(Path(self._tmp) / CHILD_LOG, "wb") as log_file:
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", CHILD_CODE, str(src), str(self._out), quantise or "", str(os.getpid())],
                    cwd=Path(__file__).resolve().parents[1], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=log_file)
        except BaseException:
            self._cleanup()
            raise

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def folder(self) -> Path:
        return Path(self._tmp)

    def result(self, timeout_s: float = 600) -> bytes:
        """Wait for the child; the converted graph. Raises RuntimeError naming the failure
        (or the cancellation)."""
        import subprocess

        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.cancel()
            raise RuntimeError(f"LiteRT conversion in a child process took more than {timeout_s:.0f} s") from None
        try:
            if self.cancelled:
                raise RuntimeError("LiteRT conversion cancelled")
            if self._proc.returncode != 0 or not self._out.exists():
                tail = self.log().strip().splitlines()[-1:] or ["no output"]
                raise RuntimeError(f"LiteRT conversion in a child process failed: {tail[0]}")
            return self._out.read_bytes()
        finally:
            self._cleanup()

    def log(self) -> str:
        """What the child wrote to stderr so far ("" once its folder is removed)."""
        try:
            return (Path(self._tmp) / CHILD_LOG).read_text(errors="replace")
        except OSError:
            return ""

    def cancel(self) -> None:
        """Kill the child (if running) and remove its files; :meth:`result` then raises."""
        self.cancelled = True
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        import shutil

        shutil.rmtree(self._tmp, ignore_errors=True)


def convert_in_child(model: SSDModel, timeout_s: float = 600, quantise: str | None = None) -> bytes:
    """:func:`convert_to_litert` in a child Python process (see :class:`ChildConversion`)."""
    return ChildConversion(model, quantise).result(timeout_s)


def litert_cache_path(model: SSDModel, quantise: str | None = None) -> Path:
    """Where the converted graph of this exact model is cached."""
    import tensorflow as tf

    kind = f"-{quantise}" if quantise else ""
    return cache_dir() / "litert" / f"{model_digest(model)}-tf{tf.__version__}-f{LITERT_FORMAT}{kind}.tflite"


def store_litert(path: Path, data: bytes) -> None:
    try:
        write_bytes_atomic(path, data)
    except OSError as exc:  # a read-only cache only costs the conversion next time
        log.warning("could not cache the LiteRT model in %s: %s", path.parent, exc)


def litert_bytes(model: SSDModel, in_child: bool = False, quantise: str | None = None) -> bytes:
    """The converted graph, from the cache when this exact model was converted before.

    ``in_child``: convert in a child process (see :class:`ChildConversion`).
    """
    path = litert_cache_path(model, quantise)
    if path.exists():
        return path.read_bytes()
    data = (convert_in_child(model, quantise=quantise) if in_child else convert_to_litert(model, quantise))
    store_litert(path, data)
    return data


def usable_cpus() -> int:
    """The cores this process may run on (LiteRT's interpreter defaults to one thread), or
    ``DETECTOR_THREADS`` (detect-many gives each of its workers its share)."""
    if os.environ.get("DETECTOR_THREADS", "").isdigit() and int(os.environ["DETECTOR_THREADS"]) > 0:
        return int(os.environ["DETECTOR_THREADS"])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def litert_engine(model: SSDModel, threads: int | None = None, convert_in_child: bool = False,
                  quantise: str | None = None) -> InferFn:
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("the litert engine converts with TensorFlow; use the keras engine on other backends")
    return litert_runner(litert_bytes(model, convert_in_child, quantise), model.spec.input_size, threads)


def litert_runner(content: bytes, input_size: tuple[int, int], threads: int | None = None) -> InferFn:
    """An engine over a converted graph: an XNNPACK interpreter, warmed up once."""
    from ai_edge_litert.interpreter import Interpreter

    h, w = input_size
    with native_stderr_silenced():  # LiteRT announces its XNNPACK delegate on fd 2 at the first call
        interpreter = Interpreter(model_content=content, num_threads=threads or usable_cpus())
        runner = interpreter.get_signature_runner()
        runner(image=np.zeros((1, h, w, 3), np.uint8))
    # Keras output order: output_0 = corners, output_1 = probs.

    def infer(batch: np.ndarray):
        if len(batch) == 1:
            out = runner(image=batch)
            return out["output_0"], out["output_1"]
        outs = [runner(image=batch[i:i + 1]) for i in range(len(batch))]
        return (np.concatenate([o["output_0"] for o in outs]), np.concatenate([o["output_1"] for o in outs]))

    return infer


def litert_int8_engine(model: SSDModel, convert_in_child: bool = False) -> InferFn:
    return litert_engine(model, convert_in_child=convert_in_child, quantise="int8")


def litert_fp16_engine(model: SSDModel, convert_in_child: bool = False) -> InferFn:
    return litert_engine(model, convert_in_child=convert_in_child, quantise="fp16")


ENGINES: dict[str, Callable[..., InferFn]] = {
    "keras": keras_engine,
    "litert": litert_engine,
    "litert-int8": litert_int8_engine,
    "litert-fp16": litert_fp16_engine,
}


def _has_gpu() -> bool:
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def auto_engine() -> str:
    """LiteRT on a CPU-only TensorFlow install (fastest here), else the compiled Keras graph."""
    if keras.backend.backend() != "tensorflow" or _has_gpu():
        return "keras"
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return "keras"
    return "litert"


def resolve_engine(name: str = "auto") -> str:
    """The engine ``auto`` stands for: ``DETECTOR_ENGINE`` if the user set it, else the best
    here (:func:`auto_engine`). A named engine is kept (the trainer's validation must run the
    live weights through ``keras`` whatever the user's choice for the app)."""
    if name != "auto":
        return name
    return os.environ.get("DETECTOR_ENGINE") or auto_engine()


def make_engine(model: SSDModel, name: str = "auto", convert_in_child: bool = False) -> tuple[str, InferFn]:
    """The engine ``name`` (or the best one for ``auto``), falling back to ``keras`` with a
    warning if LiteRT conversion fails (the app must keep working). ``convert_in_child``:
    convert in a child process (for callers whose other threads must keep running)."""
    name = resolve_engine(name)
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; use one of {sorted(ENGINES)} or 'auto'")
    if name.startswith("litert"):
        try:
            return name, ENGINES[name](model, convert_in_child=convert_in_child)
        except Exception as exc:  # conversion can fail in many ways; the compiled graph still works
            log.warning("LiteRT engine unavailable (%s: %s); using the compiled Keras graph", type(exc).__name__, exc)
            name = "keras"
    return name, ENGINES[name](model)

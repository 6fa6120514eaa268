"""Side-by-side: this app's predictor against what users would run instead, on the same frames.

Contenders (ms per frame, pre- and post-processing included, batch 1, median and p95):

1. ``predictor-caffe-layout``: this app's predictor on the Caffe MobileNet-SSD imported from a
   random-weight ``.caffemodel`` (the same network as 2);
2. ``opencv-dnn-caffe``: OpenCV-DNN 4.x on that prototxt + caffemodel, as the classic webcam
   script runs it (blobFromImage, forward, parse ``detection_out``);
3. ``predictor-default``: this app's predictor on the default model (or ``--model``);
4. ``keras-predict-default``: the same model called ssd_keras-style, ``model.predict`` per
   frame, then NumPy softmax, decoding and NMS;
5. ``litert-default``: the same model converted to LiteRT on its own (network only, NumPy
   post-processing), as a user converting it by hand would run it;
6. ``litert-default-threads``: 5 with ``num_threads`` set to the machine's cores (the
   interpreter's default is one thread here), the fair bar for this app's LiteRT engine;
7. ``predictor-NAME``: each model given with ``bench --also FILE`` through this app's
   predictor (e.g. the previous default model, to compare layouts in one run).

All but 4 are timed in alternating turns (:func:`time_interleaved`), so a slow spell of a
shared machine does not favour whichever was timed at a quiet moment; 4 runs last, alone
(TensorFlow's threads keep spinning after each ``model.predict``).

Random weights cost the same time as trained ones; detections differ, speed does not.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from models import PostprocessConfig, SSDModel, decode, num_default_boxes, select_detections
from runtime.engines import usable_cpus
from runtime.predictor import Predictor

from .stats import percentiles, time_calls

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "chuanqi305-mobilenet-ssd"
PROTOTXT = REFERENCE / "MobileNetSSD_deploy.prototxt"

Contender = Callable[[np.ndarray], object]


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numpy_postprocess(model: SSDModel, config: PostprocessConfig) -> Callable:
    """Softmax + decode + NMS in NumPy for raw (deltas, logits) of one frame."""
    priors, variances, names = model.priors, model.spec.variances, model.class_names

    def post(deltas: np.ndarray, logits: np.ndarray, size: tuple[int, int]):
        return select_detections(decode(deltas, priors, variances), _softmax(logits), config, names, size)

    return post


def predictor_contender(predictor: Predictor) -> Contender:
    return predictor.predict


def keras_predict_contender(model: SSDModel, config: PostprocessConfig) -> Contender:
    """ssd_keras style: ``model.predict`` per frame (about 40 ms of overhead per call)."""
    post = numpy_postprocess(model, config)
    h, w = model.spec.input_size

    def run(frame: np.ndarray):
        x = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)[None]
        deltas, logits = model.predict(x, verbose=0)
        return post(deltas[0], logits[0], frame.shape[:2])

    return run


def litert_contender(model: SSDModel, config: PostprocessConfig, threads: int | None = None) -> Contender:
    """The network alone converted with ``TFLiteConverter.from_keras_model``, NumPy after."""
    from ai_edge_litert.interpreter import Interpreter

    from runtime.engines import keras_to_litert

    data = keras_to_litert(model)
    interpreter = Interpreter(model_content=data, num_threads=threads)
    runner = interpreter.get_signature_runner()
    post = numpy_postprocess(model, config)
    h, w = model.spec.input_size

    def run(frame: np.ndarray):
        x = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)[None]
        out = runner(image=x)
        return post(out["output_0"][0], out["output_1"][0], frame.shape[:2])

    return run


def opencv_dnn_contender(prototxt: Path, caffemodel: Path, conf: float) -> Contender:
    """The classic OpenCV-DNN MobileNet-SSD script, per frame."""
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))

    def run(frame: np.ndarray):
        h, w = frame.shape[:2]
        blob = cv2.dnn.blobFromImage(cv2.resize(frame, (300, 300)), 0.007843, (300, 300), 127.5)
        net.setInput(blob)
        out = net.forward()[0, 0]  # (K, 7): image, label, score, x1, y1, x2, y2
        keep = out[:, 2] > conf
        return out[keep, 1].astype(int), out[keep, 2], out[keep, 3:7] * np.array([w, h, w, h])

    return run


def caffe_pair(workdir: Path) -> tuple[Path, Path] | None:
    """The reference prototxt and a random-weight caffemodel for it (None if ../shared is absent)."""
    if not PROTOTXT.exists():
        return None
    from models.caffe.random_weights import write_random_caffemodel

    caffemodel = workdir / "mobilenet_ssd_random.caffemodel"
    write_random_caffemodel(PROTOTXT, caffemodel, seed=0)
    return PROTOTXT, caffemodel


def time_interleaved(runs: dict[str, Contender], frames: list[np.ndarray], calls: dict[str, int],
                     rounds: int = 10, warmup: int = 5) -> dict[str, dict]:
    """Time every contender in ``rounds`` turns of a few calls each, taking turns, so that a
    slow spell of a shared machine (CPU frequency, a neighbour) falls on all of them alike
    rather than on whichever happened to be timed then. Returns {name: percentiles + fps}."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        time_calls(lambda i, run=run: run(frames[i % len(frames)]), 0, warmup=warmup)
    for turn in range(rounds):
        for name, run in runs.items():
            share = max(1, calls[name] // rounds)
            offset = turn * share
            samples[name] += time_calls(lambda i, run=run, offset=offset: run(frames[(offset + i) % len(frames)]),
                                        share, warmup=0)
    results = {}
    for name, ms in samples.items():
        results[name] = percentiles(ms)
        results[name]["fps"] = 1000.0 / results[name]["ms_p50"]
    return results


def run_contenders(
    default_model: SSDModel,
    frames: list[np.ndarray],
    calls: int,
    conf: float = 0.5,
    log: Callable[[str], None] = print,
    other_models: dict[str, SSDModel] | None = None,
) -> list[dict]:
    """Time every contender on ``frames``, interleaved (see :func:`time_interleaved`);
    returns [{"name", "ms_p50", "ms_p95", "fps", "note"}, or {"name", "skipped"}].

    ``other_models`` ({label: model}): more models run through this app's predictor, timed in
    the same interleaved turns (e.g. the previous default model against the new one)."""
    config = PostprocessConfig(conf_threshold=conf)
    runs: dict[str, Contender] = {}
    calls_of: dict[str, int] = {}
    alone: dict[str, Contender] = {}  # timed on their own, after the others
    entries: list[dict] = []

    def add(name: str, make: Callable[[], Contender], note: str = "", n: int = calls, apart: bool = False) -> None:
        log(f"preparing {name} ...")
        try:
            (alone if apart else runs)[name] = make()
        except Exception as exc:  # a missing optional contender must not end the benchmark
            log(f"  skipped: {type(exc).__name__}: {exc}")
            entries.append({"name": name, "skipped": f"{type(exc).__name__}: {exc}"})
            return
        calls_of[name] = n
        entries.append({"name": name, "note": note} if note else {"name": name})

    threads = usable_cpus()
    with tempfile.TemporaryDirectory() as tmp:
        pair = caffe_pair(Path(tmp))
        if pair is not None:
            from models.caffe.convert import convert

            caffe_model = convert(*pair).model
            caffe_predictor = Predictor(caffe_model, config=config)
            add("predictor-caffe-layout", lambda: predictor_contender(caffe_predictor),
                f"{caffe_predictor.engine} engine, {caffe_predictor.device}")
            add("opencv-dnn-caffe", lambda: opencv_dnn_contender(*pair, conf),
                f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads")
        else:
            for name in ("predictor-caffe-layout", "opencv-dnn-caffe"):
                entries.append({"name": name, "skipped": f"{PROTOTXT} not found"})
        predictor = Predictor(default_model, config=config)
        add("predictor-default", lambda: predictor_contender(predictor), f"{predictor.engine} engine, {predictor.device}")
        for label, other in (other_models or {}).items():
            other_predictor = Predictor(other, config=config)
            add(f"predictor-{label}", lambda p=other_predictor: predictor_contender(p),
                f"{other_predictor.engine} engine, {other.spec.layout} layout, {num_default_boxes(other.spec)} boxes")
        # Timed on its own, after the others: TensorFlow's thread pool keeps spinning for a
        # while after each model.predict and would slow whichever contender came next.
        add("keras-predict-default", lambda: keras_predict_contender(default_model, config),
            "model.predict per frame", n=max(10, calls // 3), apart=True)
        add("litert-default", lambda: litert_contender(default_model, config),
            "network only, NumPy post-processing, the interpreter's default threads")
        # The same by a user who also sets num_threads: the fair bar for our LiteRT engine.
        add("litert-default-threads", lambda: litert_contender(default_model, config, threads=threads),
            f"as litert-default with num_threads={threads}")
        log(f"timing {len(runs)} contenders, interleaved ...")
        timed = time_interleaved(runs, frames, calls_of)
        for name, run in alone.items():
            timed |= time_interleaved({name: run}, frames, calls_of)
    return [{**e, **timed[e["name"]]} if e["name"] in timed else e for e in entries]

"""The predictor against a plain reference path (direct model call + NumPy decode + NMS)."""

import numpy as np
import pytest

from models import PostprocessConfig, decode, select_detections
from runtime.predictor import Predictor
from tests.media import force_class


def _reference(model, frame, config):
    import cv2

    h, w = model.spec.input_size
    x = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)[None]
    deltas, logits = (np.asarray(t) for t in model(x))
    logits = logits[0].astype(np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    corners = decode(deltas[0], model.priors, model.spec.variances)
    return select_detections(corners, probs, config, model.class_names, frame.shape[:2])


@pytest.fixture(scope="module")
def dog_model():
    from models import build_model, seed_spec

    return force_class(build_model(seed_spec(["dog", "cat"], alpha=0.25)), "dog", logit=6.0)


@pytest.mark.parametrize("engine", ["keras", "litert"])
def test_matches_reference_path(dog_model, engine):
    """Each fast path against the plain path: direct model call, NumPy softmax/decode/NMS."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    # Box coordinates are compared without box voting: with the class forced, thousands of boxes
    # score the same to float32 rounding, so which of them make the top 200 (and vote) differs
    # between a float32 and a float64 softmax. Voting itself is tested in test_nms.py.
    config = PostprocessConfig(conf_threshold=0.3, vote_iou=None)
    pred = Predictor(dog_model, config=config, engine=engine)
    assert pred.engine == engine
    got, want = pred.predict(frame), _reference(dog_model, frame, config)
    assert len(got) == len(want) > 0
    np.testing.assert_allclose(got.boxes, want.boxes, atol=0.05)  # pixels
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)
    voting = PostprocessConfig(conf_threshold=0.3)
    got, want = Predictor(dog_model, config=voting, engine=engine).predict(frame), _reference(dog_model, frame, voting)
    assert len(got) == len(want) > 0
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)
    assert got.names == want.names
    assert got.image_size == (480, 640)
    assert got.boxes[:, [0, 2]].max() <= 640 and got.boxes[:, [1, 3]].max() <= 480


def test_batch_equals_single(dog_model):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (240 + 40 * i, 320, 3), dtype=np.uint8) for i in range(3)]
    pred = Predictor(dog_model, config=PostprocessConfig(conf_threshold=0.3))
    prediction = pred.run(frames)
    batch = prediction.detections
    assert prediction.times.batch == 3 and len(batch) == 3 and prediction.raw == ()
    for frame, dets in zip(frames, batch):
        single = pred.predict(frame)
        np.testing.assert_allclose(single.boxes, dets.boxes, atol=1e-3)
        np.testing.assert_allclose(single.scores, dets.scores, atol=1e-5)


def test_thresholds_and_class_filter_apply_on_next_call(dog_model):
    frame = np.zeros((300, 300, 3), np.uint8)
    pred = Predictor(dog_model, config=PostprocessConfig(conf_threshold=0.3))
    assert len(pred.predict(frame)) > 0
    pred.set_thresholds(conf=0.999)  # forced logit 6: p(dog) ~ 0.995
    assert len(pred.predict(frame)) == 0
    pred.set_thresholds(conf=0.3)
    pred.class_filter = ["cat"]
    assert len(pred.predict(frame)) == 0
    pred.class_filter = None
    assert len(pred.predict(frame)) > 0
    with pytest.raises(ValueError, match="unknown classes"):
        pred.class_filter = ["zebra"]


def test_timings_and_device(dog_model):
    pred = Predictor(dog_model)
    for _ in range(3):
        t = pred.run([np.zeros((100, 100, 3), np.uint8)]).times
    assert t.preprocess >= 0 and t.inference > 0 and t.postprocess >= 0
    assert set(pred.stats.summary()) == {"preprocess", "inference", "postprocess", "total"}
    assert pred.device.startswith(("CPU", "GPU")) and pred.backend == "tensorflow"


def test_select_on_raw_outputs_equals_a_new_call(dog_model):
    """Re-thresholding a paused frame from its raw outputs gives what running it again gives."""
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    pred = Predictor(dog_model, config=PostprocessConfig(conf_threshold=0.3))
    first = pred.run([frame], keep_raw=True)
    (raw,) = first.raw
    assert raw.corners.shape == (dog_model.priors.shape[0], 4) and raw.image_size == (240, 320)
    assert len(pred.select(raw)) == len(first.detections[0]) > 0
    for conf, classes in ((0.999, None), (0.3, ["cat"]), (0.3, None)):
        pred.set_thresholds(conf=conf)
        pred.class_filter = classes
        again, fresh = pred.select(raw), pred.predict(frame)
        assert again.names == fresh.names
        np.testing.assert_allclose(again.boxes, fresh.boxes, atol=1e-3)
    assert len(pred.select(raw)) > 0


def test_calls_from_many_threads_never_overlap_inside_the_predictor(dog_model):
    """The predictor owns its lock: its resize buffer and engine (a LiteRT interpreter is not
    thread-safe) see one call at a time, and each thread gets its own frame's answer."""
    import threading
    import time

    pred = Predictor(dog_model, config=PostprocessConfig(conf_threshold=0.3))
    inner, state = pred._infer, {"inside": 0, "most": 0}
    guard = threading.Lock()

    def watched(batch):
        with guard:
            state["inside"] += 1
            state["most"] = max(state["most"], state["inside"])
        time.sleep(0.002)  # widen the window a race would need
        try:
            return inner(batch)
        finally:
            with guard:
                state["inside"] -= 1

    pred._infer = watched
    sizes = [(120 + 20 * k, 160) for k in range(4)]
    wrong = []

    def worker(k):
        frame = np.zeros((*sizes[k], 3), np.uint8)
        for _ in range(15):
            if pred.predict(frame).image_size != sizes[k]:
                wrong.append(k)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert state["most"] == 1 and not wrong


def test_grayscale_and_alpha_frames(dog_model):
    pred = Predictor(dog_model, config=PostprocessConfig(conf_threshold=0.3))
    assert pred.predict(np.zeros((120, 160), np.uint8)).image_size == (120, 160)
    assert pred.predict(np.zeros((120, 160, 4), np.uint8)).image_size == (120, 160)


def test_litert_conversion_is_cached(dog_model, tmp_path, monkeypatch):
    from runtime import engines

    monkeypatch.setenv("DETECTOR_CACHE_DIR", str(tmp_path))
    Predictor(dog_model, engine="litert", warmup=False)
    cached = list((tmp_path / "litert").glob("*.tflite"))
    assert len(cached) == 1
    calls = []
    monkeypatch.setattr(engines, "convert_to_litert", lambda m: calls.append(m))
    Predictor(dog_model, engine="litert", warmup=False)
    assert calls == []  # served from the cache


def test_quantised_litert_engines_are_close_to_float_and_cached_apart(dog_model, tmp_path, monkeypatch):
    """int8 (dynamic range) and fp16 weights: smaller flatbuffers, outputs near the float graph.
    Their effect on mAP is measured on real data by bench/accuracy.py, not here."""
    from runtime import engines

    monkeypatch.setenv("DETECTOR_CACHE_DIR", str(tmp_path))
    frames = np.random.default_rng(3).integers(0, 256, (1, 300, 300, 3), dtype=np.uint8)
    ref_corners, ref_probs = engines.litert_engine(dog_model)(frames)
    sizes = {}
    for name in ("litert-fp16", "litert-int8"):
        ran, infer = engines.make_engine(dog_model, name)
        assert ran == name
        corners, probs = infer(frames)
        assert corners.shape == ref_corners.shape and probs.shape == ref_probs.shape
        np.testing.assert_allclose(probs, ref_probs, atol=0.05)
        np.testing.assert_allclose(corners, ref_corners, atol=0.05)  # normalised coordinates
    for path in (tmp_path / "litert").glob("*.tflite"):
        sizes[path.stem.rsplit("-", 1)[-1]] = path.stat().st_size
    assert set(sizes) == {"f1", "fp16", "int8"}  # one cached file per storage, none overwritten
    assert sizes["int8"] < 0.4 * sizes["f1"] and sizes["fp16"] < 0.7 * sizes["f1"]


def test_litert_failure_falls_back_to_keras(dog_model, monkeypatch):
    from runtime import engines

    def broken(model):
        raise RuntimeError("converter exploded")

    monkeypatch.setattr(engines, "litert_engine", broken)
    monkeypatch.setitem(engines.ENGINES, "litert", broken)
    assert Predictor(dog_model, engine="litert", warmup=False).engine == "keras"


def test_predictor_on_jax_backend(tmp_path):
    """The keras engine on JAX (jax.jit over stateless_call) gives the TensorFlow results."""
    pytest.importorskip("jax")
    import os
    import subprocess
    import sys

    from models import build_model, seed_spec
    from models.model_file import save_model

    model = force_class(build_model(seed_spec(["dog", "cat"], alpha=0.25)), "dog", logit=6.0)
    path = save_model(model, tmp_path / "m.keras")
    frame = np.random.default_rng(3).integers(0, 256, (200, 260, 3), dtype=np.uint8)
    np.save(tmp_path / "f.npy", frame)
    ref = Predictor(model, config=PostprocessConfig(conf_threshold=0.3), engine="keras").predict(frame)
    np.save(tmp_path / "ref.npy", ref.boxes)
    code = (
        "import numpy as np; from runtime.predictor import Predictor; from models import PostprocessConfig;"
        f"p = Predictor.from_file(r'{path}', config=PostprocessConfig(conf_threshold=0.3));"
        "assert p.backend == 'jax' and p.engine == 'keras', (p.backend, p.engine);"
        f"d = p.predict(np.load(r'{tmp_path / 'f.npy'}'));"
        f"np.testing.assert_allclose(d.boxes, np.load(r'{tmp_path / 'ref.npy'}'), atol=0.05); print('ok', len(d))"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok")


def test_conversion_in_a_child_process_matches(dog_model, tmp_path, monkeypatch):
    """The GUI converts in a child process (no GIL held for seconds); same graph, same results."""
    monkeypatch.setenv("DETECTOR_CACHE_DIR", str(tmp_path))
    frame = np.random.default_rng(5).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    config = PostprocessConfig(conf_threshold=0.3)
    child = Predictor(dog_model, config=config, engine="litert", convert_in_child=True)
    assert child.engine == "litert" and len(list((tmp_path / "litert").glob("*.tflite"))) == 1
    want = _reference(dog_model, frame, config)
    got = child.predict(frame)
    assert got.names == want.names
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)

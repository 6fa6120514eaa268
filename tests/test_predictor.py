"""The predictor against a plain reference path (direct model call + NumPy decode + NMS)."""

import numpy as np
import pytest

from detector_app.predictor import Predictor
from models import PostprocessConfig, decode, select_detections
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
    config = PostprocessConfig(conf_threshold=0.3)
    pred = Predictor(dog_model, config=config, engine=engine)
    assert pred.engine == engine
    got, want = pred.predict(frame), _reference(dog_model, frame, config)
    assert len(got) == len(want) > 0
    np.testing.assert_allclose(got.boxes, want.boxes, atol=0.05)  # pixels
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)
    assert got.names == want.names
    assert got.image_size == (480, 640)
    assert got.boxes[:, [0, 2]].max() <= 640 and got.boxes[:, [1, 3]].max() <= 480


def test_batch_equals_single(dog_model):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (240 + 40 * i, 320, 3), dtype=np.uint8) for i in range(3)]
    pred = Predictor(dog_model, config=PostprocessConfig(conf_threshold=0.3))
    batch = pred.predict_batch(frames)
    assert pred.last_times.batch == 3
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
        pred.predict(np.zeros((100, 100, 3), np.uint8))
    t = pred.last_times
    assert t.preprocess >= 0 and t.inference > 0 and t.postprocess >= 0
    assert set(pred.stats.summary()) == {"preprocess", "inference", "postprocess", "total"}
    assert pred.device.startswith(("CPU", "GPU")) and pred.backend == "tensorflow"


def test_grayscale_and_alpha_frames(dog_model):
    pred = Predictor(dog_model, config=PostprocessConfig(conf_threshold=0.3))
    assert pred.predict(np.zeros((120, 160), np.uint8)).image_size == (120, 160)
    assert pred.predict(np.zeros((120, 160, 4), np.uint8)).image_size == (120, 160)


def test_litert_conversion_is_cached(dog_model, tmp_path, monkeypatch):
    from detector_app import engines

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
    from detector_app import engines

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
    from detector_app import engines

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
        "import numpy as np; from detector_app.predictor import Predictor; from models import PostprocessConfig;"
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

"""`train --devices N`: data-parallel training with Keras' distribution API on JAX, checked on
two virtual CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=2): the losses match
a one-device run of the same global batch, and a run stopped mid-epoch resumes exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
from pathlib import Path
import keras, numpy as np
sys.path.insert(0, str(Path(sys.argv[2])))
from trainer_helpers import make_voc_folder, write_spec_yaml
from trainer.config import TrainConfig
from trainer.loop import RunHooks, train
from models.model_file import load_model

root = Path(sys.argv[1])
assert keras.backend.backend() == "jax" and len(keras.distribution.list_devices()) == 2
folder = make_voc_folder(root / "voc", 16, seed=1)
spec = write_spec_yaml(root / "spec.yaml", ["redbox", "bluedisc"])

def config(out, devices):
    return TrainConfig(data=(str(folder),), out=str(root / out), spec_file=str(spec), epochs=2, batch_size=4,
                       val_split=0.25, optimizer="sgd", lr=0.01, workers=2, progress_bar=False, devices=devices)

quiet = lambda _: None
steps = {1: [], 2: []}
one = train(config("one", 1), hooks=RunHooks(on_step=lambda f: steps[1].append(f["loss"])), log=quiet)
two = train(config("two", 2), hooks=RunHooks(on_step=lambda f: steps[2].append(f["loss"])), log=quiet)
asked = {"stop": False}
def note_step(figures):
    asked["stop"] = asked["stop"] or (figures["epoch"], figures["step"]) == (2, 2)
cut = train(config("cut", 2), hooks=RunHooks(should_stop=lambda: asked["stop"], on_step=note_step), log=quiet)
resumed = train(config("cut", 2), resuming=True, log=quiet)
weights = lambda run: [w.tolist() for w in load_model(root / run / "last.keras").get_weights()[:6]]
from trainer.checkpoint import load_checkpoint
def first_update(name, devices, lr):
    first = {"done": False}
    cfg = TrainConfig(data=(str(folder),), out=str(root / name), spec_file=str(spec), epochs=1, batch_size=4,
                      val_split=0.25, optimizer="sgd", lr=lr, warmup_epochs=0, weight_decay=0.0, workers=2,
                      progress_bar=False, devices=devices)
    train(cfg, hooks=RunHooks(should_stop=lambda: first["done"], on_step=lambda f: first.update(done=True)),
          log=quiet)
    return np.concatenate([w.ravel() for w in load_checkpoint(root / name / "checkpoint.npz")[0]])
# SGD's first step moves the weights by lr x gradient: the runs at lr and lr/2 on one device
# give the update; the two-device run at lr must land where the one-device run did.
one_step, half_step, two_step = first_update("u1", 1, 0.01), first_update("u1h", 1, 0.005), first_update("u2", 2, 0.01)
update = 2 * (one_step - half_step)
relative_update_diff = float(np.linalg.norm(two_step - one_step) / np.linalg.norm(update))
print(json.dumps({
    "status": [one.status, two.status, cut.status, resumed.status],
    "steps_one": steps[1], "steps_two": steps[2],
    "loss_two": [h["train_loss"] for h in two.history],
    "loss_resumed": [h["train_loss"] for h in resumed.history],
    "resumed_equal": weights("two") == weights("cut"),
    "relative_update_diff": relative_update_diff,
}))
"""


ORDER_SCRIPT = r"""
import json, sys
from pathlib import Path
import keras, numpy as np
sys.path.insert(0, str(Path(sys.argv[1])))
from trainer_helpers import tiny_spec
from models import build_model
from trainer.targets import TargetEncoder
from trainer.training_model import SSDTrainer

spec = tiny_spec(["redbox", "bluedisc"])
rng = np.random.default_rng(1)
images = rng.integers(0, 255, (4, 128, 128, 3)).astype(np.uint8)
encode = TargetEncoder(spec)
boxes, classes = [], []
for _ in range(4):
    centres, sizes = rng.uniform(0.2, 0.8, (3, 2)), rng.uniform(0.1, 0.4, (3, 2))
    b, c = encode(np.concatenate([centres - sizes / 2, centres + sizes / 2], 1).clip(0, 1), rng.integers(1, 3, 3))
    boxes.append(b)
    classes.append(c)
targets = [np.stack(boxes), np.stack(classes), np.ones((4, 3), np.float32)]
keras.utils.set_random_seed(0)
start = build_model(spec).get_weights()

def update(order):
    # SGD at learning rate 1 without decay: the weights move by minus the gradient
    model = SSDTrainer(build_model(spec), weight_decay=0.0)
    model.detector.set_weights(start)
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    before = [np.array(v) for v in model.trainable_weights]
    model.train_on_batch(images[order], [t[order] for t in targets])
    return np.concatenate([(np.array(v) - b).ravel() for v, b in zip(model.trainable_weights, before)])

one, again, permuted = update([0, 1, 2, 3]), update([0, 1, 2, 3]), update([2, 3, 0, 1])
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=keras.distribution.list_devices()[:2]))
two = update([0, 1, 2, 3])
size = lambda d: float(np.linalg.norm(d) / np.linalg.norm(one))
print(json.dumps({"again": size(again - one), "permuted": size(permuted - one), "two": size(two - one)}))
"""


@pytest.mark.slow
def test_the_two_device_update_differs_from_one_device_only_by_summation_order(tmp_path):
    """Why the first update is not bit-equal: the same batch in another order on one device
    (the same mathematics, other float sums) moves the weights apart by as much as two
    devices do. A real fault (per-device batch-norm statistics, a loss normalised per shard,
    an unscaled gradient) would give far more than the order does."""
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", ORDER_SCRIPT, str(ROOT / "tests")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["again"] == 0.0, "one device, same order: bit-equal (the comparison is deterministic)"
    # measured here: permuted 0.32 %, two devices 0.32 % of the update's norm
    assert got["two"] <= 3 * got["permuted"] + 1e-6, got


@pytest.mark.slow
def test_two_devices_match_one_and_resume_exactly(tmp_path):
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(ROOT / "tests")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["status"] == ["finished", "finished", "stopped", "finished"]
    # The same global batch on one or two devices. Stated tolerances: the first step's loss
    # within 1e-5 (relative: measured 6e-7) and the first update within 2 % (relative norm:
    # measured 1.2 %, almost all of it in the stem and first depthwise kernels, whose
    # gradients pass batch norm and cancel heavily). Not exact because float sums run in
    # another order over the sharded batch: the test above shows a permuted batch on one
    # device moves the update as much. Later steps
    # part further (1.5 % in the loss at step 2 here): SSD's hard-negative mining picks the
    # top-k negatives among near-equal scores, a discrete choice that small differences swap.
    assert len(got["steps_two"]) == len(got["steps_one"]) == 6
    assert got["steps_two"][0] == pytest.approx(got["steps_one"][0], rel=1e-5)
    assert got["relative_update_diff"] < 0.02, "the first update is the one-device update within 2 %"
    assert got["resumed_equal"], "stopped mid-epoch on two devices, resumed: the same weights"
    assert got["loss_resumed"] == got["loss_two"]


def test_devices_need_the_jax_backend(tmp_path):
    """On TensorFlow the option is refused naming the backend (one line, exit 2)."""
    from trainer_helpers import make_voc_folder

    import main

    folder = make_voc_folder(tmp_path / "voc", 4, seed=1)
    rc = main.main(["train", "--data", str(folder), "--out", str(tmp_path / "run"), "--devices", "2",
                    "--epochs", "1", "--batch", "4", "--no-progress"])
    assert rc == 2

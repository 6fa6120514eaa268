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
    # gradients pass batch norm and cancel heavily). Not exact: the cause is not established
    # (float summation order over the sharded batch is the working hypothesis). Later steps
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

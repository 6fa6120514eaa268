"""Faults mid-run: training killed (SIGKILL) mid-epoch and mid-write, a disk that fills up or
a folder that is read-only while training, detecting or writing outputs.

What must hold every time: the last good checkpoint and model files load, no half-written
file ever replaces a good one, the same command resumes and finishes, and a write failure is
one line naming the file (exit status 2), not a traceback.

Training runs are subprocesses of `main.py train` on a tiny generated folder (as the GUI
runs them), so they can be killed. A full disk is RLIMIT_FSIZE (writes fail with "File too
large", needing no privileges; see helpers.file_size_limit); a read-only folder is a
permission change, or a read-only tmpfs when the tests run as root.

Already covered elsewhere (not repeated): the inference worker raising on one frame
(tests/test_pipeline.py::test_an_error_on_one_frame_is_reported_and_the_stream_goes_on; the
GUI side is in test_gui_faults.py), a listener failing with "disk full"
(tests/test_pipeline.py::test_a_failing_listener_does_not_stop_detection), Ctrl-C while
training (tests/test_trainer_train.py::test_ctrl_c_saves_a_checkpoint_and_the_same_command_resumes),
an exception while saving a model (tests/test_model.py::test_atomic_save_keeps_old_file_on_failure).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import main
from models.model_file import load_model
from tests.media import write_video
from tests.trainer_helpers import make_voc_folder, write_spec_yaml
from trainer.checkpoint import load_checkpoint

from .helpers import assert_user_error, can_limit_file_size, file_size_limit

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
LIMIT_S = 300  # for one training process; a hang guard, several times what it needs

needs_rlimit = pytest.mark.skipif(not can_limit_file_size(), reason="needs RLIMIT_FSIZE (Linux, macOS)")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("fault_data")
    return make_voc_folder(root / "voc", 16, seed=1), write_spec_yaml(root / "spec.yaml", ["bluedisc", "redbox"])


def train_args(data, run: Path, *extra: str) -> list[str]:
    folder, spec = data
    return ["train", "--data", str(folder), "--out", str(run), "--spec", str(spec), "--workers", "2",
            "--optimizer", "adam", "--lr", "0.001", "--no-progress", *extra]


def start(args: list[str], driver: list[str] | None = None) -> subprocess.Popen:
    prefix = [sys.executable, "-m", "tests.robustness.fault_driver", *driver, "--"] if driver else \
        [sys.executable, "main.py"]
    return subprocess.Popen(prefix + args, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=LIMIT_S)


def wait_for(proc: subprocess.Popen, predicate, what: str) -> None:
    deadline = time.monotonic() + LIMIT_S
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended (status {proc.returncode}) before {what}:\n{out[-2000:]}"
                                 f"\n{err[-2000:]}")
        assert time.monotonic() < deadline, f"no {what} within {LIMIT_S} s"
        time.sleep(0.05)


def sigkill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def events(run: Path) -> list[dict]:
    """The progress log's events (a line cut by the kill is skipped, as the GUI does)."""
    out = []
    for line in (run / "progress.jsonl").read_text().splitlines() if (run / "progress.jsonl").exists() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def temporaries(run: Path) -> list[str]:
    return sorted(p.name for p in run.glob(".*.tmp*"))


def assert_run_files_load(run: Path) -> dict:
    """Every run file that exists loads; returns the checkpoint's metadata."""
    for name in ("best.keras", "last.keras"):
        if (run / name).exists():
            assert load_model(run / name).class_names == ("bluedisc", "redbox"), name
    _, _, meta = load_checkpoint(run / "checkpoint.npz")
    yaml.safe_load((run / "config.yaml").read_text())
    return meta


@pytest.mark.slow
def test_sigkill_mid_epoch_keeps_the_last_checkpoint_and_the_same_command_resumes(data, tmp_path):
    """Checkpoints after nearly every step (--checkpoint-minutes 0.0005): killed right after
    one, most likely while writing the next."""
    run = tmp_path / "run"
    args = train_args(data, run, "--epochs", "1", "--batch", "2", "--checkpoint-minutes", "0.0005")
    proc = start(args)
    wait_for(proc, lambda: any(e["event"] == "checkpoint" for e in events(run)), "mid-epoch checkpoint")
    sigkill(proc)
    meta = assert_run_files_load(run)
    assert meta["epoch"] == 0 and meta["step"] >= 1, "a mid-epoch checkpoint of the first epoch"
    done = finish(args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming {run} at epoch 1 of 1, step" in done.stdout
    assert yaml.safe_load((run / "summary.yaml").read_text())["epochs_done"] == 1
    assert_run_files_load(run)
    assert temporaries(run) == [], "partial files of the killed run are cleaned up"


@pytest.mark.slow
def test_sigkill_between_writing_and_renaming_keeps_the_previous_files(data, tmp_path):
    """Killed with a new checkpoint, then a new best model, fully written to their temporary
    files but not yet renamed: the previous ones are what the run folder holds, and load."""
    run = tmp_path / "run"
    args = train_args(data, run, "--epochs", "3", "--batch", "4", "--val-split", "0")  # best.keras every epoch
    marker = tmp_path / "paused"

    proc = start(args, ["--marker", str(marker), "--pause-replace", "checkpoint.npz", "--nth", "2"])
    wait_for(proc, marker.exists, "the second checkpoint write")
    sigkill(proc)
    assert Path(marker.read_text()).name in temporaries(run), "the new checkpoint was complete but not in place"
    assert assert_run_files_load(run)["epoch"] == 1, "the checkpoint of epoch 1 is intact"
    best_before = (run / "best.keras").read_bytes()

    marker.unlink()
    proc = start(args, ["--marker", str(marker), "--pause-replace", "best.keras", "--nth", "1"])
    wait_for(proc, marker.exists, "the best model write of the resumed run")
    sigkill(proc)
    assert any(name.startswith(".best.") for name in temporaries(run))
    assert (run / "best.keras").read_bytes() == best_before, "best.keras is never half-written"
    assert assert_run_files_load(run)["epoch"] == 1

    done = finish(args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stdout and "partial file of an interrupted run" in done.stdout
    assert yaml.safe_load((run / "summary.yaml").read_text())["epochs_done"] == 3
    assert temporaries(run) == []
    assert_run_files_load(run)


@pytest.mark.slow
@needs_rlimit
@pytest.mark.parametrize("fails", ["last.keras", "checkpoint.npz"])
def test_disk_full_while_training_is_one_line_and_keeps_the_earlier_files(data, tmp_path, fails):
    """After epoch 1 the disk "fills up" just below the size of ``fails``: at the end of
    epoch 2 that file (and anything larger) cannot be written."""
    run = tmp_path / "run"
    args = train_args(data, run, "--epochs", "2", "--batch", "4", "--val-split", "0")
    marker = tmp_path / "full"
    before = {}

    def snapshot_after_epoch_1() -> bool:
        if marker.exists() and not before:
            before.update({n: (run / n).read_bytes() for n in ("last.keras", "best.keras", "checkpoint.npz")})
        return marker.exists()

    proc = start(args, ["--marker", str(marker), "--fill-disk-after", "epoch", "--below", fails])
    wait_for(proc, snapshot_after_epoch_1, "the end of epoch 1")
    _, err = proc.communicate(timeout=LIMIT_S)
    line = assert_user_error(proc.returncode, err, str(run / fails), "could not be written", "File too large",
                             "the previous file is kept")
    assert (run / fails).read_bytes() == before[fails], f"{fails} of epoch 1 is intact"
    assert assert_run_files_load(run)["epoch"] == 1
    assert events(run)[-1]["event"] == "error" and fails in events(run)[-1]["message"]
    assert temporaries(run) == [] and line

    if fails == "checkpoint.npz":  # space freed: the same command goes on from the checkpoint
        done = finish(args)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "resuming" in done.stdout
        assert yaml.safe_load((run / "summary.yaml").read_text())["epochs_done"] == 2


# -- detect's outputs ---------------------------------------------------------------------------

@pytest.fixture
def warm_frame_model(frame_model_file):
    """Load the model once before a limit is set, so its converted graph is in the cache."""
    from runtime.predictor import Predictor

    Predictor.from_file(frame_model_file)
    return frame_model_file


@needs_rlimit
@pytest.mark.parametrize("option, name, limit", [("--json", "detections.jsonl", 4096),
                                                 ("--out", "annotated.avi", 30_000)])
def test_disk_full_while_detecting_keeps_the_earlier_output(capfd, tmp_path, warm_frame_model, option, name, limit):
    video = write_video(tmp_path / "clip.avi", frames=40, size=(320, 240))
    earlier = tmp_path / name
    earlier.write_bytes(b"the results of yesterday's run")
    capfd.readouterr()
    with file_size_limit(limit):
        rc = main.main(["detect", str(video), "--model", str(warm_frame_model), option, str(earlier),
                        "--no-progress"])
        err = capfd.readouterr().err
    line = assert_user_error(rc, err, str(earlier), "the previous file is kept")
    assert "File too large" in line or "disk full" in line
    assert earlier.read_bytes() == b"the results of yesterday's run"
    assert f"wrote {earlier}" not in err
    leftovers = [p.name for p in tmp_path.iterdir() if "partial" in p.name]
    if option == "--json":
        assert leftovers == []
    else:  # the incomplete video is kept beside, and named in the message, to salvage what it can
        assert len(leftovers) == 1 and leftovers[0] in line


def test_read_only_output_folder_for_detect_and_check_data(capfd, tmp_path, lockable_folder, frame_model_file, data):
    folder = lockable_folder.path
    (folder / "d.jsonl").write_text("earlier\n")
    (folder / "report.json").write_text("{}")
    lockable_folder.lock()
    video = write_video(tmp_path / "clip.avi", frames=3)
    rc = main.main(["detect", str(video), "--model", str(frame_model_file), "--json", str(folder / "d.jsonl"),
                    "--no-progress"])
    assert_user_error(rc, capfd.readouterr().err, str(folder / "d.jsonl"), "cannot write here")
    rc = main.main(["check-data", str(data[0]), "--json", str(folder / "report.json"), "--quiet"])
    assert_user_error(rc, capfd.readouterr().err, str(folder / "report.json"), "cannot be written here")
    assert (folder / "d.jsonl").read_text() == "earlier\n" and (folder / "report.json").read_text() == "{}"


def test_read_only_run_folder_for_train(capfd, lockable_folder, data):
    lockable_folder.lock()
    run = lockable_folder.path / "run"
    rc = main.main(train_args(data, run, "--epochs", "1"))
    assert_user_error(rc, capfd.readouterr().err, str(lockable_folder.path), "choose another --out")

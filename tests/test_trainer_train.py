"""Training runs on generated folders: loss goes down, run files, exact resume, fine-tuning,
the command line, a NaN stop, and (slow) overfitting to mAP >= 0.9."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from trainer_helpers import make_voc_folder, tiny_spec, write_spec_yaml

import main
from models import build_model
from models.model_file import load_model, save_model
from trainer.config import TrainConfig
from trainer.evaluate import evaluate_detections
from trainer.finetune import transfer_weights
from trainer.inference import detect_samples
from trainer.loop import RunHooks, train
from trainer.scan import scan_folders

CLASSES = ["bluedisc", "redbox"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer_data")
    folder = make_voc_folder(root / "voc", 16, seed=1)
    spec = write_spec_yaml(root / "spec.yaml", CLASSES)
    return folder, spec


def config(data, out, **overrides) -> TrainConfig:
    folder, spec = data
    values = dict(data=(str(folder),), out=str(out), spec_file=str(spec), epochs=3, batch_size=4, val_split=0.25,
                  optimizer="adam", lr=1e-3, workers=2, progress_bar=False)
    values.update(overrides)
    return TrainConfig(**values)


def quiet(_: str) -> None:
    pass


def test_training_lowers_the_loss_and_writes_the_run_folder(data, tmp_path):
    out = tmp_path / "run"
    result = train(config(data, out, epochs=4), log=quiet)
    assert result.status == "finished" and result.epochs_done == 4
    losses = [h["train_loss"] for h in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < 0.9 * losses[0], losses
    for name in ("best.keras", "last.keras", "checkpoint.npz", "log.csv", "loss.png", "map.png", "summary.yaml",
                 "progress.jsonl", "config.yaml", "val_images.txt", "train_images.txt", "data_report.json"):
        assert (out / name).is_file(), name
    model = load_model(out / "best.keras")
    assert model.class_names == tuple(CLASSES)
    summary = yaml.safe_load((out / "summary.yaml").read_text())
    assert summary["status"] == "finished" and summary["classes"] == CLASSES
    assert summary["images"] == {"train": 12, "val": 4} and summary["epochs_done"] == 4
    assert summary["best_val_map"] is not None and summary["time_s"] > 0
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4] and rows[0]["val_map"] != ""
    events = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("epoch") == 4 and "step" in kinds
    assert len((out / "val_images.txt").read_text().splitlines()) == 4
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp*"))
    # `eval` of best.keras on the recorded split, through the app's runtime, gives the mAP the
    # run's validation recorded (same runtime; the LiteRT engine within float noise)
    folder, _ = data
    for engine, tolerance in (("keras", 1e-6), ("litert", 0.01)):
        report = tmp_path / f"eval_{engine}.json"
        assert main.main(["eval", "--data", str(folder), "--model", str(out / "best.keras"), "--images",
                          str(out / "val_images.txt"), "--engine", engine, "--json", str(report), "--no-progress"]) == 0
        evaluated = json.loads(report.read_text())
        assert evaluated["engine"] == engine and evaluated["images"] == 4
        assert evaluated["map"] == pytest.approx(summary["best_val_map"], abs=tolerance), engine
        by_size = evaluated["recall_by_size"]  # every counted object in exactly one size bucket
        assert by_size["input_hw"] == list(load_model(out / "best.keras").spec.input_size)
        for c in evaluated["per_class"]:
            cells = by_size["per_class"][c["class"]]
            assert sum(b["objects"] for b in cells) == c["positives"]
            assert sum(b["found"] for b in cells) == c["true_positives"]
    assert evaluated["postprocess"]["box_voting_iou"] == 0.5  # as the app runs it
    caffe_rule = tmp_path / "eval_no_voting.json"
    assert main.main(["eval", "--data", str(folder), "--model", str(out / "best.keras"), "--images",
                      str(out / "val_images.txt"), "--vote-iou", "0", "--json", str(caffe_rule), "--no-progress"]) == 0
    assert json.loads(caffe_rule.read_text())["postprocess"]["box_voting_iou"] is None
    assert main.main(["eval", "--data", str(folder), "--model", str(out / "best.keras"), "--vote-iou", "1.5",
                      "--no-progress"]) == 2


def _weights(path: Path) -> list[np.ndarray]:
    return load_model(path).get_weights()


def test_resume_continues_to_the_same_weights(data, tmp_path):
    straight = train(config(data, tmp_path / "a", optimizer="sgd", lr=0.01), log=quiet)
    asked = {"stop": False}

    def note_step(figures) -> None:  # 3 steps per epoch: stop after step 2 of epoch 2
        asked["stop"] = asked["stop"] or (figures["epoch"], figures["step"]) == (2, 2)

    cut = train(config(data, tmp_path / "b", optimizer="sgd", lr=0.01),
                hooks=RunHooks(should_stop=lambda: asked["stop"], on_step=note_step), log=quiet)
    assert cut.status == "stopped" and cut.epochs_done == 1
    lines = []
    resumed = train(config(data, tmp_path / "b", optimizer="sgd", lr=0.01), resuming=True, log=lines.append)
    assert resumed.status == "finished" and any("resuming" in line and "step 3" in line for line in lines)
    for a, b in zip(_weights(tmp_path / "a" / "last.keras"), _weights(tmp_path / "b" / "last.keras")):
        np.testing.assert_array_equal(a, b)
    assert [h["train_loss"] for h in straight.history] == [h["train_loss"] for h in resumed.history]
    assert [h["val_map"] for h in straight.history] == [h["val_map"] for h in resumed.history]


def test_top_down_path_added_to_a_model_without_one(data, tmp_path):
    """`train --from MODEL --top-down`: the two finest heads gain the path, which starts at zero
    (the model as it was) and is trained; the rest carries over as in any fine-tuning."""
    from models.layouts import with_top_down
    from models.spec import SpecError

    source = build_model(tiny_spec(CLASSES))
    save_model(source, tmp_path / "plain.keras")
    folder, _ = data
    cfg = TrainConfig(data=(str(folder),), out=str(tmp_path / "td"), from_model=str(tmp_path / "plain.keras"),
                      top_down=True, epochs=1, batch_size=4, val_split=0.25, optimizer="adam", lr=1e-3,
                      workers=2, progress_bar=False)
    lines: list[str] = []
    assert train(cfg, log=lines.append).status == "finished"
    assert any("top-down path added, starting at zero: fuse_block11_proj, fuse_block13_proj" in line for line in lines)
    tuned = load_model(tmp_path / "td" / "last.keras")
    assert [h.fuse for h in tuned.spec.heads] == ["block13", "extra1", None, None]
    assert np.abs(tuned.get_layer("fuse_block11_proj").get_weights()[0]).max() > 0  # it learned
    report = transfer_weights(source, build_model(tuned.spec))  # the start: the same outputs
    assert report.new_layers == ["fuse_block11_proj", "fuse_block13_proj"]

    one_head = dataclasses.replace(tiny_spec(CLASSES), heads=tiny_spec(CLASSES).heads[:1])
    with pytest.raises(SpecError, match="no head can take a top-down path"):
        with_top_down(one_head)


def test_top_down_heads_and_depth_options_reach_further(data, tmp_path):
    """`--top-down-heads N` asks for the path (no --top-down needed) and fuses the N finest
    heads, each from the next head's map, keeping the paths a model already has; where the
    next map is not half the size the chain ends (lite0: extra2, 3x3, above extra3, 1x1).
    `--top-down-depth D` has each read the next D heads' maps, extending existing paths."""
    import argparse

    from models.layouts import lite0_spec, with_top_down
    from trainer.cli import add_train_arguments, train_config_from_args
    from trainer.errors import DataError
    from trainer.loop import build_spec

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    save_model(build_model(tiny_spec(CLASSES)), tmp_path / "plain.keras")
    folder, _ = data
    args = parser.parse_args(["--data", str(folder), "--out", str(tmp_path / "run"), "--from",
                              str(tmp_path / "plain.keras"), "--top-down-heads", "3"])
    cfg, resuming = train_config_from_args(args)
    assert (cfg.top_down, cfg.top_down_heads, resuming) == (True, 3, False)
    assert [h.fuse for h in build_spec(cfg, CLASSES).heads] == ["block13", "extra1", "extra2", None]
    deep, _ = train_config_from_args(parser.parse_args(["--data", str(folder), "--out", str(tmp_path / "run3"), "--from",
                                                        str(tmp_path / "plain.keras"), "--top-down-depth", "2"]))
    assert (deep.top_down, deep.top_down_heads, deep.top_down_depth) == (True, 2, 2)
    assert [h.fuse for h in build_spec(deep, CLASSES).heads] == [("block13", "extra1"), ("extra1", "extra2"), None, None]
    plain, _ = train_config_from_args(parser.parse_args(["--data", str(folder), "--out", str(tmp_path / "run2"),
                                                         "--from", str(tmp_path / "plain.keras")]))
    assert not plain.top_down and [h.fuse for h in build_spec(plain, CLASSES).heads] == [None] * 4

    from models.layouts import TOP_DOWN_HEADS

    assert TrainConfig.top_down_heads == TOP_DOWN_HEADS  # the config spells the layout's default
    shipped = lite0_spec(["person"])  # two heads fused, as lite0 has it
    assert [h.fuse for h in shipped.heads] == ["block11", "top", None, None, None, None]
    assert [h.fuse for h in with_top_down(shipped, 3).heads] == ["block11", "top", "extra1", None, None, None]
    assert [h.fuse for h in with_top_down(shipped, 5).heads] == ["block11", "top", "extra1", "extra2", None, None]
    assert [h.fuse for h in with_top_down(shipped, 2, 2).heads] == [("block11", "top"), ("top", "extra1"), None, None,
                                                                    None, None]
    custom = with_top_down(dataclasses.replace(shipped, heads=(dataclasses.replace(shipped.heads[0], fuse="top"),
                                                               *shipped.heads[1:])), 2, 2)
    assert custom.heads[0].fuse == "top"  # a hand-made path that is not the chain's start is kept as it is
    with pytest.raises(DataError, match="top_down_heads=0"):
        dataclasses.replace(cfg, top_down_heads=0).validate()


def test_finetuning_carries_backbone_boxes_and_matching_classes(data, tmp_path):
    import keras

    keras.utils.set_random_seed(3)
    source = build_model(tiny_spec(["greenbox", "redbox", "cat"]))
    target = build_model(tiny_spec(["bluedisc", "redbox"]))
    before = {l.name: [w.copy() for w in l.get_weights()] for l in target.layers}
    report = transfer_weights(source, target)
    assert report.carried_classes == ["redbox"] and report.new_classes == ["bluedisc"]
    assert report.dropped_classes == ["greenbox", "cat"]
    src = {l.name: l.get_weights() for l in source.layers}
    for layer in target.layers:
        got = layer.get_weights()
        if not got:
            continue
        if not layer.name.startswith("cls_"):
            for a, b in zip(got, src[layer.name]):
                np.testing.assert_array_equal(a, b)
            continue
        kernel, old_kernel, fresh = got[0], src[layer.name][0], before[layer.name][0]
        boxes = kernel.shape[-1] // 3
        k = kernel.reshape(kernel.shape[:-1] + (boxes, 3))
        o = old_kernel.reshape(old_kernel.shape[:-1] + (boxes, 4))
        f = fresh.reshape(fresh.shape[:-1] + (boxes, 3))
        np.testing.assert_array_equal(k[..., 0], o[..., 0])  # background
        np.testing.assert_array_equal(k[..., 2], o[..., 2])  # redbox: column 2 in both
        np.testing.assert_array_equal(k[..., 1], f[..., 1])  # bluedisc: new, keeps its fresh init

    # a run from that model with a frozen backbone leaves the backbone untouched
    save_model(source, tmp_path / "source.keras")
    folder, _ = data
    cfg = TrainConfig(data=(str(folder),), out=str(tmp_path / "ft"), from_model=str(tmp_path / "source.keras"),
                      epochs=1, batch_size=4, val_split=0.25, freeze_backbone_epochs=1, workers=2, progress_bar=False)
    assert train(cfg, log=quiet).status == "finished"
    tuned = load_model(tmp_path / "ft" / "last.keras")
    assert tuned.class_names == ("bluedisc", "redbox")
    for name in ("conv1", "conv_pw_13", "conv_pw_13_bn"):
        for a, b in zip(tuned.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(tuned.get_layer("box_block13").get_weights()[0],
                              source.get_layer("box_block13").get_weights()[0])


def test_command_line_train_resume_eval_and_user_errors(data, tmp_path, capsys, monkeypatch):
    folder, spec = data
    other = make_voc_folder(tmp_path / "discs", 6, classes=("bluedisc",), seed=9)  # labels only bluedisc
    run = tmp_path / "run"
    common = ["train", "--data", str(folder), "--data", str(other), "--out", str(run), "--spec", str(spec),
              "--batch", "4", "--no-progress", "--workers", "2"]
    args = common + ["--epochs", "1"]
    assert main.main(args) == 0
    out = capsys.readouterr().out
    assert "class masks on" in out and "epoch 1/1" in out
    assert yaml.safe_load((run / "config.yaml").read_text())["resolved"]["class_mask"] is True

    assert main.main(args) == 0  # the same command again: finished already
    assert "nothing to do" in capsys.readouterr().out
    assert main.main(common + ["--epochs", "5"]) == 2  # a finished run cannot change its settings
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(run) in err[0] and "--epochs 5" in err[0]

    report = tmp_path / "eval.json"
    assert main.main(["eval", "--data", str(folder), "--model", str(run / "best.keras"), "--json", str(report),
                      "--no-progress", "--images", str(run / "val_images.txt")]) == 0
    figures = json.loads(report.read_text())
    assert figures["classes"] == CLASSES and figures["images"] >= 1
    assert {"map", "map_voc07", "per_class"} <= set(figures)
    assert {"ap", "ap_voc07", "pr_curve", "positives"} <= set(figures["per_class"][0])
    assert (tmp_path / "eval_pr.png").is_file()
    capsys.readouterr()

    # Without --model, eval uses the bundled model; a checkout without one says so.
    import models.bundled

    monkeypatch.setattr(models.bundled, "BUNDLED_MODEL", run / "best.keras")
    assert main.main(["eval", "--data", str(folder), "--no-progress", "--images", str(run / "val_images.txt")]) == 0
    assert f"evaluating {run / 'best.keras'}" in capsys.readouterr().out
    monkeypatch.setattr(models.bundled, "BUNDLED_MODEL", tmp_path / "assets" / "default_model.keras")
    assert main.main(["eval", "--data", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "default_model.keras" in err[0] and "--model FILE" in err[0]

    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a model")
    assert main.main(["eval", "--data", str(folder), "--model", str(junk)]) == 2
    assert main.main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r2")]) == 2
    assert main.main(["train", "--data", str(folder), "--out", str(tmp_path / "r3"), "--resume"]) == 2
    assert main.main(["train", "--out", str(tmp_path / "r4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and "junk.keras" in err[0] and "missing: no such folder" in err[1] and "--resume" in err[2]
    assert "--data DIR" in err[3]


def test_nan_loss_stops_with_a_clear_message(data, tmp_path):
    out = tmp_path / "nan"
    result = train(config(data, out, optimizer="sgd", lr=1e30, warmup_epochs=0, val_split=0.0), log=quiet)
    assert result.status == "diverged"
    assert "the loss became nan" in result.message and "--lr" in result.message
    last = json.loads((out / "progress.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "error" and "nan" in last["message"]
    assert not (out / "best.keras").exists()


@pytest.mark.slow
def test_overfits_a_handful_of_images(tmp_path):
    folder = make_voc_folder(tmp_path / "few", 16, seed=1)
    spec = write_spec_yaml(tmp_path / "spec.yaml", CLASSES)
    cfg = TrainConfig(data=(str(folder),), out=str(tmp_path / "run"), spec_file=str(spec), epochs=60, batch_size=8,
                      val_split=0.0, optimizer="adam", lr=2e-3, augment=False, weight_decay=0.0, workers=2,
                      progress_bar=False)
    assert train(cfg, log=quiet).status == "finished"
    model = load_model(tmp_path / "run" / "best.keras")
    samples = scan_folders([folder])[0].samples
    result = evaluate_detections(samples, detect_samples(model, samples, 8, 2), model.class_names)
    assert result.map >= 0.9, result.to_dict(curves=False)


def test_ctrl_c_saves_a_checkpoint_and_the_same_command_resumes(data, tmp_path):
    """As the GUI cancels: SIGINT to the process, which stops after the step with a checkpoint
    (exit status 130); the same command then resumes and finishes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    folder, spec = data
    run = tmp_path / "run"
    cmd = [sys.executable, "main.py", "train", "--data", str(folder), "--out", str(run), "--spec", str(spec),
           "--epochs", "3", "--batch", "2", "--workers", "2", "--optimizer", "adam", "--lr", "0.001"]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    progress = run / "progress.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.is_file() and '"event": "step"' in progress.read_text():
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "stopped; resume with the same command" in out
    assert (run / "checkpoint.npz").is_file()
    events = [json.loads(line)["event"] for line in progress.read_text().splitlines()]
    assert events[-1] == "stopped"
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" in done.stdout and "finished" in done.stdout
    assert yaml.safe_load((run / "summary.yaml").read_text())["epochs_done"] == 3


def test_eval_command_line_box_voting_default_is_the_runtime_one():
    """`eval --vote-iou` spells its default as a literal (importing the runtime would load Keras
    for every --help); it must stay the threshold the app's evaluation runs with."""
    import argparse

    from runtime.batch import EVAL_POSTPROCESS
    from trainer.cli import add_evaluate_arguments

    parser = argparse.ArgumentParser()
    add_evaluate_arguments(parser)
    assert parser.parse_args(["--data", "d"]).vote_iou == EVAL_POSTPROCESS.vote_iou


def test_split_seed_keeps_the_split_while_seed_draws_new_batches(data, tmp_path):
    """A later stage continues a run on its recorded split (``--split-seed 0``) with new
    shuffles and augmentations (``--seed 1``) rather than repeating the first epoch's."""
    runs = {name: tmp_path / name for name in ("seed0", "seed1_split0", "seed1")}
    results = {
        "seed0": train(config(data, runs["seed0"], epochs=1), log=quiet),
        "seed1_split0": train(config(data, runs["seed1_split0"], epochs=1, seed=1, split_seed=0), log=quiet),
        "seed1": train(config(data, runs["seed1"], epochs=1, seed=1), log=quiet),
    }
    val = {name: (run / "val_images.txt").read_text() for name, run in runs.items()}
    assert val["seed1_split0"] == val["seed0"]
    assert val["seed1"] != val["seed0"]  # without it, --seed moves the split too
    # same split, other batches: the epoch's training loss differs
    assert results["seed1_split0"].history[0]["train_loss"] != results["seed0"].history[0]["train_loss"]
    recorded = yaml.safe_load((runs["seed1_split0"] / "config.yaml").read_text())["settings"]
    assert recorded["seed"] == 1 and recorded["split_seed"] == 0

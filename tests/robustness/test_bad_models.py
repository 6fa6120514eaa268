"""Model files from anywhere: damaged, foreign, or carrying code. A model file is data (the
spec and the weights); one that names code, or anything but this app's detector class, is
refused before Keras reads it, with one message naming the file. No test here ever lets a
file's code run, except the control that shows the test's code *would* run if loaded unsafely.

Already covered elsewhere (not repeated): missing file, random bytes, a file cut in half, a
plain Keras Functional model (tests/test_model.py::test_bad_model_files_name_the_file); a
junk file through detect and eval (tests/test_detect_cli.py::test_bad_model_file_and_unknown_class,
tests/test_trainer_train.py::test_command_line_train_resume_eval_and_user_errors); a damaged
file in the GUI (tests/test_gui_window.py::test_swapping_the_model_mid_stream); a --classes
name the model does not know (tests/test_detect_cli.py::test_bad_model_file_and_unknown_class).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import main
from models import build_model
from models.model_file import ModelFileError, load_model, read_spec, save_model
from tests.trainer_helpers import make_voc_folder, tiny_spec

from .helpers import assert_user_error


@pytest.fixture(scope="module")
def good_model(tmp_path_factory) -> Path:
    return save_model(build_model(tiny_spec(["cat", "dog"])), tmp_path_factory.mktemp("good") / "good.keras")


def rewrite(src: Path, dst: Path, config=None, drop=(), replace: dict[str, bytes] | None = None,
            compression=zipfile.ZIP_DEFLATED) -> Path:
    """Copy a .keras archive with its config.json (a dict, or raw bytes) or entries changed."""
    replace = dict(replace or {})
    if config is not None:
        replace["config.json"] = config if isinstance(config, bytes) else json.dumps(config).encode()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for item in zin.infolist():
            if item.filename not in drop:
                zout.writestr(item.filename, replace.pop(item.filename, None) or zin.read(item.filename))
        for name, data in replace.items():
            zout.writestr(name, data)
    return dst


def config_of(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


def _lambda_layer_config() -> dict:
    """A Keras Lambda layer's config with a marshalled Python function (what an attacker ships)."""
    import keras

    layer = keras.layers.Lambda(lambda x: x * 2, name="payload")
    return keras.saving.serialize_keras_object(layer)


def _with(base: dict, **changes) -> dict:
    return {**base, **changes}


def _big_config() -> bytes:
    return b"{" + b" " * (64 << 20) + b"}"  # 64 MB that deflate to ~64 KB


# name -> (how to make the file from the good one, fragment of the message)
CRAFTED = {
    "another module": (lambda good, dst: rewrite(good, dst, _with(config_of(good), module="builtins")),
                       "declares module 'builtins'"),
    "another registered class": (lambda good, dst: rewrite(good, dst, _with(config_of(good),
                                                                            registered_name="keras.layers>Lambda")),
                                 "declares registered_name 'keras.layers>Lambda'"),
    "a Lambda at the top": (lambda good, dst: rewrite(good, dst, _lambda_layer_config()), "of class 'Lambda'"),
    "a Lambda inside the config": (lambda good, dst: rewrite(good, dst, _with(
        config_of(good), config={**config_of(good)["config"], "layers": [_lambda_layer_config()]})),
        "unexpected model config entries ['layers']"),
    "a config that is a list": (lambda good, dst: rewrite(good, dst, b"[]"), "of class 'list'"),
    "a config that is not JSON": (lambda good, dst: rewrite(good, dst, b"{'spec': "), "unreadable config.json"),
    "a 64 MB config": (lambda good, dst: rewrite(good, dst, _big_config()), "refusing to read it"),
    "no config": (lambda good, dst: rewrite(good, dst, drop=("config.json",)), "no config.json"),
    "no weights": (lambda good, dst: rewrite(good, dst, drop=("model.weights.h5",)), "has no weights"),
    "junk weights": (lambda good, dst: rewrite(good, dst, replace={"model.weights.h5": np.random.default_rng(6).bytes(20000)}),
                     "could not be loaded"),
    "a spec with unknown fields": (lambda good, dst: rewrite(good, dst, _with(config_of(good), config={
        **config_of(good)["config"], "spec": {**config_of(good)["config"]["spec"], "exec": "rm -rf /"}})),
        "model spec is missing or invalid"),
    "a zip of something else": (lambda good, dst: rewrite(good, dst, drop=("config.json", "model.weights.h5"),
                                                          replace={"readme.txt": b"hello"}), "no config.json"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_archive_is_refused_naming_the_file(tmp_path, good_model, name):
    make, fragment = CRAFTED[name]
    path = make(good_model, tmp_path / f"{name}.keras")
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(path) in str(info.value) and fragment in str(info.value), str(info.value)


def test_weights_of_another_network_are_refused(tmp_path, good_model):
    other = save_model(build_model(tiny_spec(["a", "b", "c", "d"])), tmp_path / "other.keras")
    with zipfile.ZipFile(other) as z:
        weights = z.read("model.weights.h5")
    path = rewrite(good_model, tmp_path / "mixed.keras", replace={"model.weights.h5": weights})
    with pytest.raises(ModelFileError, match="mixed.keras: could not be loaded"):
        load_model(path)


def test_a_damaged_entry_fails_its_checksum(tmp_path, good_model):
    path = rewrite(good_model, tmp_path / "flipped.keras", compression=zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    at = data.index(b'"class_name"')  # inside the stored config.json
    data[at + 2] ^= 0x20  # "class_name" -> "cLass_name": still a zip, CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="flipped.keras: is damaged .*config.json fails its checksum"):
        load_model(path)


@pytest.mark.parametrize("keep", [0.01, 0.3, 0.9, 0.999])
def test_a_file_cut_anywhere_is_refused(tmp_path, good_model, keep):
    data = good_model.read_bytes()
    path = tmp_path / "cut.keras"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelFileError, match="cut.keras"):
        load_model(path)


def _lambda_model(tmp_path: Path) -> tuple[Path, Path]:
    """A Keras model with a Lambda layer whose function writes a marker file when it runs."""
    import keras

    marker = tmp_path / "code ran.txt"
    inp = keras.Input((4,))
    # the marker's path is a constant of the function's code (Keras marshals the code)
    payload = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]")
    out = keras.layers.Lambda(payload, name="payload")(inp)
    marker.unlink(missing_ok=True)  # building the model ran it once
    path = tmp_path / "lambda.keras"
    keras.Model(inp, out).save(path)
    marker.unlink(missing_ok=True)
    return path, marker


def test_a_keras_file_with_a_lambda_layer_is_refused_and_its_code_never_runs(tmp_path, capfd, good_model):
    path, marker = _lambda_model(tmp_path)
    with pytest.raises(ModelFileError, match="lambda.keras: is a Keras model of class 'Functional'"):
        load_model(path)
    video = tmp_path / "clip.avi"
    from tests.media import write_video

    write_video(video, frames=2)
    for command in (["detect", str(video), "--model", str(path), "--no-progress"], ["info", str(path)]):
        assert_user_error(main.main(command), capfd.readouterr().err, "lambda.keras", "not a detector saved by this app")
    assert not marker.exists(), "the file's code ran"
    # Control: loaded without safe mode, Keras would run the file's code (the marker works).
    import keras

    keras.saving.load_model(path, safe_mode=False)
    assert marker.exists()


def test_keras_safe_mode_refusal_is_a_model_file_error_too(tmp_path, monkeypatch):
    """Were the archive check ever bypassed, Keras' own safe mode refuses the Lambda; that
    refusal also comes out as one ModelFileError naming the file."""
    path, marker = _lambda_model(tmp_path)
    monkeypatch.setattr("models.model_file.read_spec", lambda p: None)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert "lambda.keras: could not be loaded" in str(info.value) and "safe_mode" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["hdf5", "folder", "caffemodel", "tflite"])
def test_other_formats_through_detect_are_one_error_line(tmp_path, capfd, kind):
    from tests.media import write_video

    video = write_video(tmp_path / "clip.avi", frames=2)
    if kind == "folder":
        path = tmp_path / "saved_model.keras"
        path.mkdir()
        fragment = "is a folder"
    else:
        path = tmp_path / {"hdf5": "legacy.h5", "caffemodel": "net.caffemodel", "tflite": "m.tflite"}[kind]
        header = {"hdf5": b"\x89HDF\r\n\x1a\n", "caffemodel": b"\n\x0cMobileNetSSD", "tflite": b"\x1c\x00\x00\x00TFL3"}
        path.write_bytes(header[kind] + np.random.default_rng(7).bytes(2000))
        fragment = "is not a Keras model archive"
    rc = main.main(["detect", str(video), "--model", str(path), "--no-progress"])
    line = assert_user_error(rc, capfd.readouterr().err, path.name, fragment)
    if kind == "caffemodel":
        assert "import-caffe" in line


# -- classes that disagree with the data ---------------------------------------------------

@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory) -> Path:
    return make_voc_folder(tmp_path_factory.mktemp("shapes") / "voc", 6, classes=("redbox", "bluedisc"))


def test_eval_with_a_model_of_other_classes_is_a_user_error(tmp_path, capfd, shapes_folder):
    model = save_model(build_model(tiny_spec(["cat", "dog"])), tmp_path / "pets.keras")
    rc = main.main(["eval", "--data", str(shapes_folder), "--model", str(model), "--no-progress"])
    line = assert_user_error(rc, capfd.readouterr().err, str(shapes_folder), "pets.keras does not detect",
                             "bluedisc, redbox", "cat, dog")
    assert "nothing to evaluate" in line


def test_eval_with_a_model_that_knows_some_classes_measures_those(tmp_path, capfd, shapes_folder):
    model = save_model(build_model(tiny_spec(["redbox", "cat"])), tmp_path / "partial.keras")
    rc = main.main(["eval", "--data", str(shapes_folder), "--model", str(model), "--no-progress"])
    out = capfd.readouterr().out
    assert rc == 0
    assert "objects of classes the model does not know are not part of this evaluation" in out
    assert "no ground truth for cat" in out


def test_fine_tuning_onto_new_classes_says_what_carries_over(tmp_path, capsys, shapes_folder):
    """`train --from` a model of other classes: the backbone and boxes carry over, the class
    predictors start fresh, and the log says so; the result knows the data's classes."""
    source = save_model(build_model(tiny_spec(["cat", "dog"])), tmp_path / "pets.keras")
    run = tmp_path / "run"
    rc = main.main(["train", "--data", str(shapes_folder), "--out", str(run), "--from", str(source), "--epochs", "1",
                    "--batch", "2", "--val-split", "0", "--workers", "2", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "classes carried over: none (only background)" in out and "new classes (fresh predictors): bluedisc, redbox" in out
    # no contradiction: what the class predictors kept is named (issue 15)
    assert "class predictors adapted" not in out and "the weights of background carried over" in out
    assert "classes of the old model not kept: cat, dog" in out
    assert load_model(run / "best.keras").class_names == ("bluedisc", "redbox")
    assert read_spec(run / "best.keras").input_size == read_spec(source).input_size


def test_a_spec_asking_for_a_huge_input_is_refused_before_building(good_model, tmp_path, capsys):
    """A model file whose spec asks for 20000x20000 grew the process past 8 GB (issue 15); the
    spec's bounds refuse it with one line naming the limit, before any layer is built."""
    config = config_of(good_model)
    config["config"]["spec"]["input_size"] = [20000, 20000]
    huge = rewrite(good_model, tmp_path / "huge.keras", config)
    rc = main.main(["info", str(huge)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "huge.keras" in err and "20000x20000 is larger than the limit of 2048x2048" in err
    config["config"]["spec"]["input_size"] = [300, 300]
    config["config"]["spec"]["heads"] = config["config"]["spec"]["heads"] * 20
    many = rewrite(good_model, tmp_path / "many.keras", config)
    assert main.main(["info", str(many)]) == 2
    assert "more than the limit of 32" in capsys.readouterr().err

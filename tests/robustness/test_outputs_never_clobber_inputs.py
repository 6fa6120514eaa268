"""An output path that is an input (issue 15, "user data destroyed"): every command that writes
refuses, with one line naming the option and the file, and the input is left byte for byte."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from trainer_helpers import make_voc_folder

import main

from .helpers import assert_user_error


@pytest.fixture
def video(tmp_path):
    import cv2

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


def _unchanged(path, before: bytes) -> None:
    assert path.read_bytes() == before, f"{path} was modified"


@pytest.mark.parametrize("which", ["json", "out", "json-via-link"])
def test_detect_refuses_to_write_over_its_source(video, frame_model_file, capsys, which):
    before = video.read_bytes()
    target = video
    if which == "json-via-link":
        target = video.parent / "link.jsonl"
        os.symlink(video, target)
    option = "--out" if which == "out" else "--json"
    rc = main.main(["detect", str(video), "--model", str(frame_model_file), option, str(target), "--no-progress"])
    assert_user_error(rc, capsys.readouterr().err, option, "the source being read", "would destroy it")
    _unchanged(video, before)


def test_detect_refuses_json_and_out_naming_one_file_and_the_model(video, frame_model_file, tmp_path, capsys):
    same = tmp_path / "both.avi"
    rc = main.main(["detect", str(video), "--model", str(frame_model_file), "--out", str(same), "--json", str(same),
                    "--no-progress"])
    assert_user_error(rc, capsys.readouterr().err, "--out and --json name the same file")
    assert not same.exists()
    model_copy = shutil.copy(frame_model_file, tmp_path / "m.keras")
    before = open(model_copy, "rb").read()
    rc = main.main(["detect", str(video), "--model", str(model_copy), "--json", str(model_copy), "--no-progress"])
    assert_user_error(rc, capsys.readouterr().err, "--json", "is the model file")
    assert open(model_copy, "rb").read() == before


def test_eval_check_data_and_train_refuse_to_write_among_their_inputs(tmp_path, frame_model_file, capsys):
    folder = make_voc_folder(tmp_path / "voc", 4, seed=6)
    xml = sorted((folder / "Annotations").glob("*.xml"))[0]
    xml_before = xml.read_bytes()
    model = shutil.copy(frame_model_file, tmp_path / "m.keras")
    model_before = open(model, "rb").read()

    rc = main.main(["eval", "--data", str(folder), "--model", str(model), "--json", str(model), "--no-progress"])
    assert_user_error(rc, capsys.readouterr().err, "--json", "is the model file")
    rc = main.main(["check-data", str(folder), "--json", str(xml), "--quiet"])
    assert_user_error(rc, capsys.readouterr().err, "--json names a file of the labelled folder")
    rc = main.main(["eval", "--data", str(folder), "--model", str(model), "--json", str(tmp_path / "e.json"),
                    "--plot", str(xml), "--no-progress"])
    assert_user_error(rc, capsys.readouterr().err, "--plot names a file of the labelled folder")
    rc = main.main(["train", "--data", str(folder), "--out", str(folder / "runs" / "mine"), "--no-progress"])
    assert_user_error(rc, capsys.readouterr().err, "--out is inside the labelled folder")
    assert not (folder / "runs").exists()
    _unchanged(xml, xml_before)
    assert open(model, "rb").read() == model_before
    # a report beside the data (not over one of its files) is fine
    assert main.main(["check-data", str(folder), "--json", str(folder / "report.json"), "--quiet"]) == 0

"""`main.py detect` end to end, in-process (the same code path as the command line)."""

import json
import os

import cv2
import numpy as np
import pytest

import main
from models.model_file import save_model
from tests.media import count_frames, force_class, write_video


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from models import build_model, seed_spec

    model = force_class(build_model(seed_spec(["dog", "cat"], alpha=0.25)), "dog", logit=6.0)
    return save_model(model, tmp_path_factory.mktemp("m") / "dog.keras")


def test_detect_video_writes_jsonl_and_video(tmp_path, model_file, capfd):
    video = write_video(tmp_path / "in.avi", frames=24, size=(320, 240))
    rc = main.main(["detect", str(video), "--model", str(model_file), "--conf", "0.3",
                    "--json", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "out.mp4"), "--no-progress"])
    err = capfd.readouterr().err
    assert rc == 0, err
    lines = [json.loads(l) for l in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [l["frame"] for l in lines] == list(range(24))
    assert lines[3]["time_s"] == pytest.approx(3 / 25)
    det = lines[0]["detections"][0]
    assert det["class"] == "dog" and 0.3 < det["score"] <= 1
    x1, y1, x2, y2 = det["box"]
    assert 0 <= x1 <= x2 <= 320 and 0 <= y1 <= y2 <= 240  # pixels of the source frame
    assert count_frames(tmp_path / "out.mp4") == 24
    assert "24 frames" in err and "per class: dog" in err
    assert not [p for p in os.listdir(tmp_path) if "partial" in p]


def test_detect_image_folder_with_class_filter(tmp_path, model_file, capfd):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.jpg"), np.full((90, 120, 3), 60 * i, np.uint8))
    rc = main.main(["detect", str(folder), "--model", str(model_file), "--classes", "cat",
                    "--json", str(tmp_path / "d.jsonl"), "--no-progress"])
    assert rc == 0, capfd.readouterr().err
    lines = [json.loads(l) for l in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [l["file"].endswith(f"{i}.jpg") for i, l in enumerate(lines)] == [True] * 3
    assert all(l["detections"] == [] for l in lines)  # the model only ever says "dog"


@pytest.mark.parametrize(
    "make_source, message",
    [
        (lambda p: str(p / "missing.mp4"), "missing.mp4: no such file"),
        (lambda p: (p / "junk.avi").write_bytes(os.urandom(3000)) and str(p / "junk.avi"), "junk.avi"),
        (lambda p: (p / "empty.mp4").write_bytes(b"") or str(p / "empty.mp4"), "empty.mp4: the file is empty"),
        (lambda p: "99", "camera 99"),
    ],
)
def test_bad_sources_exit_2_with_one_line(tmp_path, model_file, capfd, make_source, message):
    rc = main.main(["detect", make_source(tmp_path), "--model", str(model_file), "--no-progress"])
    err = capfd.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert len([l for l in err.splitlines() if l.startswith("error:")]) == 1


def test_bad_model_file_and_unknown_class(tmp_path, model_file, capfd):
    video = write_video(tmp_path / "in.avi", frames=2)
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 truncated")
    assert main.main(["detect", str(video), "--model", str(tmp_path / "bad.keras")]) == 2
    assert "bad.keras" in capfd.readouterr().err
    assert main.main(["detect", str(video), "--model", str(model_file), "--classes", "zebra"]) == 2
    assert "unknown classes ['zebra']" in capfd.readouterr().err


def test_info_prints_the_spec(model_file, capfd):
    assert main.main(["info", str(model_file)]) == 0
    out = capfd.readouterr().out
    assert "8752 default boxes" in out and "class_names:\n- dog\n- cat" in out


def test_detect_with_tiles(tmp_path, model_file, capfd):
    video = write_video(tmp_path / "in.avi", frames=4, size=(320, 240))
    rc = main.main(["detect", str(video), "--model", str(model_file), "--conf", "0.3", "--tiles", "2x2",
                    "--json", str(tmp_path / "d.jsonl"), "--no-progress"])
    err = capfd.readouterr().err
    assert rc == 0, err
    assert "tiles 2x2 + the full frame" in err
    lines = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and lines[0]["detections"]
    assert all(0 <= d["box"][0] <= d["box"][2] <= 320 for d in lines[0]["detections"])
    with pytest.raises(SystemExit) as exit_info:
        main.main(["detect", str(video), "--model", str(model_file), "--tiles", "nine"])
    assert exit_info.value.code == 2 and "ROWSxCOLS such as 2x2" in capfd.readouterr().err

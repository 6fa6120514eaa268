"""Messages that name what the user typed (issue 15): option values out of range, and the
resume line's counts. Each of these printed a misleading line or silently did something else
before."""

from __future__ import annotations

import numpy as np
import pytest

import main

from .helpers import assert_user_error


@pytest.fixture
def picture(tmp_path):
    import cv2

    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), np.full((48, 64, 3), 127, np.uint8))
    return path


@pytest.mark.parametrize("args, fragments", [
    (["--conf", "2"], ("--conf must be at least 0 and below 1, got 2",)),
    (["--conf", "-0.1"], ("--conf", "got -0.1")),
    (["--iou", "0"], ("--iou must be above 0 and at most 1, got 0",)),
    (["--max-frames", "0"], ("--max-frames must be 1 or more, got 0",)),
    (["--max-frames", "-3"], ("--max-frames must be 1 or more, got -3",)),
], ids=["conf-2", "conf-negative", "iou-0", "max-frames-0", "max-frames-negative"])
def test_detect_names_the_option_that_is_out_of_range(picture, frame_model_file, capsys, args, fragments):
    out = picture.parent / "d.jsonl"
    rc = main.main(["detect", str(picture), "--model", str(frame_model_file), "--json", str(out), "--no-progress", *args])
    line = assert_user_error(rc, capsys.readouterr().err, *fragments)
    assert "conf_threshold" not in line and not out.exists()  # nothing was processed


def test_resume_line_counts_steps_of_the_epoch_and_epochs(tmp_path):
    """'resuming ... at epoch 1, step 7 of 3' mixed steps with epochs; now each has its count."""
    from trainer_helpers import make_voc_folder, write_spec_yaml

    from trainer.config import TrainConfig
    from trainer.loop import RunHooks, train

    folder = make_voc_folder(tmp_path / "voc", 16, seed=4)
    spec = write_spec_yaml(tmp_path / "spec.yaml", ["bluedisc", "redbox"])
    cfg = TrainConfig(data=(str(folder),), out=str(tmp_path / "run"), spec_file=str(spec), epochs=3, batch_size=2,
                      val_split=0.25, workers=1, progress_bar=False, checkpoint_minutes=0.0)
    seen = {"steps": 0}

    def count(_figures) -> None:
        seen["steps"] += 1

    stopped = train(cfg, hooks=RunHooks(should_stop=lambda: seen["steps"] >= 2, on_step=count), log=lambda _: None)
    assert stopped.status == "stopped"
    lines: list[str] = []
    assert train(cfg, resuming=True, log=lines.append).status == "finished"
    resume = next(line for line in lines if line.startswith("resuming"))
    assert "at epoch 1 of 3, step 3 of 6 " in resume, resume


def test_class_names_from_a_model_file_are_escaped_in_detect(picture, tmp_path, capsys):
    """A model whose class names carry an escape sequence and a forged 'error:' line: detect
    prints them escaped (info already did), so the terminal shows exactly our lines."""
    from models.model_file import save_model

    from .helpers import whole_frame_model

    evil = "\x1b[31mred\x1b[0m\nerror: forged"
    path = save_model(whole_frame_model(classes=(evil, "cat"), winner=evil), tmp_path / "evil.keras")
    assert main.main(["detect", str(picture), "--model", str(path), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and not any(line.startswith("error: forged") for line in err.splitlines())
    assert "\\x1b[31mred\\x1b[0m\\nerror: forged" in err  # shown, escaped, in the classes and per-class lines


@pytest.mark.parametrize("index", ["2147483648", "99999999999999999999", "1024"])
def test_a_huge_camera_index_is_one_line(index, capsys):
    """OpenCV raised (exit 1, a traceback) for an index past a C int; any index past the bound
    is a user error naming it."""
    rc = main.main(["detect", index, "--no-progress"])
    assert_user_error(rc, capsys.readouterr().err, f"{index}: is not a camera index", "0 to 1023")


def test_special_files_are_refused_up_front(tmp_path, frame_model_file, capsys):
    """A named pipe as the source or the model blocked `detect` forever (Ctrl-C did not stop it);
    a device (/dev/zero) would be read without end. Both are refused before anything opens them."""
    import os

    from .helpers import run_bounded

    fifo = tmp_path / "pipe.avi"
    os.mkfifo(fifo)
    rc = run_bounded(lambda: main.main(["detect", str(fifo), "--model", str(frame_model_file), "--no-progress"]),
                     60, "detect on a FIFO")
    assert_user_error(rc, capsys.readouterr().err, "pipe.avi: is not a regular file or folder")
    rc = run_bounded(lambda: main.main(["detect", "/dev/zero", "--model", str(frame_model_file), "--no-progress"]),
                     60, "detect on a device")
    assert_user_error(rc, capsys.readouterr().err, "/dev/zero: is not a regular file or folder")
    model_fifo = tmp_path / "model.keras"
    os.mkfifo(model_fifo)
    picture = tmp_path / "p.png"
    import cv2

    cv2.imwrite(str(picture), np.zeros((8, 8, 3), np.uint8))
    rc = run_bounded(lambda: main.main(["detect", str(picture), "--model", str(model_fifo), "--no-progress"]),
                     60, "detect with a FIFO as the model")
    assert_user_error(rc, capsys.readouterr().err, "model.keras: is not a regular file (a pipe, device or socket)")


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    """A 400-megapixel PNG of a few hundred KB (one grey plane compresses to almost nothing)."""
    import cv2

    folder = tmp_path_factory.mktemp("huge")
    path = folder / "huge.png"
    plane = np.zeros((20000, 20000), np.uint8)
    assert cv2.imwrite(str(path), plane)
    del plane
    return path


def test_a_picture_past_the_pixel_limit_is_refused_naming_the_limit(huge_png, frame_model_file, capsys):
    """A small file that decodes to hundreds of megapixels (6 GB and 34 s for 30000x30000 before)
    is refused by OpenCV's pixel limit, which main.py sets to 256 Mpx, with a line that says so."""
    rc = main.main(["detect", str(huge_png), "--model", str(frame_model_file), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "huge.png: has more pixels than the limit of 268 megapixels" in err


def test_a_labelled_picture_past_the_pixel_limit_is_a_reported_problem(huge_png, tmp_path):
    from trainer.image_io import UnreadableImage, read_image

    with pytest.raises(UnreadableImage, match="huge.png: has more pixels than the limit of 268 megapixels"):
        read_image(huge_png)


@pytest.mark.parametrize("size", [(1, 1), (9000, 120)], ids=["1x1", "9000x120"])
def test_a_frame_size_the_encoder_refuses_is_named_and_the_json_is_still_written(size, frame_model_file, tmp_path,
                                                                                 capsys):
    """`--out x.mp4` for a 1x1 video or a 12000x9000 picture said "cannot open a video writer
    here" (the folder was fine: MPEG-4 refuses sides under 2 or over 4096 pixels) and wrote no
    JSON either. 9000x120 stands for the large case at a fraction of the pixels."""
    import cv2

    w, h = size
    picture = tmp_path / f"p{w}.png"
    cv2.imwrite(str(picture), np.full((h, w, 3), 90, np.uint8))
    out, js = tmp_path / "x.mp4", tmp_path / "d.jsonl"
    rc = main.main(["detect", str(picture), "--model", str(frame_model_file), "--out", str(out), "--json", str(js),
                    "--no-progress"])
    line = assert_user_error(rc, capsys.readouterr().err, f"the mp4v encoder refuses frames of {w}x{h} pixels",
                             "use .avi")
    assert "cannot open a video writer here" not in line and not out.exists()
    assert len(js.read_text().splitlines()) == 1  # the detections were still written


NATIVE_NOISE = ("absl::InitializeLog", "cudart_stub", "oneDNN custom operations", "XNNPACK delegate", "cuInit",
                "cpu_feature_guard", "I0000", "E0000", "W0000")


@pytest.mark.slow
def test_commands_print_only_our_lines(tmp_path, frame_model_file, shared_dir):
    """TensorFlow's and LiteRT's native start-up lines (printed twice by info and check-data,
    once by detect, on a CPU-only machine) are silenced: users see only the program's lines."""
    import os
    import subprocess
    import sys

    import cv2

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    picture = tmp_path / "p.png"
    cv2.imwrite(str(picture), np.zeros((40, 40, 3), np.uint8))
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "DETECTOR_VERBOSE")}
    for args in (["info", str(frame_model_file)], ["check-data", str(shared_dir / "datasets" / "raccoon")],
                 ["detect", str(picture), "--model", str(frame_model_file), "--no-progress"]):
        proc = subprocess.run([sys.executable, "main.py", *args], cwd=root, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        noisy = [line for line in (proc.stdout + proc.stderr).splitlines() if any(n in line for n in NATIVE_NOISE)]
        assert noisy == [], (args[0], noisy)


def test_an_unreadable_file_is_named_as_unreadable_not_damaged(tmp_path, capfd, monkeypatch):
    """Permission denied is not "unknown format or damaged file". The tests run as root, whom
    no permission stops, so the refusal is simulated where the file is opened."""
    import builtins

    import cv2

    from detector_app import sources
    from tests.media import write_video

    video = write_video(tmp_path / "locked.avi", frames=3, size=(64, 48))
    picture = tmp_path / "locked.png"
    cv2.imwrite(str(picture), np.zeros((8, 8, 3), np.uint8))
    real_open = builtins.open

    def deny(path, *args, **kwargs):
        if str(path) in (str(video), str(picture)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    for target in (video, picture):
        with pytest.raises(sources.SourceError, match=r"cannot be read \(Permission denied\)"):
            sources.open_source(str(target))
    monkeypatch.setattr(builtins, "open", real_open)

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(sources.np, "fromfile", refuse)  # a picture of a folder, read mid-run
    with pytest.raises(sources.ImageFormatError, match="Permission denied"):
        sources.read_image(picture)

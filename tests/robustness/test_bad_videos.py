"""Broken and unusual videos and images through `main.py detect` (in-process).

A file that cannot be used at all: exit status 2 and one line naming it. A file that can be
partly used: every usable frame is detected, the damage is reported naming the file, exit 0.
Unusual pictures (1x1, 4000x3000, odd sizes, grey, 16-bit, alpha, palette, CMYK, EXIF-rotated)
are detected like any other, with boxes in pixels of the picture as it is displayed: the
model here finds one box covering the whole frame, so each box *is* the frame's size.

Already covered elsewhere (not repeated): missing file, empty file, random bytes as a video
and camera 99 (tests/test_detect_cli.py::test_bad_sources_exit_2_with_one_line), truncated
video read to its end (tests/test_sources.py::test_truncated_video_ends_without_error), an
unreadable image inside a folder (tests/test_sources.py::test_image_folder_skips_bad_files).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import main
from detector_app.sources import open_source
from tests.media import write_video

from .helpers import assert_user_error, jpeg, mjpeg_avi

EXIF_ORIENTATION = 274  # the EXIF tag


def detect(capfd, out_dir: Path, source: Path | str, model: Path, *extra: str) -> tuple[int, str, list[dict]]:
    """Run `main.py detect` in-process; (exit status, stderr, JSON records)."""
    out = out_dir / "detections.jsonl"
    rc = main.main(["detect", str(source), "--model", str(model), "--json", str(out), "--no-progress", *extra])
    err = capfd.readouterr().err
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return rc, err, records


def the_box(record: dict) -> list[float]:
    """The box of the whole-frame model's detections (NMS runs on the unclipped boxes, so a
    few may survive it; clipped to the frame they are all the same box)."""
    boxes = {tuple(d["box"]) for d in record["detections"]}
    assert len(boxes) == 1 and {d["class"] for d in record["detections"]} == {"dog"}, record
    return list(boxes.pop())


# -- pictures as files ---------------------------------------------------------------------

def _exif_jpeg(path: Path, orientation: int) -> None:
    """A 60x40 stored picture (left half white) that viewers show turned by ``orientation``."""
    raw = np.zeros((40, 60, 3), np.uint8)
    raw[:, :30] = 255
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    Image.fromarray(raw).save(path, exif=exif.tobytes(), quality=95)


# name -> (writer, (width, height) as displayed)
PICTURES = {
    "1x1.png": (lambda p: cv2.imwrite(str(p), np.full((1, 1, 3), 200, np.uint8)), (1, 1)),
    "4000x3000.jpg": (lambda p: cv2.imwrite(str(p), np.random.default_rng(0).integers(0, 255, (3000, 4000, 3),
                                                                                       dtype=np.uint8)), (4000, 3000)),
    "odd 333x101.png": (lambda p: cv2.imwrite(str(p), np.full((101, 333, 3), 90, np.uint8)), (333, 101)),
    "tall 7x513.bmp": (lambda p: cv2.imwrite(str(p), np.full((513, 7, 3), 90, np.uint8)), (7, 513)),
    "grey.png": (lambda p: cv2.imwrite(str(p), np.full((50, 61), 128, np.uint8)), (61, 50)),
    "grey 16-bit.png": (lambda p: cv2.imwrite(str(p), np.full((50, 61), 40000, np.uint16)), (61, 50)),
    "colour 16-bit.png": (lambda p: cv2.imwrite(str(p), np.full((52, 63, 3), 50000, np.uint16)), (63, 52)),
    "alpha.png": (lambda p: cv2.imwrite(str(p), np.zeros((30, 31, 4), np.uint8)), (31, 30)),
    "grey+alpha.png": (lambda p: Image.fromarray(np.zeros((30, 33, 2), np.uint8), "LA").save(p), (33, 30)),
    "palette.png": (lambda p: Image.new("P", (45, 35), 3).save(p), (45, 35)),
    "1-bit.png": (lambda p: Image.new("1", (47, 29), 1).save(p), (47, 29)),
    "cmyk.jpg": (lambda p: Image.new("CMYK", (41, 27), (0, 128, 0, 0)).save(p), (41, 27)),
    "float.tiff": (lambda p: cv2.imwrite(str(p), np.full((20, 22, 3), 0.5, np.float32)), (22, 20)),
    "exif turned 90.jpg": (lambda p: _exif_jpeg(p, 6), (40, 60)),
    "exif turned 180.jpg": (lambda p: _exif_jpeg(p, 3), (60, 40)),
    "exif turned 270.jpg": (lambda p: _exif_jpeg(p, 8), (40, 60)),
    "ünïcödé фото.png": (lambda p: cv2.imencode(".png", np.full((21, 23, 3), 9, np.uint8))[1].tofile(str(p)), (23, 21)),
}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pictures") / "odd pictures"
    folder.mkdir()
    for name, (write, _) in PICTURES.items():
        write(folder / name)
        assert (folder / name).is_file(), name
    return folder


@pytest.fixture(scope="module")
def folder_run(pictures, frame_model_file, tmp_path_factory):
    """One `detect` over the folder of every picture: (exit status, stderr, records by file name)."""
    out = tmp_path_factory.mktemp("folder_run") / "dets.jsonl"
    import subprocess
    import sys

    # A subprocess, so this module-scoped run does not need a function-scoped capfd.
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "main.py", "detect", str(pictures), "--model", str(frame_model_file),
                           "--json", str(out), "--no-progress"], cwd=root, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    records = {Path(r["file"]).name: r for r in map(json.loads, out.read_text().splitlines())} if out.exists() else {}
    return proc.returncode, proc.stderr, records


def test_every_unusual_picture_is_detected_without_warnings(folder_run):
    rc, err, records = folder_run
    assert rc == 0, err[-3000:]
    assert sorted(records) == sorted(PICTURES)
    assert "warning:" not in err and "Traceback" not in err, err[-3000:]
    assert f"{len(PICTURES)} frames" in err


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_boxes_are_in_pixels_of_the_picture_as_displayed(folder_run, name):
    _, _, records = folder_run
    width, height = PICTURES[name][1]
    assert the_box(records[name]) == [0, 0, width, height]


@pytest.mark.parametrize("orientation, turn", [(6, -1), (3, 2), (8, 1)])
def test_exif_rotated_photos_are_shown_as_viewers_show_them(tmp_path, orientation, turn):
    """The frame is the picture turned as its EXIF orientation says (OpenCV's imread rule, and
    what photo viewers show), pixels included, not only the size."""
    path = tmp_path / f"turned {orientation}.jpg"
    _exif_jpeg(path, orientation)
    stored = np.zeros((40, 60), np.float32)
    stored[:, :30] = 255
    expected = np.rot90(stored, turn)  # np.rot90 turns counter-clockwise for positive k
    with open_source(str(path)) as source:
        image = source.read().image
    assert image.shape[:2] == expected.shape
    assert np.abs(image.mean(axis=2) - expected).mean() < 20  # JPEG noise at the edge only


@pytest.mark.parametrize("name", ["1x1.png", "exif turned 90.jpg", "grey 16-bit.png"])
def test_a_single_unusual_picture(capfd, tmp_path, pictures, frame_model_file, name):
    rc, err, records = detect(capfd, tmp_path, pictures / name, frame_model_file)
    assert rc == 0, err[-3000:]
    assert len(records) == 1 and the_box(records[0]) == [0, 0, *PICTURES[name][1]]


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("random.jpg", np.random.default_rng(3).bytes(5000), "cannot be read as an image"),
        ("empty.png", b"", "cannot be read as an image"),
        ("half.jpg", None, "cannot be read as an image"),
        ("text.png", b"<html>not a picture</html>", "cannot be read as an image"),
    ],
    ids=["random bytes", "empty", "cut in half", "text"],
)
def test_an_unreadable_picture_is_one_error_line(capfd, tmp_path, frame_model_file, name, content, reason):
    path = tmp_path / name
    if content is None:  # a photo cut off in the middle (an interrupted copy)
        ok, data = cv2.imencode(".jpg", np.random.default_rng(1).integers(0, 255, (300, 400, 3), dtype=np.uint8))
        content = data.tobytes()[: len(data) // 2]
    path.write_bytes(content)
    rc, err, records = detect(capfd, tmp_path, path, frame_model_file)
    assert_user_error(rc, err, name, reason)
    assert records == []


def test_a_folder_of_only_broken_pictures(capfd, tmp_path, frame_model_file):
    folder = tmp_path / "broken photos"
    folder.mkdir()
    for i in range(3):
        (folder / f"b{i}.jpg").write_bytes(np.random.default_rng(i).bytes(300))
    rc, err, _ = detect(capfd, tmp_path, folder, frame_model_file)
    assert_user_error(rc, err, "broken photos", "no frame could be read")
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert [w for w in warnings if "b0.jpg" in w] and [w for w in warnings if "b2.jpg" in w]


# -- videos ---------------------------------------------------------------------------------

def _video(path: Path, size: tuple[int, int], frames: int = 3, color: bool = True) -> Path:
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h), isColor=color)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((h, w, 3) if color else (h, w), 40 * i, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize(
    "name, size, color",
    [("1x1.avi", (1, 1), True), ("4000x3000.avi", (4000, 3000), True), ("odd 161x97.avi", (161, 97), True),
     ("grey.avi", (64, 48), False), ("vidéo ü.avi", (64, 48), True)],
    ids=["1x1", "4000x3000", "odd 161x97", "grey", "non-ASCII name"],
)
def test_unusual_videos(capfd, tmp_path, frame_model_file, name, size, color):
    path = _video(tmp_path / name, size, color=color)
    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read()
    cap.release()
    assert ok
    height, width = first.shape[:2]  # the MJPG writer rounds odd sizes down to even ones
    rc, err, records = detect(capfd, tmp_path, path, frame_model_file)
    assert rc == 0, err[-3000:]
    assert [r["frame"] for r in records] == [0, 1, 2]
    assert all(the_box(r) == [0, 0, width, height] for r in records)


@pytest.mark.parametrize("frames, keep", [(30, 2 / 3), (100, 1 / 2)])
def test_a_truncated_video_is_detected_up_to_the_cut_and_reported(capfd, tmp_path, frame_model_file, frames, keep):
    """Cut short (an interrupted copy or download): the frames before the cut are detected,
    and the user is told that the file claims more frames than it holds."""
    full = write_video(tmp_path / "full.avi", frames=frames)
    cut = tmp_path / "cut short.avi"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * keep)])
    rc, err, records = detect(capfd, tmp_path, cut, frame_model_file)
    assert rc == 0, err[-3000:]
    assert 0 < len(records) < frames
    assert [r["frame"] for r in records] == list(range(len(records)))
    warning = [line for line in err.splitlines() if line.startswith("warning:") and "cut short.avi" in line]
    assert len(warning) == 1 and f"claims {frames} frames" in warning[0] and "truncated" in warning[0]
    assert re.search(rf"frames? {len(records)}\b", warning[0]), "the message says where the cut is"


def test_damaged_frames_mid_file_are_skipped_and_numbered_truly(capfd, tmp_path, frame_model_file):
    frames = [jpeg(20 * i) for i in range(10)]
    frames[3] = b"\xff\xd8" + bytes(range(256)) * 4 + b"\xff\xd9"  # garbage between JPEG markers
    frames[4] = frames[4][: len(frames[4]) // 3]  # a frame cut short
    path = tmp_path / "damaged.avi"
    path.write_bytes(mjpeg_avi(frames, 64, 48))
    rc, err, records = detect(capfd, tmp_path, path, frame_model_file)
    assert rc == 0, err[-3000:]
    assert [r["frame"] for r in records] == [0, 1, 2, 5, 6, 7, 8, 9]
    assert records[3]["time_s"] == pytest.approx(5 / 25)
    assert "damaged.avi: frames 3-4 could not be decoded; skipped" in err
    assert "2 frames skipped" in err


def test_zero_length_frames(capfd, tmp_path, frame_model_file):
    """Empty frame chunks: FFmpeg drops them without a word, so the reader cannot tell where
    they were. Every real frame is detected, frame numbers count the frames that exist, and
    the shortfall against the file's frame count is reported."""
    frames = [jpeg(20 * i) for i in range(10)]
    for i in (3, 4, 7):
        frames[i] = b""
    path = tmp_path / "zero length.avi"
    path.write_bytes(mjpeg_avi(frames, 64, 48))
    rc, err, records = detect(capfd, tmp_path, path, frame_model_file)
    assert rc == 0, err[-3000:]
    assert len(records) == 7
    assert "zero length.avi: frames 7-9 could not be decoded" in err and "claims 10 frames" in err


def test_a_video_of_only_zero_length_frames(capfd, tmp_path, frame_model_file):
    path = tmp_path / "all empty.avi"
    path.write_bytes(mjpeg_avi([b""] * 5, 64, 48))
    rc, err, _ = detect(capfd, tmp_path, path, frame_model_file)
    assert_user_error(rc, err, "all empty.avi", "no frame could be decoded")


def test_a_picture_renamed_as_a_video(capfd, tmp_path, frame_model_file):
    path = tmp_path / "photo.mp4"
    ok, data = cv2.imencode(".png", np.full((40, 50, 3), 100, np.uint8))
    path.write_bytes(data.tobytes())
    rc, err, records = detect(capfd, tmp_path, path, frame_model_file)
    # FFmpeg reads a PNG as a one-frame video: that is a valid reading, not an error
    assert rc == 0, err[-3000:]
    assert len(records) == 1 and the_box(records[0]) == [0, 0, 50, 40]

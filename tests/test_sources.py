"""Frame sources: files, folders, cameras and streams that cannot be opened, damaged frames."""

import os

import cv2
import numpy as np
import pytest

from detector_app.sources import ImageSource, SourceError, VideoFileSource, open_source
from runtime.images import ImageFormatError, to_bgr8
from tests.media import write_video


def test_video_reads_every_frame_with_ids(tmp_path):
    path = write_video(tmp_path / "v.avi", frames=20)
    with open_source(str(path)) as src:
        assert isinstance(src, VideoFileSource) and src.frame_count == 20 and src.fps == 25.0
        frames = list(src)
    assert [f.index for f in frames] == list(range(20))
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8
    assert frames[5].time_s == pytest.approx(0.2)


def test_video_seek(tmp_path):
    path = write_video(tmp_path / "v.avi", frames=20)
    with VideoFileSource(path) as src:
        src.seek(10)
        assert src.read().index == 10


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty"), (os.urandom(4096), "cannot be opened|no frame could be decoded")],
)
def test_bad_video_files(tmp_path, content, reason):
    path = tmp_path / "bad.avi"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=reason) as info:
        open_source(str(path))
    assert "bad.avi" in str(info.value)


def test_missing_path():
    with pytest.raises(SourceError, match="no such file"):
        open_source("/nonexistent/video.mp4")


def test_camera_that_does_not_exist():
    with pytest.raises(SourceError, match="camera 99"):
        open_source("99")


def test_truncated_video_ends_without_error(tmp_path):
    path = write_video(tmp_path / "v.avi", frames=30)
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 2 // 3])
    warnings = []
    with open_source(str(cut), on_warning=warnings.append) as src:
        frames = list(src)
    assert 5 < len(frames) < 30


def test_image_folder_skips_bad_files(tmp_path):
    good = np.full((50, 60, 3), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), good)
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(tmp_path / "c gray ü.png"), good[:, :, 0])
    (tmp_path / "notes.txt").write_text("ignored")
    warnings = []
    with open_source(str(tmp_path), on_warning=warnings.append) as src:
        assert isinstance(src, ImageSource) and src.frame_count == 3
        frames = list(src)
    assert [f.label for f in frames] == ["a.png", "c gray ü.png"]
    assert frames[1].image.shape == (50, 60, 3)
    assert len(warnings) == 1 and "b.jpg" in warnings[0]


def test_empty_folder(tmp_path):
    with pytest.raises(SourceError, match="holds no images"):
        open_source(str(tmp_path))


def test_to_bgr8_conversions():
    gray16 = np.full((4, 5), 65535, np.uint16)
    assert to_bgr8(gray16).shape == (4, 5, 3) and to_bgr8(gray16).max() == 255
    bgra = np.zeros((4, 5, 4), np.uint8)
    assert to_bgr8(bgra).shape == (4, 5, 3)
    assert to_bgr8(np.ones((2, 2, 3), np.float32)).max() == 255
    with pytest.raises(ImageFormatError):
        to_bgr8(np.zeros((4, 5, 2), np.uint8))
    with pytest.raises(ImageFormatError):
        to_bgr8(np.zeros((0, 5, 3), np.uint8))


def test_damaged_frame_mid_file_is_reported_and_skipped(tmp_path):
    path = write_video(tmp_path / "v.avi", frames=20)
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]  # JPEG SOI
    assert len(starts) == 20
    data[starts[10]:starts[10] + 400] = b"\x11" * 400  # destroy frame 10's JPEG header
    bad = tmp_path / "damaged.avi"
    bad.write_bytes(bytes(data))
    warnings = []
    with open_source(str(bad), on_warning=warnings.append) as src:
        indexes = [f.index for f in src]
    assert indexes == [i for i in range(20) if i != 10]
    assert warnings == [f"{bad}: frame 10 could not be decoded; skipped"]

"""Fixtures of the robustness suite: a model with known output, a scripted camera, a folder
that can be made read-only."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from .helpers import whole_frame_model


@pytest.fixture(scope="session")
def frame_model_file(tmp_path_factory) -> Path:
    """A model file that finds one "dog" covering the whole frame (see whole_frame_model)."""
    from models.model_file import save_model

    return save_model(whole_frame_model(), tmp_path_factory.mktemp("frame_model") / "whole frame.keras")


class FakeDevice:
    """A camera as ``cv2.VideoCapture(index, ...)`` opens it, scripted per opening.

    ``sessions[i]`` says what the i-th opening does: None, the device does not open; an int n,
    it delivers n frames and then nothing (``read()`` fails: unplugged, or the driver hangs
    up). After the script, openings fail. ``empty_frames``: a failed read returns an empty
    image instead of ``(False, None)`` (some drivers do). Frames are 64x48, brightness = count.
    """

    def __init__(self, sessions, empty_frames: bool = False):
        self.sessions = list(sessions)
        self.empty_frames = empty_frames
        self.opens = 0
        self.delivered = 0
        self.released = 0

    def capture(self, *args, **kwargs) -> "FakeCapture":
        budget = self.sessions.pop(0) if self.sessions else None
        self.opens += 1
        return FakeCapture(self, budget)


class FakeCapture:
    def __init__(self, device: FakeDevice, budget: int | None):
        self.device, self.budget = device, budget

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.budget is not None

    def read(self):
        if not self.budget:
            return (True, np.zeros((0, 0, 3), np.uint8)) if self.device.empty_frames else (False, None)
        self.budget -= 1
        self.device.delivered += 1
        return True, np.full((48, 64, 3), self.device.delivered % 256, np.uint8)

    def get(self, prop) -> float:
        return 0.0

    def set(self, prop, value) -> bool:
        return False

    def release(self) -> None:
        self.device.released += 1


@pytest.fixture
def fake_camera(monkeypatch):
    """``fake_camera([5, None, 10])`` installs a scripted camera for every cv2.VideoCapture."""
    import cv2

    def install(sessions, empty_frames: bool = False) -> FakeDevice:
        device = FakeDevice(sessions, empty_frames)
        monkeypatch.setattr(cv2, "VideoCapture", device.capture)
        return device

    return install


class LockableFolder:
    """A folder with files in it that a test then makes read-only (``lock()``).

    Tests run as root in CI, and root writes through permission bits; so as root the folder is
    a small tmpfs, remounted read-only by ``lock()`` (skipped when mounting is not allowed).
    Otherwise ``lock()`` takes the write permission away.
    """

    def __init__(self, path: Path):
        self.path = path
        self.mounted = False

    def prepare(self) -> "LockableFolder":
        self.path.mkdir(parents=True)
        if os.geteuid() == 0:
            if shutil.which("mount") is None:
                pytest.skip("running as root without `mount`: no way to make a read-only folder")
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(self.path)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"running as root and cannot mount a tmpfs ({done.stderr.strip()}): "
                            "no way to make a read-only folder")
            self.mounted = True
        return self

    def lock(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True, capture_output=True)
        else:
            self.path.chmod(0o500)

    def release(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.path)], check=False, capture_output=True)
        elif self.path.exists():
            self.path.chmod(0o700)


@pytest.fixture
def lockable_folder(tmp_path):
    folder = LockableFolder(tmp_path / "outputs").prepare()
    try:
        yield folder
    finally:
        folder.release()

"""Benchmark frames: the first frames of vtest.avi (opencv-doc) or generated ones."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def benchmark_frames(n: int = 64, video: Path | None = None) -> tuple[list[np.ndarray], str]:
    """``n`` BGR frames and a description of where they came from."""
    video = video or VTEST
    if video.exists():
        cap = cv2.VideoCapture(str(video))
        frames = []
        while len(frames) < n:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(img)
        cap.release()
        if frames:
            while len(frames) < n:  # loop a short file
                frames.extend(frames[: n - len(frames)])
            return frames, f"{video.name} ({frames[0].shape[1]}x{frames[0].shape[0]})"
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (576, 768, 3), dtype=np.uint8)
    frames = [np.roll(base, 7 * i, axis=1) for i in range(n)]
    return frames, "generated 768x576 frames (vtest.avi not found: apt-get install opencv-doc)"

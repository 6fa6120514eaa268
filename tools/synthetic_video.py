"""Small generated videos for tests and demos: coloured rectangles moving over a gradient.

    python -m tools.synthetic_video out.avi --frames 64 --size 320x240
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def synthetic_frame(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    """Frame ``index``: a fixed gradient with two rectangles that move one step per frame
    and the frame number printed (so a frame can be recognised by eye). BGR uint8."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = (x[None, :] * 0.5).astype(np.uint8)
    image[..., 1] = (y[:, None] * 0.5).astype(np.uint8)
    image[..., 2] = 64
    side = max(8, min(width, height) // 5)
    x1 = (index * 4) % max(1, width - side)
    y1 = (index * 3) % max(1, height - side)
    cv2.rectangle(image, (x1, height // 4), (x1 + side, height // 4 + side), (0, 0, 255), cv2.FILLED)
    cv2.rectangle(image, (width // 2, y1), (width // 2 + side, y1 + side), (255, 255, 0), cv2.FILLED)
    cv2.putText(image, str(index), (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    return image


def write_video(path: str | Path, frames: int = 64, width: int = 320, height: int = 240,
                fps: float = 25.0) -> Path:
    """Write an MJPG .avi of ``frames`` synthetic frames; returns the path."""
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"{path}: cannot write a video here")
    try:
        for i in range(frames):
            writer.write(synthetic_frame(i, width, height))
    finally:
        writer.release()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="output .avi")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT")
    parser.add_argument("--fps", type=float, default=25.0)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(write_video(args.out, args.frames, width, height, args.fps))


if __name__ == "__main__":
    main()

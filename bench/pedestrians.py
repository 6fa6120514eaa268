"""Does the model box the walking pedestrians of ``vtest.avi``? (issue 12's check; printed
figures, never asserted in tests.)

    python -m bench.pedestrians [--model FILE] [--video vtest.avi] [--every 40]
        [--tiles off,2x2,3x3] [--conf 0.3,0.5] [--json FILE]

The clip (OpenCV's sample, 768x576, 795 frames of people walking across a square, Debian's
``opencv-doc``) has no labels, and every sampled frame shows several people, so the figure is
the share of sampled frames in which at least one ``person`` is boxed, with the boxes counted
and the median time per frame (preprocess + inference + selection, batch 1), per tile grid and
confidence threshold, through the app's predictor.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def sample_frames(video: Path, every: int) -> list:
    """Every ``every``-th frame of ``video`` (BGR uint8), from the first; every read checked."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SystemExit(f"error: {video}: cannot be opened (Debian's opencv-doc package has vtest.avi)")
    frames, index = [], 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if index % every == 0:
                frames.append(frame)
            index += 1
    finally:
        cap.release()
    if not frames:
        raise SystemExit(f"error: {video}: no frame could be read")
    return frames


def measure(predictor, frames: list, tiles: list[str], confs: list[float], label: str = "person") -> list[dict]:
    """One row per (tile grid, confidence): frames with a ``label`` box, boxes, their median
    height in frame pixels (None when there is none), median ms."""
    import numpy as np

    rows = []
    for grid in tiles:
        predictor.tiles = None if grid == "off" else grid
        for conf in confs:
            predictor.set_thresholds(conf=conf)
            hits = boxes = 0
            ms, heights = [], []
            for frame in frames:
                prediction = predictor.run([frame])
                found = prediction.detections[0]
                ms.append(prediction.times.total)
                mine = [i for i, c in enumerate(found.class_ids) if found.class_names[c] == label]
                heights += [float(found.boxes[i][3] - found.boxes[i][1]) for i in mine]
                count = len(mine)
                boxes += count
                hits += count > 0
            rows.append({"tiles": grid, "conf": conf, "frames": len(frames), "frames_with_person": hits,
                         "person_boxes": boxes,
                         "median_height_px": round(float(np.median(heights)), 1) if heights else None,
                         "ms_per_frame": round(float(np.median(ms)), 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    from runtime.quiet import native_stderr_silenced

    with native_stderr_silenced():  # TensorFlow's start-up chatter
        from detector_app.model_store import DEFAULT_MODEL
        from runtime.predictor import Predictor

    parser = argparse.ArgumentParser(prog="python -m bench.pedestrians", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model file (default: the bundled model)")
    parser.add_argument("--video", default=str(VTEST), help=f"the clip (default {VTEST})")
    parser.add_argument("--every", type=int, default=40, help="every Nth frame (default 40: 20 frames)")
    parser.add_argument("--tiles", default="off,2x2,3x3", help="tile grids, comma-separated (default off,2x2,3x3)")
    parser.add_argument("--conf", default="0.3,0.5", help="confidence thresholds, comma-separated (default 0.3,0.5)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be 1 or more")
    try:
        confs = [float(c) for c in args.conf.split(",")]
    except ValueError:
        parser.error(f"--conf: expected numbers such as 0.3,0.5, got {args.conf!r}")
    frames = sample_frames(Path(args.video), args.every)
    with native_stderr_silenced():
        predictor = Predictor.from_file(args.model)
    if "person" not in predictor.class_names:
        print(f"error: {args.model} has no 'person' class", file=sys.stderr)
        return 2
    predictor.warmup()
    rows = measure(predictor, frames, [t.strip() for t in args.tiles.split(",")], confs)
    for row in rows:
        print(f"tiles {row['tiles']:>3} conf {row['conf']}: a person boxed in {row['frames_with_person']}/"
              f"{row['frames']} frames, {row['person_boxes']} boxes"
              + (f" (median {row['median_height_px']:.0f} px tall)" if row["median_height_px"] else "")
              + f", {row['ms_per_frame']} ms/frame")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "video": args.video, "every": args.every,
                                               "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

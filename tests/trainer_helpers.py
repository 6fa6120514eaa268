"""Helpers for the trainer tests: a tiny network spec and generated labelled folders.

Generated folders hold coloured shapes on a noisy background, one colour and shape per
class, large enough for the tiny spec's default boxes, written in the layouts users have.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import yaml

# BGR colour and shape of each generated class
SHAPES = {
    "redbox": ((40, 40, 230), "rectangle"),
    "bluedisc": ((230, 90, 30), "ellipse"),
    "greenbox": ((40, 200, 40), "rectangle"),
}


def tiny_spec(class_names: Sequence[str], size: int = 128):
    """A fast seed-style spec: alpha 0.25, 128x128 input, heads on block11 (8x8), block13 (4x4),
    extra1 (2x2), extra2 (1x1); 340 default boxes."""
    from models.layouts import heads_from_scales, seed_spec

    base = seed_spec(list(class_names), alpha=0.25)
    heads = heads_from_scales(("block11", "block13", "extra1", "extra2"), (0.15, 0.35, 0.55, 0.75, 0.95),
                              [(1.0, 2.0, 0.5)] * 4, [None] * 4)
    return dataclasses.replace(base, input_size=(size, size), extras=base.extras[:2], heads=heads,
                               layout="tiny").validate()


def write_spec_yaml(path: Path, class_names: Sequence[str]) -> Path:
    path.write_text(yaml.safe_dump(tiny_spec(class_names).to_dict(), sort_keys=False))
    return path


def voc_xml(filename: str, size_wh: tuple[int, int], objects: Sequence[tuple[str, Sequence[float]]],
            difficult: Sequence[bool] | None = None) -> str:
    w, h = size_wh
    parts = [f"<annotation><folder>x</folder><filename>{filename}</filename>",
             f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>"]
    for i, (name, box) in enumerate(objects):
        d = int(bool(difficult[i])) if difficult else 0
        box = [f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in box]
        parts.append(f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
                     f"<difficult>{d}</difficult><bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin>"
                     f"<xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object>")
    parts.append("</annotation>")
    return "\n".join(parts)


def draw_image(rng: np.random.Generator, classes: Sequence[str], size_wh=(160, 120), max_objects: int = 2):
    """A noisy background with 1..max_objects non-overlapping shapes. Returns (image, objects)."""
    w, h = size_wh
    image = rng.integers(60, 120, (h, w, 3), dtype=np.uint8)
    objects: list[tuple[str, list[float]]] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            bw, bh = int(rng.uniform(0.3, 0.6) * w), int(rng.uniform(0.3, 0.6) * h)
            x1, y1 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            box = [x1, y1, x1 + bw, y1 + bh]
            if all(_iou(box, o[1]) == 0 for o in objects):
                break
        else:
            continue
        name = classes[int(rng.integers(len(classes)))]
        colour, shape = SHAPES[name]
        if shape == "rectangle":
            cv2.rectangle(image, (box[0], box[1]), (box[2] - 1, box[3] - 1), colour, -1)
        else:
            cv2.ellipse(image, (((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), (bw, bh), 0), colour, -1)
        objects.append((name, [float(v) for v in box]))
    return image, objects


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def make_voc_folder(root: Path, n: int, classes: Sequence[str] = ("redbox", "bluedisc"), seed: int = 0,
                    layout: str = "voc2007", size_wh=(160, 120), prefix: str = "img") -> Path:
    """Write ``n`` generated images and their annotations in ``layout``:
    "voc2007" (Annotations/, JPEGImages/, ImageSets/Main/trainval.txt), "flat" (images/ +
    annotations/) or "side-by-side"."""
    rng = np.random.default_rng(seed)
    dirs = {"voc2007": ("JPEGImages", "Annotations"), "flat": ("images", "annotations"), "side-by-side": ("", "")}
    img_dir, ann_dir = (root / d if d else root for d in dirs[layout])
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        image, objects = draw_image(rng, classes, size_wh)
        stem = f"{prefix}{i:04d}"
        cv2.imwrite(str(img_dir / f"{stem}.png"), image)
        (ann_dir / f"{stem}.xml").write_text(voc_xml(f"{stem}.png", size_wh, objects))
        ids.append(stem)
    if layout == "voc2007":
        sets = root / "ImageSets" / "Main"
        sets.mkdir(parents=True, exist_ok=True)
        (sets / "trainval.txt").write_text("".join(f"{i}\n" for i in ids))
    return root

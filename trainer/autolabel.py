"""Pre-labels from a model: boxes for the classes a folder does not label, to review or train on.

Two uses. A user with unlabelled photos gets a first set of boxes to correct in labelImg
instead of drawing every one. And folders that label different classes (hard-hat photos box
helmets and heads, never the people wearing them) can have the missing classes filled in from
a model that knows them, so those images teach the class too (self-training: a model's
confident detections on unlabelled data used as labels, e.g. Sohn et al. 2020, "A Simple
Semi-Supervised Learning Framework for Object Detection" (STAC)).

The source folder is never written. ``OUT`` mirrors it: each annotation file with the new
objects appended (every existing object, tag and class kept as it was), new annotation files
for unlabelled images, and the images themselves as symbolic links (copies where links are not
allowed), so ``OUT`` is itself a labelled folder for ``train --data OUT`` and for labelImg.

Each detection of a requested class scored at least ``review_conf`` that does not overlap a
labelled object of its class (IoU >= ``same_iou``) becomes an object: an ordinary one from
``conf`` up, a ``difficult`` one below (labelImg shows the check box: these are the boxes to
look at; ``train --ignore-difficult`` neither learns them nor teaches their default boxes as
background). Why the band matters: once ``OUT`` has boxes of a class, every image of the
folder labels that class (class masks, :mod:`trainer.loss`), so a person the model missed
becomes a background example; the uncertain ones, at least, are kept out of that.

The train/validation split depends on the folder's name and its images (:mod:`trainer.split`):
give ``OUT`` the source folder's name (e.g. ``runs/labelled/hardhat`` for
``datasets/hardhat``) and the split stays the same, so no validation image is trained on.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import defusedxml.ElementTree as SafeET
import numpy as np

from models import Detections
from models.box_coder import pairwise_iou
from runtime.voc_writer import annotation_text as voc_text
from runtime.voc_writer import append_object, blank_annotation

from .atomic import write_text_atomic
from .errors import DataError
from .image_io import read_image

SUMMARY_FILE = "autolabel.json"


@dataclass(frozen=True)
class AutolabelConfig:
    """``classes``: the model's classes to add; ``conf``: from this score an ordinary
    object; ``review_conf``: from this score up to ``conf`` a difficult one (to review);
    ``same_iou``: a detection overlapping a labelled object of its class by this much is that
    object, not a new one; ``other_iou``: one that nearly coincides with a labelled object of
    another class is that object mistaken (a horse seen from behind scored as a person), not
    a new one (None: no such check)."""

    classes: tuple[str, ...]
    conf: float = 0.5
    review_conf: float = 0.25
    same_iou: float = 0.5
    other_iou: float | None = 0.7

    def validate(self) -> "AutolabelConfig":
        if not self.classes:
            raise DataError("--classes", "no class to add")
        if not 0.0 < self.review_conf <= self.conf <= 1.0:
            raise DataError("--conf", f"expected 0 < --review-conf <= --conf <= 1, got {self.review_conf} and {self.conf}")
        if not 0.0 < self.same_iou <= 1.0:
            raise DataError("--same-iou", f"expected an IoU in (0, 1], got {self.same_iou}")
        if self.other_iou is not None and not 0.0 < self.other_iou <= 1.0:
            raise DataError("--other-iou", f"expected an IoU in (0, 1], got {self.other_iou}")
        return self


@dataclass(frozen=True)
class Picture:
    """One image to label. ``boxes`` float32 (G, 4) pixel x1, y1, x2, y2 and ``names`` (G,)
    of its labelled objects (empty for an unlabelled image); ``annotation``: its XML file or
    None; ``exif_orientation``: decode as the scan found the labels need it."""

    image: Path
    annotation: Path | None
    boxes: np.ndarray
    names: tuple[str, ...]
    exif_orientation: bool = False


@dataclass(frozen=True)
class NewObject:
    """A box to add: pixel x1, y1, x2, y2 of the decoded image, its class and score."""

    name: str
    box: tuple[float, float, float, float]
    score: float
    difficult: bool


@dataclass
class AutolabelSummary:
    """What a run added, per class: ``added`` (ordinary objects), ``to_review`` (difficult),
    ``already_labelled`` (detections that matched a labelled object of their class),
    ``other_class`` (detections that coincided with a labelled object of another class)."""

    images: int = 0
    new_annotation_files: int = 0
    added: dict[str, int] = field(default_factory=dict)
    to_review: dict[str, int] = field(default_factory=dict)
    already_labelled: dict[str, int] = field(default_factory=dict)
    other_class: dict[str, int] = field(default_factory=dict)

    def count(self, table: dict[str, int], name: str) -> None:
        table[name] = table.get(name, 0) + 1


def new_objects(picture: Picture, detections: Detections,
                cfg: AutolabelConfig) -> tuple[list[NewObject], list[str], list[str]]:
    """The objects to add to ``picture`` from its ``detections`` (pixels of the decoded
    image), best first; the class names of the detections that were already labelled; and of
    those that coincided with a labelled object of another class."""
    wanted = set(cfg.classes)
    names = detections.names
    order = np.argsort(-detections.scores, kind="stable")
    added: list[NewObject] = []
    known: list[str] = []
    mistaken: list[str] = []
    labelled = np.asarray(picture.names, dtype=object)
    for i in order:
        score, name = float(detections.scores[i]), names[i]
        if name not in wanted or score < cfg.review_conf:
            continue
        box = detections.boxes[i].astype(np.float32)
        iou = pairwise_iou(box[None], picture.boxes.astype(np.float32))[0] if len(labelled) else np.zeros(0)
        if (iou[labelled == name] >= cfg.same_iou).any():
            known.append(name)
        elif cfg.other_iou is not None and (iou[labelled != name] >= cfg.other_iou).any():
            mistaken.append(name)
        else:
            added.append(NewObject(name, tuple(float(v) for v in box), score, score < cfg.conf))  # type: ignore[arg-type]
    return added, known, mistaken


def annotation_text(existing: bytes | None, image: Path, image_hw: tuple[int, int], objects: Sequence[NewObject]) -> str:
    """The annotation file's new text: ``existing`` (the file's bytes; None for an unlabelled
    image) with ``objects`` appended as ``<object>`` elements. Boxes are written as VOC counts
    them (whole pixels, 1-based) inside the image; the score goes in an extra tag that
    labelImg and this project's reader ignore."""
    root = blank_annotation(image.name, image.parent.name, image_hw) if existing is None else SafeET.fromstring(existing)
    for obj in objects:
        append_object(root, obj.name, obj.box, image_hw, obj.difficult, {"autolabel_score": f"{obj.score:.3f}"})
    return voc_text(root)


def _inside(path: Path, root: Path) -> Path:
    rel = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root)))
    if rel.parts and rel.parts[0] == "..":
        raise DataError(path, f"is outside the folder {root}; autolabel mirrors only files inside it")
    return rel


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        if target.resolve() == source.resolve():
            return
        target.unlink()
    try:
        os.symlink(os.path.abspath(source), target)
    except OSError:  # no symbolic links here (Windows without the privilege): copy
        shutil.copy2(source, target)


def mirror_folder(source_root: Path, out: Path) -> None:
    """Copy what defines the folder's image list (``ImageSets/``) into ``out``."""
    if (source_root / "ImageSets").is_dir():
        shutil.copytree(source_root / "ImageSets", out / "ImageSets", dirs_exist_ok=True)


def annotation_target(picture: Picture, source_root: Path, out: Path, layout: str) -> Path:
    """Where ``picture``'s annotation goes in ``out``: its own file's place, or for an
    unlabelled image the layout's place (``annotations/`` of a labelImg folder, else beside
    the image)."""
    if picture.annotation is not None:
        return out / _inside(picture.annotation, source_root)
    rel = _inside(picture.image, source_root)
    if layout == "flat":
        return out / "annotations" / f"{rel.stem}.xml"
    return out / rel.with_suffix(".xml")


def write_picture(picture: Picture, detections: Detections, cfg: AutolabelConfig, source_root: Path, out: Path,
                  layout: str, summary: AutolabelSummary) -> None:
    """Link the image into ``out`` and write its annotation with the new objects."""
    objects, known, mistaken = new_objects(picture, detections, cfg)
    _link_or_copy(picture.image, out / _inside(picture.image, source_root))
    existing = picture.annotation.read_bytes() if picture.annotation is not None else None
    text = annotation_text(existing, picture.image, detections.image_size, objects)
    target = annotation_target(picture, source_root, out, layout)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, text)
    summary.images += 1
    summary.new_annotation_files += existing is None
    for obj in objects:
        summary.count(summary.to_review if obj.difficult else summary.added, obj.name)
    for name in known:
        summary.count(summary.already_labelled, name)
    for name in mistaken:
        summary.count(summary.other_class, name)


def check_out_folder(source_root: Path, out: Path) -> None:
    """Refuse an ``out`` that is the source, inside it, holds it, or holds something else."""
    src, dst = source_root.resolve(), out.resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        raise DataError(out, f"must be a folder apart from {source_root} (the source is never written)")
    if out.exists() and any(out.iterdir()) and not (out / SUMMARY_FILE).is_file():
        raise DataError(out, "exists and is not an autolabel output (no autolabel.json); give a new or empty folder")


def load_picture(picture: Picture) -> np.ndarray:
    return read_image(picture.image, picture.exif_orientation)


def autolabel(
    pictures: Sequence[Picture],
    detect: Callable[[Sequence[Picture]], list[Detections]],
    cfg: AutolabelConfig,
    source_root: Path,
    out: Path,
    layout: str,
    settings: dict,
) -> AutolabelSummary:
    """Label ``pictures`` (all of one folder) into ``out``; ``detect`` gives each picture's
    detections in its decoded pixels. ``out/autolabel.json`` says ``"status": "running"``
    from the start and holds the settings and counts at the end; a run stopped half way is
    simply run again (every file is rewritten from the source, atomically)."""
    cfg.validate()
    check_out_folder(source_root, out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / SUMMARY_FILE, json.dumps({"status": "running", **settings, "config": asdict(cfg)}, indent=1))
    mirror_folder(source_root, out)
    summary = AutolabelSummary()
    for picture, detections in zip(pictures, detect(pictures), strict=True):
        write_picture(picture, detections, cfg, source_root, out, layout, summary)
    write_text_atomic(out / SUMMARY_FILE, json.dumps({"status": "finished", **settings, "config": asdict(cfg),
                                                      **asdict(summary)}, indent=1))
    return summary


def copy_record(folder: str | Path) -> dict | None:
    """What :func:`autolabel` recorded of ``folder`` if it wrote it (source, model, engine,
    tiles, classes, thresholds and counts), else None (an ordinary labelled folder). Training
    records it, so a model's card can say which labels were a model's.

    Raises :class:`DataError` if the labelling stopped half way (``"status": "running"``: some
    annotation files would still lack the new boxes) or the record cannot be read."""
    path = Path(folder) / SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"cannot be read ({exc}); run `main.py autolabel` into this folder again") from exc
    if not isinstance(record, dict) or record.get("status") != "finished":
        status = record.get("status") if isinstance(record, dict) else None
        raise DataError(folder, f"is an autolabel copy whose labelling did not finish (status {status!r}, expected "
                                "'finished'); run the same `main.py autolabel` command again before training on it")
    keep = ("source", "model", "engine", "tiles", "source_classes", "config", "added", "to_review")
    return {k: record[k] for k in keep if k in record}


def added_classes(folder: str | Path, record: dict) -> set[str]:
    """The classes a copy's model filled in that its source did not label (``train
    --copies-positive-only`` learns them only where they are boxed). Raises DataError for a
    copy made before autolabel recorded its source's classes."""
    if "source_classes" not in record:
        raise DataError(folder, "was made by an older `main.py autolabel` that did not record which classes its "
                                "source labels; run the same autolabel command again")
    return set((record.get("config") or {}).get("classes", ())) - set(record["source_classes"])


def format_summary(summary: AutolabelSummary, cfg: AutolabelConfig) -> str:
    lines = [f"{summary.images} images labelled ({summary.new_annotation_files} new annotation files)",
             f"{'class':12s} {'added':>7s} {'to review':>10s} {'already labelled':>17s} {'on another class':>17s}"]
    for name in cfg.classes:
        lines.append(f"{name:12s} {summary.added.get(name, 0):7d} {summary.to_review.get(name, 0):10d} "
                     f"{summary.already_labelled.get(name, 0):17d} {summary.other_class.get(name, 0):17d}")
    lines.append(f"added: score >= {cfg.conf}; to review: {cfg.review_conf} <= score < {cfg.conf}, written as "
                 "difficult (labelImg's check box; train --ignore-difficult leaves them out)")
    return "\n".join(lines)

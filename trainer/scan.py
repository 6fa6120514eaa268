"""Reading labelled folders into clean samples, and collecting every problem on the way.

One pass over each folder: parse every annotation (``defusedxml``), decode every image (so an
unreadable image is found here, not in the middle of an epoch), hash its bytes (duplicates),
and clean the boxes against the image's real size (:mod:`trainer.cleaning`). Both
``check-data`` and ``train`` use this pass: the report the user reads describes exactly the
data the trainer uses. A bad file never stops the pass; it becomes an :class:`Issue`.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .cleaning import clean_objects
from .folders import Entry, FolderLayout, discover, resolve_image
from .image_io import UnreadableImage, decode_image, read_image_bytes
from .issues import Issue
from .voc_xml import AnnotationError, parse_annotation


@dataclass(frozen=True)
class Sample:
    """One usable labelled image.

    ``boxes``: float32 (G, 4) pixel x1, y1, x2, y2 inside the image (G may be 0: a photo with
    no objects); ``names``: (G,) class names; ``difficult``: bool (G,); ``image_hw``: the
    decoded image's (height, width); ``source``: the folder it came from; ``key``: its name
    inside that folder; ``digest``: SHA-1 of the image file; ``exif_orientation``: decode with
    the EXIF orientation applied (see :func:`trainer.image_io.decode_image`).
    """

    source: str
    key: str
    image_path: str
    annotation_path: str | None
    image_hw: tuple[int, int]
    boxes: np.ndarray
    names: tuple[str, ...]
    difficult: np.ndarray
    digest: str
    exif_orientation: bool = False


@dataclass
class FolderScan:
    """Everything found in one folder: usable samples, problems, and the layout's notes."""

    root: str
    layout: str
    candidates: int
    samples: list[Sample] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def class_names(self) -> set[str]:
        """The classes this folder labels (its samples' object names)."""
        return {n for s in self.samples for n in s.names}


def _scan_entry(entry: Entry, known: frozenset[str] | None) -> tuple[Sample | None, list[Issue]]:
    """Read one entry; never raises for a bad file (it becomes an Issue)."""
    if entry.annotation is None:
        return None, [Issue("missing_annotation", str(entry.image), "image has no annotation file "
                            "(unlabelled); not used", {"unlabelled_image": True})]
    if not entry.annotation.is_file():
        return None, [Issue("missing_annotation", str(entry.annotation), f"image id {entry.key!r} is "
                            "listed in ImageSets but its annotation file does not exist; not used")]
    try:
        annotation = parse_annotation(entry.annotation)
    except AnnotationError as exc:
        return None, [Issue("xml_error", str(entry.annotation), f"{exc.reason}; skipped")]
    image_path = resolve_image(entry, annotation.filename)
    if image_path is None:
        wanted = annotation.filename or f"{entry.annotation.stem}.*"
        return None, [Issue("missing_image", str(entry.annotation), f"its image {wanted!r} is not in "
                            f"{entry.image_dir}; skipped")]
    try:
        data, digest = read_image_bytes(image_path)
        image = decode_image(data, image_path)
        hw = (int(image.shape[0]), int(image.shape[1]))
        exif = False
        if annotation.size is not None and annotation.size != (hw[1], hw[0]):
            # <size> may describe the photo as its EXIF orientation shows it (tools that rotate)
            turned = decode_image(data, image_path, exif_orientation=True)
            if annotation.size == (turned.shape[1], turned.shape[0]):
                hw, exif = (int(turned.shape[0]), int(turned.shape[1])), True
    except UnreadableImage as exc:
        return None, [Issue("unreadable_image", str(image_path), f"{str(exc).split(': ', 1)[-1]}; skipped "
                            f"(annotation {entry.annotation.name})")]
    objects, issues = clean_objects(annotation, hw, known)
    sample = Sample(
        source="", key=entry.key, image_path=str(image_path), annotation_path=str(entry.annotation),
        image_hw=hw, boxes=objects.boxes, names=objects.names, difficult=objects.difficult, digest=digest,
        exif_orientation=exif,
    )
    return sample, issues


def scan_folder(
    layout: FolderLayout,
    known: frozenset[str] | None,
    pool: ThreadPoolExecutor,
    progress: bool = False,
) -> FolderScan:
    """Scan the entries of one discovered folder with ``pool``'s threads (OpenCV decoding
    releases the GIL). Results keep the entries' order, so reports are reproducible."""
    scan = FolderScan(str(layout.root), layout.layout, len(layout.entries), notes=list(layout.notes))
    results: Iterable = pool.map(lambda e: _scan_entry(e, known), layout.entries)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(layout.entries), desc=f"reading {layout.root.name}", unit="img",
                       leave=False)
    claimed: set[str] = set()
    unlabelled: list[Issue] = []
    for sample, issues in results:
        if sample is not None:
            sample = _with_source(sample, scan.root)
            scan.samples.append(sample)
            claimed.add(os.path.normcase(sample.image_path))
        for issue in issues:
            (unlabelled if issue.detail and issue.detail.get("unlabelled_image") else scan.issues).append(issue)
    # An image whose stem differs from its XML's may still be named by that XML's <filename>.
    scan.issues.extend(i for i in unlabelled if os.path.normcase(i.file) not in claimed)
    return scan


def _with_source(sample: Sample, root: str) -> Sample:
    return dataclasses.replace(sample, source=root)


def mark_duplicates(scans: Sequence[FolderScan]) -> None:
    """Add a ``duplicate_file`` issue for every image whose bytes equal an earlier image's
    (across all folders); the first copy is named in the message."""
    first: dict[str, str] = {}
    for scan in scans:
        for sample in scan.samples:
            original = first.setdefault(sample.digest, sample.image_path)
            if original != sample.image_path:
                scan.issues.append(Issue("duplicate_file", sample.image_path, f"same bytes as {original}",
                                         {"same_as": original}))


def scan_folders(
    roots: Sequence[str | os.PathLike],
    known: Iterable[str] | None = None,
    workers: int = 4,
    progress: bool = False,
) -> list[FolderScan]:
    """Discover and scan every folder. Raises :class:`~trainer.errors.DataError` only for a
    folder that is missing or has no recognisable layout (before any reading starts)."""
    layouts = [discover(Path(r).resolve()) for r in roots]
    known_set = frozenset(known) if known is not None else None
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="scan") as pool:
        scans = [scan_folder(layout, known_set, pool, progress) for layout in layouts]
    mark_duplicates(scans)
    return scans

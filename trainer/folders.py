"""Finding the labelled images of one folder, in the layouts users' tools produce.

- ``voc2007``: ``Annotations/*.xml``, ``JPEGImages/``, optionally ``ImageSets/Main/*.txt``
  (the ids of ``trainval.txt`` when it exists, else of the other top-level lists, else every
  annotation file).
- ``flat``: labelImg's ``images/`` + ``annotations/`` (matched by file stem).
- ``side-by-side``: images and their ``.xml`` files in the same folder (labelImg's default).

Discovery only lists candidate pairs; reading and judging them is :mod:`trainer.scan`'s job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import DataError
from .image_io import IMAGE_EXTENSIONS, is_image_file


@dataclass(frozen=True)
class Entry:
    """One candidate labelled image.

    ``annotation``: the XML file or None (an image nobody labelled). ``image``: the image
    file when known from the layout, else None (then the XML's ``<filename>`` or stem is
    looked up in ``image_dir``). ``key``: a stable name inside the folder, for split lists.
    """

    key: str
    annotation: Path | None
    image: Path | None
    image_dir: Path


@dataclass(frozen=True)
class FolderLayout:
    """What :func:`discover` found in one folder."""

    root: Path
    layout: str
    entries: tuple[Entry, ...]
    notes: tuple[str, ...] = ()


def _listing(folder: Path) -> list[Path]:
    """The folder's entries, sorted; a folder that cannot be listed is a DataError naming it."""
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(folder, f"cannot be listed ({exc.strerror or exc})") from exc


def _child(root: Path, *names: str) -> Path | None:
    """A sub-folder of ``root`` with one of ``names``, case-insensitively (labelImg users
    write Images/ or images/)."""
    if not root.is_dir():
        return None
    wanted = {n.lower() for n in names}
    for child in _listing(root):
        if child.is_dir() and child.name.lower() in wanted:
            return child
    return None


def _files(folder: Path, keep: Callable[[str], bool]) -> list[Path]:
    return [p for p in _listing(folder) if p.is_file() and keep(p.name)]


def _is_xml(name: str) -> bool:
    return name.lower().endswith(".xml")


def _voc_ids(root: Path, annotations: Path) -> tuple[list[str], str]:
    """Image ids of a VOC2007 folder and where they came from."""
    sets = root / "ImageSets" / "Main"
    trainval = sets / "trainval.txt"
    lists = [trainval] if trainval.is_file() else []
    if not lists and sets.is_dir():
        # top-level lists only: per-class lists are "<class>_train.txt" with a label column
        lists = [sets / f"{n}.txt" for n in ("train", "val", "test") if (sets / f"{n}.txt").is_file()]
    if lists:
        ids: list[str] = []
        seen: set[str] = set()
        for path in lists:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise DataError(path, f"cannot be read ({exc.strerror or exc})") from exc
            for line in text.splitlines():
                # one id per line; ids may hold spaces (exports of user-named photos), so the
                # first word alone is the id only when the whole line names no annotation
                token = line.strip()
                if token and not (annotations / f"{token}.xml").is_file():
                    token = token.split()[0]
                if token and token not in seen:
                    seen.add(token)
                    ids.append(token)
        return ids, ", ".join(str(p.relative_to(root)) for p in lists)
    return [p.stem for p in _files(annotations, _is_xml)], "every file in Annotations/"


def _voc2007(root: Path, annotations: Path, images: Path) -> FolderLayout:
    ids, source = _voc_ids(root, annotations)
    notes = [f"image ids from {source}"]
    # An id is a file name inside Annotations/: one with a path in it ("../x", "/etc/x") would
    # make us read a file outside the folder, so it is left out and named.
    outside = [i for i in ids if Path(i).name != i or i in (".", "..")]
    skip = set(outside)
    if outside:
        shown = ", ".join(repr(i) for i in outside[:3]) + (" ..." if len(outside) > 3 else "")
        notes.append(f"{len(outside)} image id(s) in {source} name files outside Annotations/ ({shown}); ignored")
    entries = tuple(
        Entry(key=i, annotation=annotations / f"{i}.xml", image=None, image_dir=images) for i in ids
        if i not in skip
    )
    return FolderLayout(root, "voc2007", entries, tuple(notes))


def _paired(root: Path, images: Path, annotations: Path, layout: str) -> FolderLayout:
    """Pair images and XML files by stem (labelImg names the XML after the image)."""
    image_files = {p.stem: p for p in _files(images, is_image_file)}
    xml_files = {p.stem: p for p in _files(annotations, _is_xml)}
    entries = []
    for stem in sorted(set(image_files) | set(xml_files)):
        image, xml = image_files.get(stem), xml_files.get(stem)
        key = str((image or xml).relative_to(root))  # type: ignore[union-attr]
        entries.append(Entry(key=key, annotation=xml, image=image, image_dir=images))
    return FolderLayout(root, layout, tuple(entries))


def discover(root: str | os.PathLike) -> FolderLayout:
    """List the candidate labelled images of ``root``.

    Raises :class:`DataError` naming the folder when it is missing or has no recognisable
    layout.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(root, "no such folder")
    if not root.is_dir():
        raise DataError(root, "is a file, not a data folder (give the folder that holds the images and annotations)")
    annotations = _child(root, "Annotations")
    jpeg_images = _child(root, "JPEGImages")
    if annotations is not None and jpeg_images is not None:
        return _voc2007(root, annotations, jpeg_images)
    images = _child(root, "images", "JPEGImages")
    if images is not None and annotations is not None:
        return _paired(root, images, annotations, "flat")
    if _files(root, _is_xml) or _files(root, is_image_file):
        return _paired(root, root, root, "side-by-side")
    raise DataError(
        root,
        "no labelled images found; expected a VOC2007 folder (Annotations/, JPEGImages/, "
        "ImageSets/Main/), a labelImg folder (images/ + annotations/), or images with their "
        f".xml files side by side (image types: {', '.join(IMAGE_EXTENSIONS)})",
    )


def resolve_image(entry: Entry, filename: str | None) -> Path | None:
    """The image file of an entry: given by the layout, else the XML's ``<filename>`` in
    ``image_dir`` (with a missing extension filled in), else the entry's stem with any image
    extension. None when nothing exists."""
    if entry.image is not None:
        return entry.image if entry.image.is_file() else None
    candidates: list[Path] = []
    if filename:
        name = Path(filename).name  # never follow a path out of the folder
        candidates.append(entry.image_dir / name)
        if not Path(name).suffix:
            candidates += [entry.image_dir / f"{name}{ext}" for ext in IMAGE_EXTENSIONS]
    stem = entry.annotation.stem if entry.annotation is not None else entry.key
    for ext in IMAGE_EXTENSIONS:
        candidates += [entry.image_dir / f"{stem}{ext}", entry.image_dir / f"{stem}{ext.upper()}"]
    for path in candidates:
        if path.is_file():
            return path
    return None

"""Parsing one Pascal VOC annotation file (as VOC, labelImg and CVAT write them).

Parsing goes through ``defusedxml``: a hostile file (entity expansion "billion laughs",
external entities reading local files, DTDs) is refused instead of being expanded or
followed. Nothing here judges the boxes against the image: that is :mod:`trainer.cleaning`'s
job, once the image's real size is known.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import defusedxml
import defusedxml.ElementTree as SafeET

from .errors import DataError


@dataclass(frozen=True)
class RawObject:
    """One ``<object>`` as written. ``box`` is (xmin, ymin, xmax, ymax) in the file's pixel
    coordinates, or None with ``problem`` saying why it could not be read."""

    index: int  # 1-based position in the file, for messages
    name: str
    box: tuple[float, float, float, float] | None
    difficult: bool = False
    truncated: bool = False
    problem: str = ""


@dataclass(frozen=True)
class Annotation:
    """One annotation file. ``size`` is ``<size>`` as (width, height), None when absent or 0."""

    path: str
    filename: str | None
    size: tuple[int, int] | None
    objects: tuple[RawObject, ...] = field(default_factory=tuple)


class AnnotationError(DataError):
    """An annotation file is not well-formed XML, is hostile, or is not a VOC annotation."""


def _text(node: ET.Element | None, tag: str) -> str | None:
    child = node.find(tag) if node is not None else None
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _flag(node: ET.Element, tag: str) -> bool:
    """VOC flags are "0"/"1"; some tools write "true"/"false"."""
    value = (_text(node, tag) or "0").lower()
    return value in ("1", "true", "yes")


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None  # not NaN/inf


def _size(root: ET.Element) -> tuple[int, int] | None:
    node = root.find("size")
    w, h = _number(_text(node, "width")), _number(_text(node, "height"))
    if w is None or h is None or w < 1 or h < 1:
        return None
    return int(round(w)), int(round(h))


def _object(node: ET.Element, index: int) -> RawObject:
    name = _text(node, "name") or ""
    difficult, truncated = _flag(node, "difficult"), _flag(node, "truncated")
    box_node = node.find("bndbox")
    if box_node is None:
        return RawObject(index, name, None, difficult, truncated, "has no <bndbox>")
    raw = [_text(box_node, tag) for tag in ("xmin", "ymin", "xmax", "ymax")]
    values = [_number(v) for v in raw]
    if any(v is None for v in values):
        shown = ", ".join(f"{t}={v!r}" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), raw))
        return RawObject(index, name, None, difficult, truncated, f"has missing or non-numeric coordinates ({shown})")
    return RawObject(index, name, tuple(values), difficult, truncated)  # type: ignore[arg-type]


def parse_annotation_bytes(data: bytes, path: str | os.PathLike) -> Annotation:
    """Parse the bytes of a VOC annotation file named ``path`` (used in messages)."""
    try:
        root = SafeET.fromstring(data)
    except defusedxml.DefusedXmlException as exc:
        raise AnnotationError(path, f"refused as unsafe XML ({type(exc).__name__}: {exc})") from exc
    except ET.ParseError as exc:
        raise AnnotationError(path, f"is not well-formed XML ({exc})") from exc
    except (LookupError, ValueError) as exc:  # an encoding Python lacks or expat cannot use
        raise AnnotationError(path, f"declares a text encoding that cannot be read ({exc})") from exc
    if root.tag != "annotation":
        raise AnnotationError(path, f"is XML but not a VOC annotation (root element <{root.tag}>, expected <annotation>)")
    objects = tuple(_object(node, i) for i, node in enumerate(root.findall("object"), start=1))
    return Annotation(str(path), _text(root, "filename"), _size(root), objects)


def parse_annotation(path: str | os.PathLike) -> Annotation:
    """Read and parse one annotation file. Raises :class:`AnnotationError` naming it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise AnnotationError(path, f"cannot be read ({exc.strerror or exc})") from exc
    return parse_annotation_bytes(data, path)

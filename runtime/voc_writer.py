"""Pascal VOC annotation files as labelImg writes them, for detections a model made.

Two writers need it: the app's snapshots (``detector_app.gui.snapshot``: the frame's
detections as a labelled picture) and ``main.py autolabel`` (``trainer.autolabel``: a model's
boxes appended to a folder's annotations). It lives with the runtime, which both may import.

Boxes are written as VOC counts them: whole pixels, 1-based, inside the image (a box from
pixel 0 to the last column is ``<xmin>1</xmin>`` ... ``<xmax>width</xmax>``), so a detection
read back by :mod:`trainer.voc_xml` lands where the model put it, to the pixel.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Sequence


def sub_element(parent: ET.Element, tag: str, text: str) -> ET.Element:
    node = ET.SubElement(parent, tag)
    node.text = text
    return node


def blank_annotation(filename: str, folder: str, image_hw: tuple[int, int], database: str | None = None) -> ET.Element:
    """An ``<annotation>`` with no objects, as labelImg starts one; ``image_hw``: (height, width)."""
    root = ET.Element("annotation")
    sub_element(root, "folder", folder)
    sub_element(root, "filename", filename)
    if database:
        sub_element(ET.SubElement(root, "source"), "database", database)
    size = ET.SubElement(root, "size")
    for tag, value in (("width", image_hw[1]), ("height", image_hw[0]), ("depth", 3)):
        sub_element(size, tag, str(value))
    sub_element(root, "segmented", "0")
    return root


def append_object(root: ET.Element, name: str, box: Sequence[float], image_hw: tuple[int, int],
                  difficult: bool = False, extra: dict[str, str] | None = None) -> ET.Element:
    """Append an ``<object>``: ``box`` (x1, y1, x2, y2) in 0-based pixels of an image of
    ``image_hw`` (height, width); ``extra``: more tags before ``<bndbox>`` (labelImg and this
    project's reader skip tags they do not know)."""
    height, width = image_hw
    node = ET.SubElement(root, "object")
    sub_element(node, "name", name)
    sub_element(node, "pose", "Unspecified")
    sub_element(node, "truncated", "0")
    sub_element(node, "difficult", "1" if difficult else "0")
    for tag, text in (extra or {}).items():
        sub_element(node, tag, text)
    bndbox = ET.SubElement(node, "bndbox")
    x1, y1, x2, y2 = box
    for tag, value, limit in (("xmin", x1, width), ("ymin", y1, height), ("xmax", x2, width), ("ymax", y2, height)):
        sub_element(bndbox, tag, str(int(min(limit, max(1, round(float(value)) + 1)))))
    return node


def annotation_text(root: ET.Element) -> str:
    """The file's text: indented like labelImg's, ending in a newline."""
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"

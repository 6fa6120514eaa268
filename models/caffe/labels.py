"""Class names for an imported network, from a label file.

Two formats, told apart by content:

- a plain list, one class name per line (blank lines and ``#`` comments ignored);
- Caffe SSD's ``labelmap.prototxt``: ``item { name: ... label: N display_name: ... }``, in
  label order (``display_name`` preferred).

Either may list the background class first (label 0 / a line "background"): it is dropped,
since the app adds background itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import CaffeImportError, PrototxtError
from .prototxt import Message, parse


def _from_labelmap(items: list[Message], path: Path) -> list[str]:
    entries = []
    for item in items:
        if not isinstance(item, Message) or "label" not in item:
            raise CaffeImportError(path, "an item of the label map has no 'label' number")
        label = item.get("label")
        if not isinstance(label, int) or isinstance(label, bool):
            raise CaffeImportError(path, f"an item of the label map has label {label!r}, expected a number")
        entries.append((label, str(item.get("display_name", item.get("name", "")))))
    entries.sort()
    labels = [label for label, _ in entries]
    if len(set(labels)) != len(labels):
        raise CaffeImportError(path, f"the label map repeats a label number: {labels}")
    return [name for label, name in entries if label != 0]


def _from_lines(text: str) -> list[str]:
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    names = [n for n in names if n]
    if names and names[0].lower() in ("background", "__background__"):
        names = names[1:]
    return names


def read_labels(path: str | os.PathLike) -> list[str]:
    """Class names (without background) from a label file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CaffeImportError(path, "no such label file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CaffeImportError(path, f"is not a UTF-8 text file of class names ({exc.reason})") from exc
    items = []
    if "item" in text and "{" in text:
        try:
            items = parse(text, path).get_all("item")
        except PrototxtError:
            items = []  # not a label map after all: read it as a list
    names = _from_labelmap(items, path) if items else _from_lines(text)
    if not names:
        raise CaffeImportError(path, "lists no class names")
    return names

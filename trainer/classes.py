"""Class lists: from ``--classes`` (a comma list or a YAML file), from a model, or from the data.

Background is internal to the network (class 0); users never list or count it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import DataError


def _validate(names: Sequence[str], where: str) -> tuple[str, ...]:
    cleaned = tuple(str(n).strip() for n in names)
    if not cleaned:
        raise DataError(where, "the class list is empty; give at least one class name")
    if any(not n for n in cleaned):
        raise DataError(where, f"the class list has an empty name: {list(cleaned)}")
    dup = sorted({n for n in cleaned if cleaned.count(n) > 1})
    if dup:
        raise DataError(where, f"the class list repeats {dup}")
    if any(n.lower() == "background" for n in cleaned):
        raise DataError(where, "'background' is internal to the model and must not be listed; remove it")
    return cleaned


def _yaml_names(data: Any, path: Path) -> list[str]:
    """A YAML list, or a mapping with ``names``/``classes`` (a list, or {index: name})."""
    if isinstance(data, dict):
        for key in ("names", "classes", "class_names"):
            if key in data:
                data = data[key]
                break
        else:
            raise DataError(path, f"expected a list of class names or a mapping with 'names'; found keys {sorted(data)}")
    if isinstance(data, dict):
        data = [data[k] for k in sorted(data)]
    if not isinstance(data, list) or not all(isinstance(n, (str, int, float)) for n in data):
        raise DataError(path, f"expected a list of class names, found {type(data).__name__}")
    return [str(n) for n in data]


def parse_classes(value: str) -> tuple[str, ...]:
    """``--classes``: "helmet,head" or the path of a YAML file listing the names."""
    path = Path(value)
    if path.suffix.lower() in (".yaml", ".yml", ".txt") or os.sep in value:
        if not path.is_file():
            raise DataError(path, "no such class-list file (give a YAML list, or names separated by commas)")
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise DataError(path, f"is not a readable YAML class list ({exc})") from exc
        if isinstance(data, str):  # a .txt with one name per line
            data = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return _validate(_yaml_names(data, path), str(path))
    return _validate([n for n in value.split(",")], "--classes")


def classes_from_data(names: Iterable[str], where: str) -> tuple[str, ...]:
    """The sorted set of class names found in the data (a stable, predictable order)."""
    found = sorted(set(names))
    if not found:
        raise DataError(where, "no labelled objects found, so there are no classes to train; "
                               "label some objects or give --classes")
    return _validate(found, where)

"""The model registry: which model files the app knows. Qt-free.

A small YAML file (``models.yaml`` in the config folder of :mod:`detector_app.settings`)
lists model files with their name, kind and classes::

    models:
    - {path: /home/me/runs/hardhat/model.keras, name: hardhat, kind: trained, classes: [helmet, head]}

Kinds: ``bundled`` (the app's default model, always listed first and never stored),
``imported`` (converted with ``main.py import-caffe`` or added in the GUI) and ``trained``
(made by ``main.py train``). Files that have gone missing stay listed with ``missing`` set, so
the picker can show them greyed out; nothing here raises for them.

Other commands add their outputs with one call::

    from detector_app.model_registry import register_model
    register_model("runs/hardhat/model.keras", "trained")
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from .model_store import DEFAULT_CLASSES, DEFAULT_MODEL
from .settings import config_dir
from .writers import AtomicFile, OutputError

KINDS = ("bundled", "imported", "trained")
REGISTRY_FILE = "models.yaml"


class RegistryError(ValueError):
    """A model cannot be registered (unknown kind, or the file is not a model)."""


@dataclass(frozen=True)
class ModelEntry:
    """One known model file. ``classes``: what it detects (empty if unknown)."""

    path: str
    name: str
    kind: str
    classes: tuple[str, ...] = ()

    @property
    def missing(self) -> bool:
        return not Path(self.path).is_file()

    def label(self) -> str:
        """How a picker shows it: "hardhat (trained: helmet, head)"."""
        classes = ", ".join(self.classes[:6]) + (", ..." if len(self.classes) > 6 else "")
        text = f"{self.name} ({self.kind}{': ' + classes if classes else ''})"
        return f"{text} [missing]" if self.missing else text


def registry_path() -> Path:
    return config_dir() / REGISTRY_FILE


def bundled_entry() -> ModelEntry:
    """The bundled default model (listed even while its file has not shipped yet)."""
    return ModelEntry(str(DEFAULT_MODEL), "default", "bundled", tuple(DEFAULT_CLASSES))


def load_registry(registry: str | os.PathLike | None = None) -> list[ModelEntry]:
    """The registered entries, in file order; unreadable files or entries are left out."""
    path = Path(registry) if registry is not None else registry_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    items = data.get("models") if isinstance(data, dict) else None
    return [entry for entry in map(_entry, items or []) if entry is not None]


def _entry(item) -> ModelEntry | None:
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        return None
    kind = item.get("kind") if item.get("kind") in KINDS else "imported"
    classes = item.get("classes") if isinstance(item.get("classes"), list) else []
    name = item.get("name") if isinstance(item.get("name"), str) else Path(item["path"]).stem
    return ModelEntry(item["path"], name, kind, tuple(str(c) for c in classes))


def list_models(registry: str | os.PathLike | None = None) -> list[ModelEntry]:
    """Every model to offer: the bundled one first, then imported, then trained ones."""
    order = {kind: i for i, kind in enumerate(KINDS)}
    bundled = bundled_entry()
    entries = [e for e in load_registry(registry) if not _same(e.path, bundled.path)]
    return [bundled, *sorted(entries, key=lambda e: order[e.kind])]


def register_model(
    path: str | os.PathLike,
    kind: str,
    name: str | None = None,
    classes: list[str] | tuple[str, ...] | None = None,
    registry: str | os.PathLike | None = None,
) -> ModelEntry:
    """Add (or update) a model file in the registry and return its entry.

    ``classes`` is read from the file when not given; raises :class:`RegistryError` for an
    unknown kind or a file that is not a model of this app, writers.OutputError if the
    registry cannot be written.
    """
    if kind not in KINDS or kind == "bundled":
        raise RegistryError(f"kind must be 'imported' or 'trained', got {kind!r}")
    path = Path(path).resolve()
    if classes is None:
        classes = _read_classes(path)
    entry = ModelEntry(str(path), name or _default_name(path), kind, tuple(classes))
    entries = [e for e in load_registry(registry) if not _same(e.path, entry.path)]
    _save([*entries, entry], registry)
    return entry


def unregister_model(path: str | os.PathLike, registry: str | os.PathLike | None = None) -> bool:
    """Forget a model file (the file itself is not touched); True if it was listed."""
    entries = load_registry(registry)
    kept = [e for e in entries if not _same(e.path, str(path))]
    if len(kept) != len(entries):
        _save(kept, registry)
    return len(kept) != len(entries)


def _read_classes(path: Path) -> tuple[str, ...]:
    from models.model_file import ModelFileError, read_spec

    try:
        return tuple(read_spec(path).class_names)
    except ModelFileError as exc:
        raise RegistryError(str(exc)) from exc


def _default_name(path: Path) -> str:
    """A trained run's model is usually RUN_DIR/model.keras: name it after the run."""
    generic = {"model", "best", "last", "final"}
    return path.parent.name if path.stem in generic and path.parent.name else path.stem


def _same(a: str, b: str) -> bool:
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def _save(entries: list[ModelEntry], registry: str | os.PathLike | None) -> Path:
    path = Path(registry) if registry is not None else registry_path()
    records = [{**asdict(e), "classes": list(e.classes)} for e in entries]
    atomic = AtomicFile(path)
    try:
        atomic.tmp.write_text(yaml.safe_dump({"models": records}, sort_keys=False), encoding="utf-8")
    except OSError as exc:
        atomic.abort()
        raise OutputError(f"{path}: the model registry could not be written ({exc.strerror or exc})") from exc
    return atomic.commit()

"""One model file: a ``.keras`` archive that carries the spec, class names and weights.

Saving is atomic (write a temporary file beside the target, then rename), so a crash never
leaves a half-written file in place of a good one. Loading checks the archive before Keras
sees it and always uses ``safe_mode=True``; any problem becomes one :class:`ModelFileError`
that names the file and says what is wrong.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras

from .atomic import AtomicFile, AtomicWriteError
from .spec import ModelSpec, SpecError
from .ssd import SSDModel

MODEL_CLASS = "SSDModel"
# What a model file of this app declares, exactly: Keras resolves the class from these names,
# so a file naming any other module or registered name is refused before Keras reads it.
EXPECTED_HEADER = {"class_name": MODEL_CLASS, "module": "models.ssd", "registered_name": "detector_app>SSDModel"}
ALLOWED_CONFIG_KEYS = {"spec", "name", "trainable", "dtype"}
# A model's config.json is a few kilobytes; a larger one is not read into memory (a zip entry
# can decompress to gigabytes from a small file).
MAX_CONFIG_BYTES = 1 << 20


class ModelFileError(ValueError):
    """A model file is missing, damaged, foreign, or not loadable safely."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ModelWriteError(ModelFileError, OSError):
    """A model file could not be written (disk full, read-only folder); the message names it.
    Also an ``OSError``, so code that handles failed writes as OS errors still does."""


def save_model(model: SSDModel, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` (must end in ``.keras``) atomically; return the path.

    Raises :class:`ModelWriteError` naming ``path`` when it cannot be written; an earlier file
    of that name is then left as it was.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelFileError(path, "model files must end in .keras")
    try:
        # Keras chooses the format by the file's ending: the temporary must end in .keras
        with AtomicFile(path, suffix=".tmp.keras", prefix=path.stem) as out:
            model.save(out.tmp)
    except AtomicWriteError as exc:
        raise ModelWriteError(path, exc.reason) from exc
    except OSError as exc:  # a full disk or a folder gone read-only, while Keras wrote
        kept = "the previous file is kept" if path.exists() else "nothing was written"
        raise ModelWriteError(path, f"could not be written ({exc.strerror or exc}); {kept}") from exc
    return path


def read_spec(path: str | os.PathLike) -> ModelSpec:
    """The spec stored in a model file, without building or loading the network."""
    path = Path(path)
    config = _read_config(path)
    try:
        return ModelSpec.from_dict(config["config"]["spec"])
    except (KeyError, TypeError, SpecError) as exc:
        raise ModelFileError(path, f"its model spec is missing or invalid ({exc})") from exc


def load_model(path: str | os.PathLike) -> SSDModel:
    """Load a detector saved by :func:`save_model`, with Keras safe mode on.

    Raises :class:`ModelFileError` for a missing, truncated, foreign or unsafe file.
    """
    path = Path(path)
    read_spec(path)  # validates the archive, the class and the spec first
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except ModelFileError:
        raise
    except Exception as exc:  # Keras raises many types for damaged weights; report them as one
        raise ModelFileError(path, f"could not be loaded: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, SSDModel):
        raise ModelFileError(path, f"holds a {type(model).__name__}, not a detector of this app")
    return model


def _read_config(path: Path) -> dict:
    if not path.exists():
        raise ModelFileError(path, "no such file")
    if path.is_dir():
        raise ModelFileError(path, "is a folder, not a model file")
    if not path.is_file():  # a FIFO would block the reader forever; a device could be endless
        raise ModelFileError(path, "is not a regular file (a pipe, device or socket); give a model file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            path,
            "is not a Keras model archive (.keras zip); it may be truncated, or another format "
            "(for a Caffe model use `main.py import-caffe`)",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise ModelFileError(path, "is a zip archive but not a Keras model (no config.json)")
            if "model.weights.h5" not in names:
                raise ModelFileError(path, "has no weights (model.weights.h5 missing)")
            size = archive.getinfo("config.json").file_size
            if size > MAX_CONFIG_BYTES:
                raise ModelFileError(path, f"has a config.json of {size / 2**20:.0f} MB (a model's is a few KB); "
                                           "refusing to read it")
            bad = archive.testzip()
            if bad is not None:
                raise ModelFileError(path, f"is damaged (entry {bad} fails its checksum)")
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelFileError(path, f"is truncated or damaged ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise ModelFileError(path, f"has an unreadable config.json ({exc})") from exc
    if not isinstance(config, dict) or config.get("class_name") != MODEL_CLASS:
        found = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise ModelFileError(
            path,
            f"is a Keras model of class {found!r}, not a detector saved by this app "
            f"(expected {MODEL_CLASS}); import other models with `main.py import-caffe`",
        )
    for key, expected in EXPECTED_HEADER.items():
        if config.get(key) != expected:
            raise ModelFileError(
                path, f"declares {key} {config.get(key)!r} instead of {expected!r}; refusing to load it "
                      f"(a model file of this app names only its own class)")
    inner = config.get("config")
    if not isinstance(inner, dict) or not set(inner) <= ALLOWED_CONFIG_KEYS:
        extra = sorted(set(inner) - ALLOWED_CONFIG_KEYS) if isinstance(inner, dict) else inner
        raise ModelFileError(path, f"has unexpected model config entries {extra!r}; refusing to load it")
    return config

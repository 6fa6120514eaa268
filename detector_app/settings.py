"""The desktop app's settings: a small YAML file in the user's config folder. Qt-free.

``load_settings()`` never fails: a missing file gives the defaults, a damaged one gives the
defaults plus a warning naming it, and a bad value is replaced by its default with a warning.
``save_settings()`` writes atomically (a crash never leaves half a file).

The config folder is ``$DETECTOR_APP_CONFIG_DIR`` if set (tests use it), else
``$XDG_CONFIG_HOME/detector-app`` (``~/.config/detector-app``) on Linux,
``~/Library/Application Support/detector-app`` on macOS and ``%APPDATA%\\detector-app`` on
Windows.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from .writers import AtomicFile, OutputError

APP_DIR_NAME = "detector-app"
SETTINGS_FILE = "settings.yaml"


def config_dir() -> Path:
    """The folder holding the app's settings and model registry (not created here)."""
    override = os.environ.get("DETECTOR_APP_CONFIG_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / APP_DIR_NAME


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


@dataclass
class Settings:
    """What the app remembers between runs.

    ``window_geometry`` / ``window_state``: Qt's saveGeometry()/saveState() as base64 text.
    ``realtime``: files play at their own FPS (True) or as fast as possible (False).
    """

    last_source: str | None = None
    model: str | None = None
    conf: float = 0.5
    iou: float = 0.45
    hidden_classes: list[str] = field(default_factory=list)
    tiles: str = "off"  # tiled inference for small objects: "off", "2x2", "3x3" (runtime.tiling)
    realtime: bool = True
    window_geometry: str | None = None
    window_state: str | None = None
    output_dir: str | None = None
    train_data: list[str] = field(default_factory=list)
    train_epochs: int = 20
    train_base_model: str | None = None


def _unit(low_open: bool, high_open: bool) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return False
        above = v > 0 if low_open else v >= 0
        below = v < 1 if high_open else v <= 1
        return above and below

    return ok


def _optional_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _tiles(v: Any) -> bool:
    from runtime.tiling import TileGrid

    if not isinstance(v, str):
        return False
    try:
        TileGrid.parse(v)
    except ValueError:
        return False
    return True


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


# field -> (check, what it must be); a value failing its check falls back to the default.
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "last_source": (_optional_str, "text"),
    "model": (_optional_str, "a file path"),
    "conf": (_unit(False, True), "a number in [0, 1)"),
    "iou": (_unit(True, False), "a number in (0, 1]"),
    "hidden_classes": (_str_list, "a list of class names"),
    "tiles": (_tiles, "off, 2x2 or 3x3"),
    "realtime": (lambda v: isinstance(v, bool), "true or false"),
    "window_geometry": (_optional_str, "text"),
    "window_state": (_optional_str, "text"),
    "output_dir": (_optional_str, "a folder path"),
    "train_data": (_str_list, "a list of folders"),
    "train_epochs": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "a positive whole number"),
    "train_base_model": (_optional_str, "a file path"),
}


def load_settings(path: str | os.PathLike | None = None) -> tuple[Settings, list[str]]:
    """The saved settings (defaults where missing or bad) and the warnings to show."""
    path = Path(path) if path is not None else settings_path()
    if not path.exists():
        return Settings(), []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return Settings(), [f"{path}: settings could not be read ({exc}); using defaults"]
    if data is None:
        return Settings(), []
    if not isinstance(data, dict):
        return Settings(), [f"{path}: expected a mapping of settings, got {type(data).__name__}; using defaults"]
    return _from_dict(data, path)


def _from_dict(data: dict, path: Path) -> tuple[Settings, list[str]]:
    values: dict[str, Any] = {}
    warnings = []
    for name, (check, expected) in CHECKS.items():
        if name not in data:
            continue
        value = data[name]
        if check(value):
            values[name] = value
        else:
            warnings.append(f"{path}: {name} must be {expected}, got {value!r}; using the default")
    return Settings(**values), warnings


def save_settings(settings: Settings, path: str | os.PathLike | None = None) -> Path:
    """Write the settings atomically; raises writers.OutputError naming the file."""
    path = Path(path) if path is not None else settings_path()
    atomic = AtomicFile(path)
    try:
        atomic.tmp.write_text(yaml.safe_dump(dataclasses.asdict(settings), sort_keys=False), encoding="utf-8")
    except OSError as exc:
        atomic.abort()
        raise OutputError(f"{path}: settings could not be written ({exc.strerror or exc})") from exc
    return atomic.commit()

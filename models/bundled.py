"""Where the model that ships with the app lives.

The bundled default model (``assets/default_model.keras``, described in
``assets/MODEL_CARD.md``) is what the app, ``detect``, ``eval`` and ``bench`` use when no
``--model`` is given. Only the path lives here, so that both ``detector_app`` and ``trainer``
can find it without importing each other.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MODEL = PROJECT_ROOT / "assets" / "default_model.keras"
# The classes the bundled model detects (street and highway photos, hard-hat photos, animal
# photos), in its output order; see assets/MODEL_CARD.md.
BUNDLED_CLASSES = ("person", "car", "bus", "truck", "motorbike", "helmet", "head", "dog", "cat", "sheep", "horse",
                   "cow")


def bundled_model_path() -> Path | None:
    """The bundled model file, or None when this checkout has none."""
    return BUNDLED_MODEL if BUNDLED_MODEL.is_file() else None


def bundled_spec():
    """The bundled model's network (EfficientNet-Lite0 SSDLite) with its classes, for a random
    stand-in of the same cost when a checkout has no model file."""
    from .layouts import lite0_spec

    return lite0_spec(BUNDLED_CLASSES)

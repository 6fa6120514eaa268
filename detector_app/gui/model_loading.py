"""Loading a model for the GUI (run off the GUI thread: loading and warm-up take seconds).
Qt-free."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.predictor import EngineUpgrade, Predictor, start_predictor

from ..model_store import DEFAULT_MODEL, RANDOM_WARNING, resolve_model


@dataclass
class LoadedModel:
    """A ready predictor. ``path``: the file (None for the random stand-in model);
    ``warning``: what to tell the user (the random-model warning), or None."""

    predictor: Predictor
    path: str | None
    warning: str | None = None
    upgrade: EngineUpgrade | None = None  # a LiteRT conversion to finish in the background


def load_predictor(path: str | None) -> LoadedModel:
    """Load ``path`` (None: the bundled default, else a random model), build and warm up its
    predictor. Raises models.model_file.ModelFileError naming the file."""
    resolved = resolve_model(path)
    # A first-time LiteRT conversion takes tens of seconds: the model detects at once on the
    # compiled Keras graph while a child process converts, then switches (see EngineUpgrade).
    predictor, upgrade = start_predictor(resolved.model, source=resolved.path or "random model (untrained)")
    warning = RANDOM_WARNING.format(path=DEFAULT_MODEL) if resolved.is_random else None
    return LoadedModel(predictor, resolved.path, warning, upgrade)

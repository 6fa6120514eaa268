"""Loading a model for the GUI (run off the GUI thread: loading and warm-up take seconds).
Qt-free."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.predictor import Predictor

from ..model_store import DEFAULT_MODEL, RANDOM_WARNING, resolve_model


@dataclass
class LoadedModel:
    """A ready predictor. ``path``: the file (None for the random stand-in model);
    ``warning``: what to tell the user (the random-model warning), or None."""

    predictor: Predictor
    path: str | None
    warning: str | None = None


def load_predictor(path: str | None) -> LoadedModel:
    """Load ``path`` (None: the bundled default, else a random model), build and warm up its
    predictor. Raises models.model_file.ModelFileError naming the file."""
    resolved = resolve_model(path)
    # A first-time LiteRT conversion holds the GIL for seconds: do it in a child process so
    # the window keeps painting while the model loads.
    predictor = Predictor(resolved.model, source=resolved.path or "random model (untrained)",
                          convert_in_child=True)
    warning = RANDOM_WARNING.format(path=DEFAULT_MODEL) if resolved.is_random else None
    return LoadedModel(predictor, resolved.path, warning)

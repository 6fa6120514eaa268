"""Where models come from: the bundled default, a file the user names, or (until a trained
default ships) a randomly initialised model with a loud warning. Qt-free."""

from __future__ import annotations

import os
from dataclasses import dataclass

from models.bundled import BUNDLED_CLASSES as DEFAULT_CLASSES  # noqa: F401  (re-exported for the registry)
from models.bundled import BUNDLED_MODEL as DEFAULT_MODEL
from models.bundled import PROJECT_ROOT as ROOT  # noqa: F401  (re-exported for the GUI)

RANDOM_WARNING = (
    "WARNING: no model file given and no bundled default model found at {path}; using a "
    "RANDOMLY INITIALISED model. Its detections mean nothing. Pass --model FILE (a model "
    "trained with `main.py train` or imported with `main.py import-caffe`)."
)


@dataclass
class ResolvedModel:
    model: object  # models.SSDModel
    path: str | None  # None for the random model
    is_random: bool


def resolve_model(path: str | os.PathLike | None) -> ResolvedModel:
    """Load ``path``, else the bundled default, else build a random model of the bundled layout.

    Raises models.model_file.ModelFileError (naming the file) if ``path`` cannot be loaded.
    """
    from models import build_model
    from models.bundled import bundled_spec
    from models.model_file import load_model

    if path is not None:
        return ResolvedModel(load_model(path), str(path), False)
    if DEFAULT_MODEL.is_file():
        return ResolvedModel(load_model(DEFAULT_MODEL), str(DEFAULT_MODEL), False)
    return ResolvedModel(build_model(bundled_spec()), None, True)

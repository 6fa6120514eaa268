"""A training run's settings, and how a re-run of the same ``--out`` resumes it.

A run folder records its settings in ``config.yaml`` when it starts. Running ``train`` again
with the same ``--out`` resumes: options not given on the command line take the recorded
values, and an option given with a different value is refused (a resumed run must be the run
that was started, or "exact resume" would mean nothing). Settings that do not change the
result (threads, progress file, checkpoint interval) may differ.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DataError

CONFIG_FILE = "config.yaml"
CHECKPOINT_FILE = "checkpoint.npz"
# The most extra default boxes per object `--match-top-k` may ask for (trainer.targets uses it;
# it lives here because this module must not import Keras).
MAX_TOP_K = 16


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (see ``main.py train --help`` for each)."""

    data: tuple[str, ...]
    out: str
    from_model: str | None = None
    classes: tuple[str, ...] | None = None
    epochs: int = 30
    batch_size: int = 32
    val_split: float = 0.15
    layout: str = "seed"
    alpha: float = 1.0
    spec_file: str | None = None
    imagenet: bool = False
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    freeze_backbone_epochs: int = 0
    freeze_through: str | None = None
    top_down: bool = False  # add a top-down path to the finest heads (models.layouts.with_top_down)
    # how many of the finest heads --top-down reaches: models.layouts.TOP_DOWN_HEADS, spelled as a
    # literal because importing models loads Keras (a test keeps the two equal)
    top_down_heads: int = 2
    top_down_depth: int = 1  # how many coarser heads' maps each of them reads
    class_mask: str = "auto"
    oversample: str | None = None  # "CLASS=FACTOR,..." (trainer.sampling)
    match_top_k: int = 0  # also each object's K best default boxes (trainer.targets); 0: the paper's rule
    ignore_difficult: bool = False  # VOC difficult objects: neither positives nor background (trainer.targets)
    copies_positive_only: bool = False  # classes an autolabel copy added: never background there (trainer.loss)
    positive_only_copies: tuple[str, ...] = ()  # the same for these copies only (a subset of data)
    mosaic: float = 0.0  # share of training images built from four of their folder (trainer.mosaic)
    precision: str = "float32"
    seed: int = 0
    # the split's own seed (default: seed), so a later stage can draw new shuffles and
    # augmentations with another --seed while validating on the recorded split
    split_seed: int | None = None
    augment: bool = True
    eval_every: int = 1
    # settings that do not change the result
    devices: int = 1  # data-parallel over this many accelerators (JAX); the global batch is kept
    workers: int = 4
    progress_jsonl: str | None = None
    checkpoint_minutes: float = 10.0
    progress_bar: bool = True

    @property
    def positive_only_option(self) -> str | None:
        """The option that made some copies positive-only, as the user typed it, or None."""
        if self.copies_positive_only:
            return "--copies-positive-only"
        return "--positive-only-copy" if self.positive_only_copies else None

    @property
    def effective_split_seed(self) -> int:
        """The seed the train/validation split is drawn with: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    def validate(self) -> "TrainConfig":
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "val_split": 0.0 <= self.val_split < 1.0,
            "alpha": 0.0 < self.alpha <= 4.0,
            "lr": self.lr is None or self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "warmup_epochs": self.warmup_epochs >= 0,
            "freeze_backbone_epochs": self.freeze_backbone_epochs >= 0,
            "top_down_heads": self.top_down_heads >= 1,
            "top_down_depth": self.top_down_depth >= 1,
            "eval_every": self.eval_every >= 1,
            "devices": self.devices >= 1 and self.batch_size % self.devices == 0,
            "class_mask": self.class_mask in ("auto", "on", "off"),
            "precision": self.precision in ("float32", "mixed_float16", "mixed_bfloat16"),
            "schedule": self.schedule in ("cosine", "step"),
            "optimizer": self.optimizer in ("sgd", "adam"),
            "match_top_k": 0 <= self.match_top_k <= MAX_TOP_K,
            "mosaic": 0.0 <= self.mosaic <= 1.0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if self.oversample is not None:
            from .sampling import parse_oversample

            parse_oversample(self.oversample)  # raises DataError naming the bad part
        if bad:
            raise DataError("train", "invalid settings: " + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad))
        if not self.data:
            raise DataError("train", "no data folder given (--data DIR)")
        if self.mosaic and not self.augment:
            raise DataError("--mosaic", "is an augmentation; it does not combine with --no-augment")
        if self.positive_only_copies:
            if self.copies_positive_only:
                raise DataError("--positive-only-copy", "--copies-positive-only already covers every copy; give one "
                                                        "of the two")
            stray = [d for d in self.positive_only_copies if d not in self.data]
            if stray:
                raise DataError("--positive-only-copy", f"{', '.join(stray)} is not one of the --data folders; name "
                                                        "a copy the run trains on")
        if self.imagenet and (self.from_model or self.spec_file or self.layout != "lite0"):
            raise DataError("--imagenet", "starts a new EfficientNet-Lite0 detector (layout lite0) from ImageNet "
                                          f"weights; it does not combine with --from, --spec or --layout {self.layout}")
        return self


# Fields a resumed run may change without changing its result.
VOLATILE_FIELDS = ("out", "devices", "workers", "progress_jsonl", "checkpoint_minutes", "progress_bar")


def identity(config: TrainConfig) -> dict[str, Any]:
    """The settings that define the run's result, as YAML-safe data."""
    data = dataclasses.asdict(config)
    for k in VOLATILE_FIELDS:
        data.pop(k)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items()}


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


def normalise(values: dict[str, Any]) -> dict[str, Any]:
    """Paths made absolute and lists made tuples, so settings compare reliably."""
    out = dict(values)
    for key in ("data", "positive_only_copies"):
        if out.get(key) is not None:
            out[key] = tuple(_absolute(p) for p in out[key])
    for key in ("from_model", "spec_file", "progress_jsonl"):
        if out.get(key) is not None:
            out[key] = _absolute(out[key])
    if out.get("classes") is not None:
        out["classes"] = tuple(out["classes"])
    return out


def read_recorded(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``config.yaml`` of a run folder (settings and resolved values), or None."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(path, f"is not readable YAML ({exc}); the run folder is damaged, use another --out") from exc
    if not isinstance(data, dict) or "settings" not in data:
        raise DataError(path, "has no 'settings'; the run folder is damaged or not a training run, use another --out")
    return data


def resolve_config(explicit: dict[str, Any], resume: bool = False) -> tuple[TrainConfig, bool]:
    """The run's config from the options given explicitly (None = not given) and, when
    ``--out`` holds a started run, its recorded settings. Returns (config, resuming).

    Raises DataError listing every explicitly given option that contradicts the recorded run.
    """
    given = normalise({k: v for k, v in explicit.items() if v is not None})
    out = given["out"]
    has_checkpoint = (Path(out) / CHECKPOINT_FILE).is_file()
    if resume and not has_checkpoint:
        raise DataError(out, "--resume was given but this folder holds no interrupted run (no checkpoint.npz)")
    recorded = read_recorded(out) if has_checkpoint else None
    if recorded is None:
        if not given.get("data"):
            raise DataError(out, "nothing to resume here and no data given; add --data DIR (a labelled folder)")
        return TrainConfig(**given).validate(), False
    settings = normalise(recorded["settings"])
    conflicts = [
        f"--{k.replace('_', '-')} {given[k]!r} (the run has {settings.get(k)!r})"
        for k in given
        if k not in VOLATILE_FIELDS and k in settings and given[k] != settings[k]
    ]
    if conflicts:
        raise DataError(out, "holds a run started with other settings: " + "; ".join(conflicts) +
                        ". Resume with the same options, or give a new --out (to train on, use "
                        f"--from {Path(out) / 'best.keras'})")
    merged = {**settings, **{k: given[k] for k in VOLATILE_FIELDS if k in given}, "out": out}
    return TrainConfig(**merged).validate(), True

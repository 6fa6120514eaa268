"""The train/validation split: deterministic, per folder, duplicates kept together, recorded.

Each folder contributes ``val_fraction`` of its images to validation, so every data source is
measured. Identical image files (same bytes) are one unit: a copy in training and another in
validation would let the model be graded on what it memorised. The split depends only on the
seed and the images' names and contents, and it is written to the run folder
(``val_images.txt``, ``train_images.txt``); a resumed run reads it back instead of
recomputing it.
"""

from __future__ import annotations

import os
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from .atomic import write_text_atomic
from .errors import DataError
from .scan import Sample


def split_samples(samples: Sequence[Sample], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, val indices) into ``samples``.

    Per source folder, groups of identical files are shuffled with a generator seeded by
    (seed, folder name) and the first round(val_fraction * groups) go to validation (at least
    one group when val_fraction > 0 and the folder has two or more).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    by_source: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, s in enumerate(samples):
        by_source[s.source][s.digest].append(i)
    train, val = [], []
    for source in sorted(by_source):
        groups = sorted(by_source[source].values(), key=lambda g: samples[g[0]].key)
        n_val = int(round(val_fraction * len(groups)))
        if val_fraction > 0 and len(groups) >= 2:
            n_val = min(max(n_val, 1), len(groups) - 1)
        rng = np.random.default_rng([seed, zlib.crc32(Path(source).name.encode())])
        order = rng.permutation(len(groups))
        for rank, g in enumerate(order):
            (val if rank < n_val else train).extend(groups[g])
    return sorted(train), sorted(val)


def write_split(run_dir: str | os.PathLike, samples: Sequence[Sample], train: Sequence[int], val: Sequence[int]) -> None:
    """Record the split as two text files of image paths, one per line."""
    run_dir = Path(run_dir)
    write_text_atomic(run_dir / "train_images.txt", "".join(f"{samples[i].image_path}\n" for i in train))
    write_text_atomic(run_dir / "val_images.txt", "".join(f"{samples[i].image_path}\n" for i in val))


def read_split(run_dir: str | os.PathLike, samples: Sequence[Sample]) -> tuple[list[int], list[int], list[str]]:
    """The recorded split applied to ``samples``: (train, val, notes).

    Images recorded for validation stay there; images not recorded at all (added to the folder
    since) go to training, and recorded images that are gone are mentioned in the notes.
    """
    run_dir = Path(run_dir)
    path = run_dir / "val_images.txt"
    if not path.is_file():
        raise DataError(path, "the run folder has a checkpoint but no recorded split; it is damaged — "
                              "start again with a new --out")
    recorded_val = {line for line in path.read_text(encoding="utf-8").splitlines() if line}
    train_path = run_dir / "train_images.txt"
    recorded_train = set(train_path.read_text(encoding="utf-8").splitlines()) if train_path.is_file() else set()
    train, val, notes = [], [], []
    for i, s in enumerate(samples):
        (val if s.image_path in recorded_val else train).append(i)
    present = {s.image_path for s in samples}
    new = [s.image_path for s in samples if s.image_path not in recorded_val | recorded_train]
    gone = (recorded_val | recorded_train) - present - {""}
    if new:
        notes.append(f"{len(new)} image(s) are new since the run started; they join training")
    if gone:
        notes.append(f"{len(gone)} recorded image(s) are no longer usable (removed or now invalid)")
    return train, val, notes


def listed_paths(list_file: str | os.PathLike) -> set[str]:
    """The resolved image paths of an image list (one per line, as a run's ``val_images.txt``
    holds them). Raises DataError naming the list when it is missing."""
    path = Path(list_file)
    if not path.is_file():
        raise DataError(path, "no such image list")
    return {str(Path(line.strip()).resolve()) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def restrict_to_list(samples: Sequence[Sample], list_file: str | os.PathLike) -> list[Sample]:
    """The samples whose image is named in ``list_file`` (one path per line, as a run's
    ``val_images.txt`` holds them), in ``samples``' order. Raises DataError naming the list
    when it is missing or names none of them."""
    wanted = listed_paths(list_file)
    chosen = [s for s in samples if str(Path(s.image_path).resolve()) in wanted]
    if not chosen:
        raise DataError(Path(list_file), "none of the listed images is among the usable images of --data")
    return chosen

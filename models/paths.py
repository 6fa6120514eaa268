"""Path checks shared by every command that writes: an output must never be one of its inputs.

Lives in ``models`` (standard library only) so that ``detector_app`` and ``trainer`` both use
the same rule without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable


def _resolved(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name one file: after resolving links, or (both existing) the
    same inode, which also catches hard links."""
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): then only the resolved names could match
        return False


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """True when ``path`` (resolved) is ``folder`` or lies anywhere below it."""
    p, f = _resolved(path), _resolved(folder)
    return p == f or f in p.parents


def output_clash(outputs: Iterable[tuple[str, str | os.PathLike | None]],
                 inputs: Iterable[tuple[str, str | os.PathLike | None]]) -> str | None:
    """The first clash among ``outputs`` ((option, path); None = not written) with each other or
    with ``inputs`` ((what, path)), as a sentence for the user; None when there is none."""
    given = [(o, p) for o, p in outputs if p is not None]
    for what, source in inputs:
        if source is None:
            continue
        for option, path in given:
            if same_file(path, source):
                return f"{option} {path} is {what}; writing there would destroy it. Choose another file name"
    for i, (option, path) in enumerate(given):
        for other, other_path in given[i + 1:]:
            if same_file(path, other_path):
                return f"{option} and {other} name the same file ({path}); give each its own file"
    return None

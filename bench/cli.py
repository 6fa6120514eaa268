"""`main.py bench`: speed figures for this machine (printed; never asserted in tests).

Sections (all by default):
- ``compare``: this app's predictor against OpenCV-DNN, ``model.predict`` and plain LiteRT on
  the same frames, with ratios against OpenCV-DNN (see bench/compare.py);
- ``pipeline``: the headless capture -> queue -> predictor -> overlay pipeline on vtest.avi;
- ``stages``: the predictor's preprocess / inference / postprocess at each batch size, and
  NumPy decode + NMS on its own;
plus the model's FLOPs per frame against the machine's measured peak.
"""

from __future__ import annotations

import argparse

SECTIONS = ("compare", "pipeline", "stages")


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _sections(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = set(names) - set(SECTIONS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return names


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model file (default: the bundled model, else a random model of its layout)")
    parser.add_argument("--also", action="append", default=[], metavar="MODEL_FILE",
                        help="another model timed through the predictor in the same interleaved turns "
                             "(e.g. the previous default model); repeatable")
    parser.add_argument("--sections", type=_sections, default=list(SECTIONS),
                        help=f"what to run, comma-separated (default: {','.join(SECTIONS)})")
    parser.add_argument("--batch", type=_ints, default=[1, 8], help="batch sizes for the stage figures (default 1,8)")
    parser.add_argument("--calls", type=int, default=100, help="timed frames per contender / batch size (default 100)")
    parser.add_argument("--pipeline-frames", type=int, help="frames of vtest.avi for the pipeline (default: all 795)")
    parser.add_argument("--json", dest="json_out", help="write every figure as JSON here")
    parser.add_argument("--markdown", help="write the contenders table as Markdown here")


def contenders_table(contenders: list[dict], pipeline: dict | None) -> str:
    """Markdown table of the contenders (ratio = OpenCV-DNN's ms / this row's ms)."""
    base = next((c for c in contenders if c["name"] == "opencv-dnn-caffe" and "ms_p50" in c), None)
    lines = ["| contender | ms/frame p50 | p95 | frames/s | vs OpenCV-DNN | notes |", "|---|---|---|---|---|---|"]
    for c in contenders:
        if "ms_p50" not in c:
            lines.append(f"| `{c['name']}` | - | - | - | - | skipped: {c.get('skipped', '')} |")
            continue
        ratio = f"{base['ms_p50'] / c['ms_p50']:.2f}x" if base else "-"
        lines.append(f"| `{c['name']}` | {c['ms_p50']:.1f} | {c['ms_p95']:.1f} | {c['fps']:.1f} | {ratio} | {c.get('note', '')} |")
    if pipeline:
        lines.append(f"| pipeline (`vtest.avi`, {pipeline['mode']}) | latency {pipeline['latency_ms_p50']:.1f} | "
                     f"{pipeline['latency_ms_p95']:.1f} | {pipeline['fps']:.1f} | - | capture -> queue -> "
                     f"predictor -> overlay, {pipeline['frames']} frames, {pipeline['dropped']} dropped |")
    return "\n".join(lines)


def run_bench(args: argparse.Namespace) -> int:
    import json
    import sys

    from detector_app.model_store import resolve_model
    from models import num_default_boxes
    from models.model_file import ModelFileError
    from runtime.predictor import Predictor

    from .flops import model_flops
    from .frames import VTEST, benchmark_frames
    from .machine import machine_info
    from .peak import measured_peak_gflops

    try:
        resolved = resolve_model(args.model)
    except ModelFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = resolved.model
    frames, frames_from = benchmark_frames(max(64, 8 * max(args.batch)))
    peak = measured_peak_gflops()
    flops = model_flops(model)
    machine = machine_info()
    machine.update(peak_gflops=round(peak, 1),
                   peak_method="best of 5 float32 2048x2048x2048 matrix products through NumPy's BLAS, all cores")
    result: dict = {
        "machine": machine,
        "model": resolved.path or "random model of the bundled layout (same cost as a trained one)",
        "default_boxes": num_default_boxes(model.spec),
        "gflops_per_frame": round(flops / 1e9, 3),
        "frames": frames_from,
    }
    print(f"machine: {machine['cpu']}, {machine['cores']} cores; measured peak {peak:.0f} GFLOP/s (float32 GEMM)")
    print(f"model: {result['model']}, {result['default_boxes']} default boxes, {flops / 1e9:.2f} GFLOPs per frame; "
          f"frames: {frames_from}")

    if "compare" in args.sections:
        from pathlib import Path

        from models.model_file import load_model

        from .compare import run_contenders

        try:
            others = {Path(p).stem: load_model(p) for p in args.also}
        except ModelFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        result["contenders"] = run_contenders(model, frames, args.calls, log=print, other_models=others)
    if "pipeline" in args.sections:
        from .pipeline_bench import run_pipeline

        if VTEST.exists():
            print("timing the pipeline on vtest.avi ...")
            result["pipeline"] = run_pipeline(Predictor(model), VTEST, args.pipeline_frames)
            for line in (f"pipeline: {result['pipeline']['fps']:.1f} frames/s, latency p50 "
                         f"{result['pipeline']['latency_ms_p50']:.1f} ms, p95 {result['pipeline']['latency_ms_p95']:.1f} ms",):
                print(line)
        else:
            print(f"pipeline skipped: {VTEST} not found (apt-get install opencv-doc)")
    if "contenders" in result:
        table = contenders_table(result["contenders"], result.get("pipeline"))
        print(table)
        for c in result["contenders"]:
            if "ms_p50" in c:
                used = flops / 1e9 / (c["ms_p50"] / 1e3) if "default" in c["name"] else None
                if used:
                    c["gflops_per_s"] = round(used, 1)
                    c["share_of_peak"] = round(used / peak, 3)
        if args.markdown:
            with open(args.markdown, "w", encoding="utf-8") as f:
                f.write(table + "\n")
    if "stages" in args.sections:
        from .predictor_bench import decode_nms_times, stage_times

        predictor = Predictor(model, warmup=False)
        result["backend"], result["device"], result["engine"] = predictor.backend, predictor.device, predictor.engine
        result["stages"] = {}
        print(f"stages ({predictor.backend}, {predictor.engine} engine, {predictor.device}), ms per frame:")
        print(f"{'batch':>5} {'stage':>12} {'p50':>8} {'p95':>8}")
        for batch in args.batch:
            times = stage_times(predictor, frames, batch, args.calls)
            result["stages"][str(batch)] = times
            for stage, t in times.items():
                print(f"{batch:>5} {stage:>12} {t['ms_p50']:>8.2f} {t['ms_p95']:>8.2f}")
        # Tiled inference (the app's "Small objects"): every view of a frame in one batch.
        result["tiles"] = {}
        for grid in ("2x2", "3x3"):
            predictor.tiles = grid
            times = stage_times(predictor, frames, 1, max(10, args.calls // 4))
            predictor.tiles = None
            result["tiles"][grid] = times
            print(f"tiles {grid} + full frame, batch 1: p50 {times['total']['ms_p50']:.1f} ms per frame "
                  f"(inference {times['inference']['ms_p50']:.1f}, postprocess {times['postprocess']['ms_p50']:.1f})")
        for conf in (0.5, 0.01):
            t = decode_nms_times(predictor, frames[0], conf)
            result[f"decode_nms_conf_{conf}"] = t
            print(f"decode + NMS in NumPy, {result['default_boxes']} boxes, conf {conf}: "
                  f"p50 {t['ms_p50']:.2f} ms, p95 {t['ms_p95']:.2f} ms")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, default=str)
        print(f"wrote {args.json_out}")
    return 0

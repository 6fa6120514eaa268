"""`main.py bench`: speed figures for this machine (printed; never asserted in tests)."""

from __future__ import annotations

import argparse


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model file (default: the bundled model, else a random seed-layout model)")
    parser.add_argument("--batch", type=_ints, default=[1, 8], help="batch sizes, comma-separated (default 1,8)")
    parser.add_argument("--calls", type=int, default=60, help="timed calls per batch size (default 60)")
    parser.add_argument("--json", dest="json_out", help="also write the figures as JSON here")


def run_bench(args: argparse.Namespace) -> int:
    import json
    import sys

    from detector_app.model_store import resolve_model
    from detector_app.predictor import Predictor
    from models import num_default_boxes
    from models.model_file import ModelFileError

    from .flops import model_flops
    from .frames import benchmark_frames
    from .machine import machine_info
    from .predictor_bench import decode_nms_times, stage_times

    try:
        resolved = resolve_model(args.model)
    except ModelFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = resolved.model
    predictor = Predictor(model, warmup=False)
    frames, frames_from = benchmark_frames(max(64, 8 * max(args.batch)))
    flops = model_flops(model)
    result = {
        "machine": machine_info(),
        "backend": predictor.backend,
        "device": predictor.device,
        "model": resolved.path or "random seed-layout model (same cost as a trained one)",
        "default_boxes": num_default_boxes(model.spec),
        "gflops_per_frame": flops / 1e9,
        "frames": frames_from,
        "batches": {},
    }
    print(f"machine: {result['machine']['cpu']} ({result['machine']['cores']} cores), "
          f"{predictor.backend} on {predictor.device}")
    print(f"model: {result['model']}, {result['default_boxes']} default boxes, "
          f"{flops / 1e9:.2f} GFLOPs per frame; frames: {frames_from}")
    print(f"{'batch':>5} {'stage':>12} {'ms/frame p50':>13} {'p95':>8}")
    for batch in args.batch:
        times = stage_times(predictor, frames, batch, args.calls)
        result["batches"][str(batch)] = times
        for stage, t in times.items():
            print(f"{batch:>5} {stage:>12} {t['ms_p50']:>13.2f} {t['ms_p95']:>8.2f}")
    for conf in (0.5, 0.01):
        t = decode_nms_times(predictor, frames[0], conf)
        result[f"decode_nms_conf_{conf}"] = t
        print(f"decode + NMS in NumPy, {result['default_boxes']} boxes, conf {conf}: "
              f"p50 {t['ms_p50']:.2f} ms, p95 {t['ms_p95']:.2f} ms")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json_out}")
    return 0

"""Training throughput: the loader alone, the training step alone, and both together.

    python bench/train_bench.py [--data DIR] [--batch 32,64] [--steps 4] [--alpha 1.0]
        [--layout seed|lite0] [--precision float32|mixed_bfloat16] [--frozen] [--freeze-through BLOCK]

Figures (images per second, printed, never asserted):

- ``loader``: decoding + SSD augmentation + target encoding in the loader's threads, with
  nothing consuming the batches but the loop itself;
- ``step``: the compiled training step (forward, loss, backward, update) on batches already
  in memory, at each batch size;
- ``train``: loader and step together, as a real epoch runs them.

If ``train`` is close to ``step``, the accelerator (here the CPU) limits; if it is close to
``loader``, data loading does. Data: ``../shared/datasets/hardhat`` when present (real
JPEGs), else a generated folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "hardhat"


def _generated_folder() -> Path:
    """A generated VOC folder for machines without ../shared."""
    sys.path.insert(0, str(ROOT / "tests"))
    from trainer_helpers import make_voc_folder

    root = Path(tempfile.mkdtemp(prefix="train_bench_"))
    return make_voc_folder(root / "voc", 256, classes=("redbox", "bluedisc"), size_wh=(416, 312))


def _rate(images: int, seconds: float) -> float:
    return images / seconds if seconds > 0 else float("nan")


def bench_loader(loader, batches: int) -> float:
    """Images/s of the loader alone over ``batches`` batches (after one warm-up batch)."""
    it = loader.epoch(0)
    next(it)
    start = time.perf_counter()
    n = 0
    for _ in range(batches):
        n += next(it).count
    seconds = time.perf_counter() - start
    it.close()
    return _rate(n, seconds)


def bench_step(wrapper, batch, steps: int) -> tuple[float, float]:
    """(images/s, seconds of the first call = compile) of the training step on one in-memory batch."""
    start = time.perf_counter()
    wrapper.train_on_batch(batch.images, batch.targets)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        wrapper.train_on_batch(batch.images, batch.targets)
    return _rate(steps * batch.count, time.perf_counter() - start), compile_s


def bench_train(wrapper, loader, steps: int) -> float:
    """Images/s of loader + step together (the step is compiled already)."""
    it = loader.epoch(1)
    start = time.perf_counter()
    n = 0
    for _ in range(steps):
        batch = next(it)
        wrapper.train_on_batch(batch.images, batch.targets)
        n += batch.count
    seconds = time.perf_counter() - start
    it.close()
    return _rate(n, seconds)


def run_train_bench(
    data: str | os.PathLike | None = None,
    batch_sizes: Sequence[int] = (32, 64),
    steps: int = 4,
    loader_batches: int = 8,
    alpha: float = 1.0,
    workers: int | None = None,
    out=print,
    layout: str = "seed",
    precision: str = "float32",
    frozen: bool = False,
    freeze_through: str | None = None,
) -> dict[str, Any]:
    """Measure and print the three figures for each batch size; return them as a dict."""
    import keras

    from bench.machine import machine_info
    from models import build_model
    from models.layouts import LAYOUTS
    from trainer.augment import AugmentConfig
    from trainer.finetune import set_backbone_trainable
    from trainer.loader import BatchLoader
    from trainer.scan import scan_folders
    from trainer.training_model import SSDTrainer

    folder = Path(data) if data else (DEFAULT_DATA if DEFAULT_DATA.is_dir() else _generated_folder())
    workers = workers or max(2, min(8, os.cpu_count() or 2))
    samples = [s for scan in scan_folders([folder], workers=workers) for s in scan.samples]
    classes = sorted({n for s in samples for n in s.names})
    spec = LAYOUTS[layout](classes, alpha=alpha) if layout == "seed" else LAYOUTS[layout](classes)
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy(precision)
    detector = build_model(spec)
    set_backbone_trainable(detector, not frozen, freeze_through)
    wrapper = SSDTrainer(detector)
    wrapper.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9))
    info = machine_info()
    figures: dict[str, Any] = {
        "machine": info, "backend": keras.backend.backend(), "data": str(folder), "images": len(samples),
        "layout": f"{layout} alpha {alpha} at {spec.input_size[0]}x{spec.input_size[1]}, {precision}"
                  + (", backbone frozen" if frozen else "")
                  + (f", frozen through {freeze_through}" if freeze_through and not frozen else ""), "workers": workers, "batches": [],
    }
    out(f"{info['cpu']}, {info['cores']} cores; keras {keras.__version__} on {keras.backend.backend()}; "
        f"{figures['layout']}; {len(samples)} images from {folder}; {workers} loader threads")
    out(f"{'batch':>5}  {'loader img/s':>12}  {'step img/s':>10}  {'train img/s':>11}  {'compile s':>9}  limit")
    for batch_size in batch_sizes:
        with BatchLoader(samples, classes, spec, batch_size, seed=0, augment_config=AugmentConfig(),
                         workers=workers, prefetch=2) as loader:
            loader_rate = bench_loader(loader, loader_batches)
            batch = next(loader.epoch(2))
            step_rate, compile_s = bench_step(wrapper, batch, steps)
            train_rate = bench_train(wrapper, loader, steps)
        limit = "loader" if loader_rate < step_rate else "step (compute)"
        row = {"batch": batch_size, "loader_images_per_s": round(loader_rate, 2), "step_images_per_s": round(step_rate, 2),
               "train_images_per_s": round(train_rate, 2), "compile_s": round(compile_s, 1), "limit": limit}
        figures["batches"].append(row)
        out(f"{batch_size:>5}  {loader_rate:>12.1f}  {step_rate:>10.1f}  {train_rate:>11.1f}  {compile_s:>9.1f}  {limit}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help=f"a labelled folder (default {DEFAULT_DATA} when present)")
    parser.add_argument("--batch", default="32,64", help="batch sizes, comma-separated (default 32,64)")
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per figure (default 4)")
    parser.add_argument("--loader-batches", type=int, default=8, help="timed loader batches (default 8)")
    parser.add_argument("--alpha", type=float, default=1.0, help="MobileNet width of the seed layout (default 1.0)")
    parser.add_argument("--workers", type=int, help="loader threads (default: cores, 2..8)")
    parser.add_argument("--layout", default="seed", help="seed (default), caffe or lite0")
    parser.add_argument("--precision", default="float32", help="float32 (default), mixed_bfloat16, mixed_float16")
    parser.add_argument("--frozen", action="store_true", help="backbone frozen (as --freeze-backbone-epochs)")
    parser.add_argument("--freeze-through", help="backbone frozen up to this feature map (as train --freeze-through)")
    parser.add_argument("--json", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    figures = run_train_bench(args.data, [int(b) for b in args.batch.split(",") if b.strip()], args.steps,
                              args.loader_batches, args.alpha, args.workers, layout=args.layout,
                              precision=args.precision, frozen=args.frozen, freeze_through=args.freeze_through)
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())

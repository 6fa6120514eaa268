"""Train the default model on a lent GPU (the device tool's H200, JAX backend) in one call.

The device machine has JAX, OpenCV, NumPy and PyYAML but no TensorFlow and no Keras, reaches
no network, and takes at most 64 MiB of files per call (the repository, 20 MiB of it the
default model, included) and gives back at most 8 files of 16 MiB. So:

1. here: ``python -m tools.gpu_train prepare`` writes ``.gpu/``: the training images (every
   usable image of the data folders not on the recorded validation list) shrunk to the network's
   input size and WebP-encoded at the best quality that fits what is left of the 64 MiB, as
   VOC folders under their own names; and ``.whl/``: the wheels the machine lacks (Keras and its
   two missing needs, defusedxml). It prints the device commands and the paths to carry. The
   7,428 training images fit one call only at WebP quality 30 (blurred, blocky), so by default
   the cache is in two parts (quality 75 as measured), carried by two calls in a row: the first only
   carries part 0 (the machine keeps it while it stays warm, 30 s after a call), the second
   carries part 1 and the wheels and trains. If the machine was given back in between, the
   second call trains on part 1 alone and says so.
2. there (the device tool's ``run``, carrying ``.gpu`` and ``.whl``): ``python3 -m
   tools.gpu_train device`` measures how fast the loader feeds images on that machine's cores,
   picks the number of epochs that fits ``--minutes``, trains the whole network (nothing
   frozen) ``--from`` the bundled model with ``KERAS_BACKEND=jax``, stops cleanly at the
   deadline if it must, and writes to ``$OUT``: the model in parts under 16 MiB, ``log.csv``,
   ``summary.yaml``, ``train.log`` and ``device.json`` (machine, loader rate, epochs, times).
3. here: ``python -m tools.gpu_train collect FILES_AT RUN_DIR`` joins the parts, checks the
   model loads with the expected classes, and prints the ``main.py eval`` command that measures
   it on the recorded validation split (which never travels: it is measured here, through the
   runtime the app uses).

The device side imports only what the machine has plus the carried wheels; the test suite runs
all three steps on a generated folder with the JAX backend on this CPU and TensorFlow blocked.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
DEFAULT_FOLDERS = ("hardhat", "animals", "highway", "vehicles", "coco128")
DEFAULT_MODEL = "assets/default_model.keras"
DEFAULT_VAL_LIST = "docs/runs/val_images.txt"
CACHE_DIR = ".gpu"
WHEEL_DIR = ".whl"
TREE_LIMIT_MIB = 64.0
MARGIN_MIB = 1.5
PART_MIB = 15.0
QUALITIES = (90, 85, 80, 75, 70, 65, 60, 55, 50, 45, 40, 35, 30)
# what the device machine lacks, with the versions this checkout runs (its keras pin)
WHEELS = ("keras", "namex", "optree", "defusedxml")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
MODEL_PART = "model.keras.part"
WARM_S = 30  # the device machine is given back this long after a call
RECIPE = ("oversample", "match_top_k", "ignore_difficult", "mosaic")  # main.py train options prepare records for the device


def _mib(n_bytes: float) -> float:
    return n_bytes / 2**20


# ---- prepare (here) -------------------------------------------------------------------------

def travelling_bytes(root: Path = ROOT, carried: Sequence[str] = ()) -> int:
    """Bytes of what a device call sends besides ``carried``: tracked files and untracked files
    git does not ignore (the device README's working tree)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, check=True).stdout.split(b"\0")
    total = 0
    for name in filter(None, listed):
        path = root / os.fsdecode(name)
        if path.is_file() and not any(path.is_relative_to(root / c) for c in carried):
            total += path.stat().st_size
    return total


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def shrink(image: np.ndarray, boxes: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The image with its longer side at most ``side`` px (area interpolation) and its pixel
    x1, y1, x2, y2 boxes scaled with it."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale == 1.0:
        return image, boxes.astype(np.float32)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    out = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    factors = np.array([nw / w, nh / h, nw / w, nh / h], np.float32)
    return out, boxes.astype(np.float32) * factors


def encode_webp(image: np.ndarray, quality: int) -> bytes:
    import cv2

    ok, data = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode WebP")
    return data.tobytes()


def choose_quality(sizes_by_quality: dict[int, float], count: int, budget_bytes: float) -> int:
    """The highest WebP quality whose predicted total (mean size on a sample x ``count``, plus
    3 % for the XML files and the estimate's error) fits ``budget_bytes``. ValueError when
    even the lowest does not."""
    for quality in sorted(sizes_by_quality, reverse=True):
        if sizes_by_quality[quality] * count * 1.03 <= budget_bytes:
            return quality
    lowest = min(sizes_by_quality)
    raise ValueError(f"{count} images need about {_mib(sizes_by_quality[lowest] * count * 1.03):.1f} MiB even at "
                     f"WebP quality {lowest}, and only {_mib(budget_bytes):.1f} MiB are left of the device call's "
                     f"{TREE_LIMIT_MIB:g} MiB: lower --side or leave out a folder")


def annotation_xml(filename: str, size_hw: tuple[int, int], boxes: np.ndarray, names: Sequence[str],
                   difficult: np.ndarray) -> str:
    """A VOC annotation for the cache (pixel boxes as the scanner reads them back, 0.1 px)."""
    import xml.etree.ElementTree as ET

    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for tag, value in (("width", size_hw[1]), ("height", size_hw[0]), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    for box, name, hard in zip(boxes, names, difficult):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "difficult").text = "1" if hard else "0"
        bnd = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
            ET.SubElement(bnd, tag).text = f"{float(value):.1f}"
    return ET.tostring(root, encoding="unicode") + "\n"


def training_samples(data: Sequence[str], classes: Sequence[str], val_list: str | None, workers: int = 2):
    """The usable samples of ``data`` that are not on ``val_list`` (a run's val_images.txt)."""
    from trainer.scan import scan_folders
    from trainer.split import listed_paths

    every = [s for scan in scan_folders(data, classes, workers=workers) for s in scan.samples]
    if not val_list:
        return every
    held = listed_paths(val_list)
    return [s for s in every if str(Path(s.image_path).resolve()) not in held]


def prepare(args: argparse.Namespace) -> int:
    from models.model_file import load_model
    from trainer.autolabel import copy_record
    from trainer.loader import load_sample

    out = Path(args.out)
    classes = list(args.classes.split(",")) if args.classes else list(load_model(args.model).spec.class_names)
    data = args.data or [str(DATASETS / name) for name in DEFAULT_FOLDERS]
    if not args.no_wheels:
        fetch_wheels(Path(args.wheels))
    if out.exists():
        shutil.rmtree(out)
    budget = (args.budget_mib * 2**20 if args.budget_mib is not None else
              (TREE_LIMIT_MIB - MARGIN_MIB) * 2**20 - travelling_bytes(carried=(str(out), args.wheels))
              - folder_bytes(Path(args.wheels)))
    # `main.py autolabel` copies travel as their folder's name; what filled them in is recorded
    copies = {str(d): r for d in data if (r := copy_record(d)) is not None}
    samples = training_samples(data, classes, args.val_list, args.workers)
    if not samples:
        raise SystemExit("error: no usable training images in " + ", ".join(data))
    parts = max(1, args.parts)
    per_part = -(-len(samples) // parts)
    print(f"{len(samples)} training images from {len(data)} folder(s), in {parts} part(s) of up to {per_part}; "
          f"{_mib(budget):.1f} MiB for each part")

    def shrunk(sample):
        return shrink(load_sample(sample), sample.boxes, args.side)

    if args.quality:
        quality = args.quality
    else:
        probe = [samples[i] for i in np.random.default_rng(0).permutation(len(samples))[:args.probe]]
        with ThreadPoolExecutor(args.workers) as pool:
            images = [im for im, _ in pool.map(shrunk, probe)]
        sizes = {q: float(np.mean([len(encode_webp(im, q)) for im in images])) for q in QUALITIES}
        try:
            quality = choose_quality(sizes, per_part, budget)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from exc
    print(f"WebP quality {quality}, longer side at most {args.side} px")

    def part_dir(k: int) -> Path:
        return out if parts == 1 else out / f"part{k}"

    def write(item: tuple[int, object]) -> tuple[int, str]:
        k, sample = item
        image, boxes = shrunk(sample)
        folder = part_dir(k % parts) / "cache" / Path(sample.source).name
        stem = sample.key.replace("/", "_")
        encoded = encode_webp(image, quality)
        (folder / "JPEGImages" / f"{stem}.webp").write_bytes(encoded)
        xml = annotation_xml(f"{stem}.webp", image.shape[:2], boxes, sample.names, sample.difficult)
        (folder / "Annotations" / f"{stem}.xml").write_text(xml, encoding="utf-8")
        return k % parts, Path(sample.source).name

    for k in range(parts):
        for name in {Path(s.source).name for s in samples}:
            for sub in ("JPEGImages", "Annotations"):
                (part_dir(k) / "cache" / name / sub).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.workers) as pool:
        written = list(pool.map(write, enumerate(samples)))
    for k in range(parts):
        mine = [name for part, name in written if part == k]
        folders = sorted(set(mine))
        manifest = {
            "part": k, "parts": parts, "folders": folders, "images": len(mine), "classes": classes,
            "side": args.side, "quality": quality, "val_list": args.val_list, "model": args.model,
            "per_folder": {f: mine.count(f) for f in folders}, "labelled_copies": copies,
            "recipe": given_recipe(args),
        }
        (part_dir(k) / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        total = folder_bytes(part_dir(k))
        print(f"wrote {part_dir(k)}/: {len(mine)} images, {_mib(total):.1f} MiB")
        if total > budget:
            raise SystemExit(f"error: {part_dir(k)} is {_mib(total):.1f} MiB, over the {_mib(budget):.1f} MiB left; "
                             f"run again with --quality {max(q for q in QUALITIES if q < quality)}")
    for k in range(parts - 1):
        print(f"device call {k + 1} of {parts}: carry {json.dumps([str(part_dir(k))])}, run: du -sh {out}")
    print(f"device call {parts} of {parts} (at once: a machine stays only {WARM_S} s after a call): carry",
          json.dumps([str(part_dir(parts - 1)), args.wheels]), "and run:\n" + device_command())
    return 0


def device_command(minutes: float = 8.0) -> str:
    """The device tool's command (under its 2,000 characters)."""
    return ("python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
            f"{WHEEL_DIR}/*.whl && export PYTHONPATH=/tmp/site || exit; nvidia-smi -L; "
            f"KERAS_BACKEND=jax PYTHONUNBUFFERED=1 python3 -m tools.gpu_train device --minutes {minutes:g}")


def fetch_wheels(dest: Path) -> None:
    """Download (once) the wheels the device lacks, for its Python 3.12 on x86-64."""
    from importlib.metadata import version

    dest.mkdir(exist_ok=True)
    for name in WHEELS:
        pinned = version(name)
        stem = name.replace("-", "_")
        if any(dest.glob(f"{stem}-{pinned}-*.whl")):
            continue
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", "-d", str(dest), f"{name}=={pinned}"]
        for platform in PLATFORMS:
            cmd += ["--platform", platform]
        subprocess.run(cmd, check=True)


# ---- device (there) -------------------------------------------------------------------------

def read_cache(cache: Path) -> tuple[list[str], dict]:
    """The cache's data folders and a summary manifest. A cache in parts (``--parts``) may
    be incomplete on the device (the machine was given back between the calls that carried
    them): the parts present are used and the summary says which are missing."""
    paths = [cache / "manifest.json"] if (cache / "manifest.json").is_file() else sorted(cache.glob("part*/manifest.json"))
    if not paths:
        raise SystemExit(f"error: no cache in {cache} (run `python -m tools.gpu_train prepare` and carry it)")
    manifests = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    folders = [str(p.parent / "cache" / name) for p, m in zip(paths, manifests) for name in m["folders"]]
    first = manifests[0]
    summary = {**first, "images": sum(m["images"] for m in manifests),
               "parts_present": [m.get("part", 0) for m in manifests],
               "parts_missing": sorted(set(range(first.get("parts", 1))) - {m.get("part", 0) for m in manifests})}
    for key in ("part", "per_folder", "folders"):
        summary.pop(key, None)
    return folders, summary


def probe_loader(folders: Sequence[str], model_path: str, batch: int, workers: int, seconds: float) -> dict:
    """Images per second the training loader (decode, SSD augmentation, targets) reaches with
    ``workers`` threads, measured for about ``seconds``."""
    from models.model_file import load_model
    from trainer.loader import BatchLoader
    from trainer.scan import scan_folders

    spec = load_model(model_path).spec
    samples = [s for scan in scan_folders(folders, spec.class_names, workers=workers) for s in scan.samples]
    images, start = 0, time.monotonic()
    with BatchLoader(samples, spec.class_names, spec, batch, seed=1, workers=workers) as loader:
        for b in loader.epoch(0):
            images += b.count
            if time.monotonic() - start > seconds:
                break
    elapsed = time.monotonic() - start
    return {"images": len(samples), "loader_images_per_s": images / max(elapsed, 1e-9), "probe_s": elapsed}


def plan_epochs(loader_rate: float, max_rate: float, seconds: float, images: int) -> int:
    """Whole epochs of ``images`` that fit ``seconds`` at the slower of the loader's measured
    rate and the step's assumed one, less 15 % for the step's own work on the host (at least 1)."""
    rate = min(loader_rate, max_rate) * 0.85
    return max(1, int(seconds * rate / max(images, 1)))


def environment() -> dict:
    import keras

    info: dict = {"backend": keras.backend.backend(), "keras": keras.__version__, "cpus": os.cpu_count(),
                  "python": sys.version.split()[0]}
    if info["backend"] == "jax":
        import jax

        info["jax"] = jax.__version__
        info["devices"] = [str(d) for d in jax.devices()]
    return info


def split_file(path: Path, out: Path, part_mib: float) -> list[Path]:
    """``path`` as ``out/model.keras.partN`` pieces of at most ``part_mib`` MiB."""
    size = max(1, int(part_mib * 2**20))
    data = path.read_bytes()
    parts = []
    for k, start in enumerate(range(0, len(data), size)):
        part = out / f"{MODEL_PART}{k}"
        part.write_bytes(data[start:start + size])
        parts.append(part)
    return parts


def run_training(cmd: list[str], log_path: Path, deadline: float, grace_s: float) -> int:
    """Run ``cmd`` with its output in ``log_path`` (and echoed); at ``deadline`` ask it to stop
    (SIGINT: the trainer checkpoints and keeps its finished epochs), kill it after ``grace_s``."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        asked = False
        while True:
            chunk = proc.stdout.read()
            if chunk:
                log.write(chunk)
                log.flush()
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            if proc.poll() is not None:
                rest = proc.stdout.read()
                if rest:
                    log.write(rest)
                    sys.stdout.buffer.write(rest)
                return proc.returncode
            now = time.monotonic()
            if not asked and now > deadline:
                print("\n[gpu_train] deadline: asking the run to stop (SIGINT)", flush=True)
                proc.send_signal(signal.SIGINT)
                asked = True
            elif asked and now > deadline + grace_s:
                print("[gpu_train] the run did not stop in time: killed", flush=True)
                proc.kill()
            time.sleep(0.2)


def device(args: argparse.Namespace) -> int:
    start = time.monotonic()
    out = Path(args.out or os.environ.get("OUT") or "gpu_out")
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache)
    folders, manifest = read_cache(cache)
    report: dict = {"environment": environment(), "manifest": manifest}
    print(json.dumps(report["environment"]), flush=True)
    if manifest["parts_missing"]:
        print(f"[gpu_train] cache parts {manifest['parts_missing']} are missing: training on the "
              f"{manifest['images']} images of parts {manifest['parts_present']}", flush=True)
    workers = args.workers or max(1, (os.cpu_count() or 2) - 1)
    if args.epochs:
        epochs = args.epochs
    else:
        probe = probe_loader(folders, args.model, args.batch, workers, args.probe_seconds)
        report["probe"] = probe
        left = args.minutes * 60 - (time.monotonic() - start) - args.overhead_s
        epochs = plan_epochs(probe["loader_images_per_s"], args.max_rate, left, probe["images"])
        print(f"[gpu_train] loader {probe['loader_images_per_s']:.0f} images/s with {workers} threads: "
              f"{epochs} epochs of {probe['images']} images fit", flush=True)
    run = Path(args.run_dir or "/tmp/gpu_run")
    if run.exists():
        shutil.rmtree(run)
    cmd = [sys.executable, "main.py", "train"]
    for folder in folders:
        cmd += ["--data", folder]
    cmd += ["--classes", ",".join(manifest["classes"]), "--from", args.model, "--out", str(run),
            "--epochs", str(epochs), "--batch", str(args.batch), "--optimizer", "adam", "--lr", str(args.lr),
            "--warmup-epochs", str(args.warmup_epochs), "--val-split", "0", "--workers", str(workers),
            "--no-progress", "--checkpoint-minutes", "1000"]
    cmd += recipe_options({**manifest.get("recipe", {}), **given_recipe(args)})  # the device call may override
    report.update(command=cmd[1:], epochs_planned=epochs)
    deadline = start + args.minutes * 60
    code = run_training(cmd, out / "train.log", deadline, args.grace_s)
    report.update(returncode=code, elapsed_s=round(time.monotonic() - start, 1))
    model = run / "last.keras"
    if model.is_file():
        report["parts"] = [p.name for p in split_file(model, out, args.part_mib)]
    for name in ("log.csv", "summary.yaml"):
        if (run / name).is_file():
            shutil.copy(run / name, out / name)
    if (out / "summary.yaml").is_file() and manifest.get("labelled_copies"):
        import yaml  # the cache's folders are plain VOC folders: name the autolabel copies they came from

        summary = yaml.safe_load((out / "summary.yaml").read_text(encoding="utf-8"))
        summary["labelled_copies"] = manifest["labelled_copies"]
        (out / "summary.yaml").write_text(yaml.safe_dump(summary, sort_keys=False), encoding="utf-8")
    (out / "device.json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    print(f"[gpu_train] done in {report['elapsed_s']} s, exit {code}, model parts: {report.get('parts')}", flush=True)
    return 0 if model.is_file() else 1


# ---- collect (here) -------------------------------------------------------------------------

def collect(args: argparse.Namespace) -> int:
    from models.atomic import write_bytes_atomic
    from models.model_file import ModelFileError, load_model

    got, dest = Path(args.files_at), Path(args.run_dir)
    parts = sorted(got.glob(f"{MODEL_PART}*"), key=lambda p: int(p.name[len(MODEL_PART):]))
    if not parts:
        raise SystemExit(f"error: no {MODEL_PART}N files in {got}: the device run wrote no model (see its train.log)")
    dest.mkdir(parents=True, exist_ok=True)
    target, joining = dest / "model.keras", dest / ".joining.keras"
    write_bytes_atomic(joining, b"".join(p.read_bytes() for p in parts))
    try:
        model = load_model(joining)  # a part missing or cut short is refused here
    except ModelFileError as exc:
        joining.unlink()
        raise SystemExit(f"error: the {len(parts)} part(s) in {got} do not join into a whole model ({exc})") from exc
    os.replace(joining, target)  # a good model already in RUN_DIR is only ever replaced by a whole one
    for name in ("log.csv", "summary.yaml", "train.log", "device.json"):
        if (got / name).is_file():
            shutil.copy(got / name, dest / name)
    print(f"{target}: {len(model.spec.class_names)} classes ({', '.join(model.spec.class_names)}), "
          f"{len(parts)} part(s) joined")
    print("measure it here on the recorded validation split:\n  python main.py eval "
          + " ".join(f"--data {DATASETS / n}" for n in DEFAULT_FOLDERS)
          + f" --model {target} --images {DEFAULT_VAL_LIST} --json {dest / 'eval.json'}")
    return 0


def add_recipe_options(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--oversample", help=f"as main.py train --oversample {default}")
    p.add_argument("--match-top-k", type=int, help=f"as main.py train --match-top-k {default}")
    p.add_argument("--ignore-difficult", action="store_const", const=True,
                   help=f"as main.py train --ignore-difficult; the cache keeps each object's difficult flag {default}")
    p.add_argument("--mosaic", type=float, metavar="P", help=f"as main.py train --mosaic {default}")


def given_recipe(args: argparse.Namespace) -> dict:
    """The recipe options given on this command line (those left out are None)."""
    return {k: v for k, v in vars(args).items() if k in RECIPE and v is not None}


def recipe_options(recipe: dict) -> list[str]:
    """``main.py train`` options of a recipe ({"oversample": "person=3", "match_top_k": 16, ...})."""
    options = []
    if recipe.get("oversample"):
        options += ["--oversample", recipe["oversample"]]
    if recipe.get("match_top_k"):
        options += ["--match-top-k", str(recipe["match_top_k"])]
    if recipe.get("ignore_difficult"):
        options += ["--ignore-difficult"]
    if recipe.get("mosaic"):
        options += ["--mosaic", f"{recipe['mosaic']:g}"]
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.gpu_train", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="here: the compact training cache (.gpu/) and the wheels (.whl/)")
    p.add_argument("--data", action="append", help=f"a labelled folder (default: {', '.join(DEFAULT_FOLDERS)})")
    p.add_argument("--model", default=DEFAULT_MODEL, help="the model to start from (its classes are kept)")
    p.add_argument("--classes", help="classes to keep (default: the model's)")
    p.add_argument("--val-list", default=DEFAULT_VAL_LIST, help="images never to send (the validation split)")
    p.add_argument("--side", type=int, default=300, help="longer side of the cached images (default 300)")
    p.add_argument("--quality", type=int, help="WebP quality (default: the best that fits)")
    p.add_argument("--budget-mib", type=float, help="room for the cache (default: what the 64 MiB call leaves)")
    p.add_argument("--probe", type=int, default=200, help="images encoded to choose the quality")
    p.add_argument("--parts", type=int, default=2,
                   help="split the cache for this many device calls, each under the 64 MiB (default 2: WebP "
                        "quality 75 instead of 30 for one, on the five bundled sets)")
    p.add_argument("--out", default=CACHE_DIR)
    add_recipe_options(p, "(recorded in the cache for the device step)")
    p.add_argument("--wheels", default=WHEEL_DIR)
    p.add_argument("--no-wheels", action="store_true", help="do not download the wheels")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(fn=prepare)
    p = sub.add_parser("device", help="there: train from the cache and write the model and logs to $OUT")
    p.add_argument("--cache", default=CACHE_DIR)
    p.add_argument("--model", default=DEFAULT_MODEL, help="start from this model (--from)")
    p.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget of this step (default 8)")
    p.add_argument("--epochs", type=int, help="default: as many as the measured loader rate fits")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    add_recipe_options(p, "(default: as prepare recorded in the cache)")
    p.add_argument("--workers", type=int, help="loader threads (default: cores - 1)")
    p.add_argument("--probe-seconds", type=float, default=20.0)
    p.add_argument("--max-rate", type=float, default=1500.0, help="images/s the GPU step is assumed to reach")
    p.add_argument("--overhead-s", type=float, default=90.0, help="compilation, scanning and saving")
    p.add_argument("--grace-s", type=float, default=60.0)
    p.add_argument("--part-mib", type=float, default=PART_MIB)
    p.add_argument("--run-dir", help="the training run folder (default /tmp/gpu_run)")
    p.add_argument("--out", help="where the results go (default $OUT)")
    p.set_defaults(fn=device)
    p = sub.add_parser("collect", help="here: join the model parts and check the model")
    p.add_argument("files_at", help="the folder the device call's files came back to")
    p.add_argument("run_dir", help="where to put the model and logs")
    p.set_defaults(fn=collect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())

"""Command-line entry points of the app: gui, detect, info.

Only the standard library is imported at module level; everything heavy loads in run_*.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def shown(text: str) -> str:
    """Text from a file (class names), safe to print: control characters and line breaks are
    escaped, so a model file cannot colour the terminal or forge an ``error:`` line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While detecting, SIGTERM ends the run as Ctrl-C does (outputs kept as ``.partial``,
    temporary files removed) instead of killing the process mid-write."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. called from a test's worker): leave it
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _class_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError("--classes needs at least one class name")
    return names


# -- gui --------------------------------------------------------------------------------

def add_gui_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", help="open this video, image, folder, camera index or URL at start")
    parser.add_argument("--model", help="model file (default: the bundled model)")


def run_gui(args: argparse.Namespace) -> int:
    from detector_app.gui.app import run_app

    return run_app(model=args.model, source=args.source)


# -- detect -----------------------------------------------------------------------------

def _add_detection_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and selection options ``detect`` and ``detect-many`` share."""
    parser.add_argument("--model", help="model file (default: the bundled model)")
    parser.add_argument("--conf", type=float, default=0.5, help="confidence threshold (default 0.5)")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    parser.add_argument("--classes", type=_class_list, help="only report these classes, comma-separated")
    parser.add_argument("--tiles", type=_tile_grid, metavar="RxC",
                        help="also look at a grid of overlapping tiles (2x2, 3x3): finds small objects (distant "
                             "people) at about 1 + R*C times the inference cost; default off")


def _tile_grid(text: str):
    from runtime.tiling import TileGrid

    try:
        return TileGrid.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _threshold_error(args: argparse.Namespace) -> str | None:
    """What is wrong with --conf / --iou, naming the option the user typed (not the config
    field behind it), or None."""
    if not 0.0 <= args.conf < 1.0:
        return f"--conf must be at least 0 and below 1, got {args.conf:g}"
    if not 0.0 < args.iou <= 1.0:
        return f"--iou must be above 0 and at most 1, got {args.iou:g}"
    return None


def add_detect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="video file, image, folder of images, camera index (0, 1, ...) or rtsp:// / http:// URL")
    _add_detection_arguments(parser)
    parser.add_argument("--out", help="write the annotated video here (.mp4, .avi, .mkv)")
    parser.add_argument("--json", dest="json_out", help="write detections as JSON Lines here, one line per frame")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_detect(args: argparse.Namespace) -> int:
    from models import PostprocessConfig
    from models.model_file import ModelFileError
    from runtime.predictor import Predictor

    from .detect import run_detection
    from .model_store import DEFAULT_MODEL, RANDOM_WARNING, resolve_model
    from .sources import SourceError, open_source
    from .writers import OutputError

    bad = _threshold_error(args)
    if bad:
        return _error(bad)
    if args.max_frames is not None and args.max_frames < 1:
        return _error(f"--max-frames must be 1 or more, got {args.max_frames}")
    from models.paths import output_clash

    source_file = args.source if os.path.isfile(args.source) else None
    clash = output_clash([("--out", args.out), ("--json", args.json_out)],
                         [("the source being read", source_file), ("the model file", args.model)])
    if clash:
        return _error(clash)
    config = PostprocessConfig(conf_threshold=args.conf, iou_threshold=args.iou)
    warnings: list[str] = []
    try:
        source = open_source(args.source, on_warning=lambda m: print(f"warning: {m}", file=sys.stderr))
    except SourceError as exc:
        return _error(str(exc))
    with source:
        try:
            resolved = resolve_model(args.model)
        except ModelFileError as exc:
            return _error(str(exc))
        if resolved.is_random:
            print(RANDOM_WARNING.format(path=DEFAULT_MODEL), file=sys.stderr)
        try:
            predictor = Predictor(resolved.model, config=config, classes=args.classes, source=resolved.path or "")
        except ValueError as exc:
            return _error(str(exc))
        predictor.tiles = args.tiles
        tiles = f"; tiles {args.tiles} + the full frame" if args.tiles else ""
        print(f"model: {resolved.path or 'random (untrained)'}; classes: {', '.join(map(shown, predictor.class_names))}; "
              f"device: {predictor.device} ({predictor.backend}, {predictor.engine} engine){tiles}", file=sys.stderr)
        try:
            with _sigterm_as_interrupt():
                summary = run_detection(source, predictor, args.out, args.json_out, args.max_frames,
                                        progress=not args.no_progress, on_event=_print_event)
        except OutputError as exc:
            return _error(str(exc))
    warnings.extend(summary.warnings)
    for line in summary.lines():
        print(shown(line), file=sys.stderr)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if summary.output_errors:  # e.g. the disk filled up: the earlier files were kept
        for message in summary.output_errors:
            print(f"error: {message}", file=sys.stderr)
        return 2
    if summary.interrupted:  # the targets were left as they were (detector_app.writers)
        kept = ", ".join(summary.partial_outputs) or "nothing (no frame was done)"
        untouched = ", ".join(p for p in (args.json_out, args.out) if p)
        print(f"interrupted after {summary.frames} frames: the frames done so far are in {kept}"
              + (f"; {untouched} left as before" if untouched else ""), file=sys.stderr)
        return 130
    if summary.frames == 0:
        return _error(f"{args.source}: no frame could be read")
    for path in (args.out, args.json_out):
        if path:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _print_event(event) -> None:
    """A pipeline event during ``detect``, as one stderr line (the source's own warnings are
    printed by its ``on_warning``; the end of a file is no news)."""
    from .capture import EventKind

    if event.kind in (EventKind.WARNING, EventKind.END, EventKind.MODEL):
        return
    print(f"warning: {shown(event.message)}", file=sys.stderr)


# -- detect-many --------------------------------------------------------------------------

def add_detect_many_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="video files, folders (each video; its images as one input) or .txt files listing them")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder: NAME.jsonl (+ NAME.mp4 with "
                                                                    "--video) per input, summary.json")
    _add_detection_arguments(parser)
    parser.add_argument("--video", action="store_true", help="also write each input's annotated video")
    parser.add_argument("--workers", type=int, default=None,
                        help="Ray workers (each loads the model once; default: as many as the CPUs, or the GPUs "
                             "with --gpus-per-worker, allow; never more than the inputs)")
    parser.add_argument("--cpus-per-worker", type=int, default=None, metavar="N",
                        help="CPUs each worker asks of Ray and uses for inference and decoding (default: 1 "
                             "without --workers, else the CPUs shared evenly)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="F",
                        help="GPUs each worker asks of Ray (e.g. 0.25: four workers share one GPU; default 0)")
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                        help="a Ray cluster: ray://HOST:PORT (Ray Client, port 10001), HOST:PORT (the head's GCS, "
                             "from a cluster node) or auto (one `ray start` left on this machine); default "
                             "RAY_ADDRESS, else a new local Ray on this machine. A cluster with token "
                             "authentication needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN)")
    parser.add_argument("--retries", type=int, default=1, help="retries of an input whose worker died (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_detect_many(args: argparse.Namespace) -> int:
    import hashlib

    from models.paths import is_inside

    from .many import ClusterError, InputError, PlanError, Settings, collect_inputs, make_jobs, run_many, write_summary
    from .model_store import DEFAULT_MODEL

    bad = _threshold_error(args)
    if bad:
        return _error(bad)
    if (args.workers is not None and args.workers < 1) or args.retries < 0 or \
            (args.cpus_per_worker is not None and args.cpus_per_worker < 1) or args.gpus_per_worker < 0:
        return _error("--workers and --cpus-per-worker must be 1 or more, --retries and --gpus-per-worker 0 or more")
    model = Path(args.model or DEFAULT_MODEL)
    if not model.is_file():
        return _error(f"{model}: no such model file")
    try:
        sources = collect_inputs(args.inputs)
    except InputError as exc:
        return _error(str(exc))
    out = Path(args.out)
    inside = [s for s in sources if Path(s).resolve() == out.resolve() or is_inside(out, s)]
    if out.exists() and not out.is_dir() or inside:
        return _error(f"--out {out}: must be a folder of its own (not an input, not inside one)")
    settings = Settings(conf=args.conf, iou=args.iou, classes=tuple(args.classes) if args.classes else None,
                        video=args.video, tiles=str(args.tiles) if args.tiles else None, model_sha256=hashlib.sha256(model.read_bytes()).hexdigest())
    jobs = make_jobs(sources)
    print(f"{len(jobs)} inputs; model {model}; outputs in {out}", file=sys.stderr)
    with _sigterm_as_interrupt():  # a scheduler's SIGTERM stops as Ctrl-C does: finished inputs kept
        try:
            summary = run_many(jobs, out, str(model), settings, args.workers, args.address, args.retries,
                               progress=not args.no_progress, cpus_per_worker=args.cpus_per_worker,
                               gpus_per_worker=args.gpus_per_worker)
        except (PlanError, ClusterError) as exc:  # no cluster there, or the workers do not fit it
            return _error(str(exc))
    path = write_summary(out, summary, {"model": str(model.resolve()), "address": args.address or "local"})
    for line in summary.lines():
        print(shown(line), file=sys.stderr)
    for failure in summary.failed:
        reason = failure["reason"]
        named = reason if failure["input"] in reason else f"{failure['input']}: {reason}"
        print(f"failed: {shown(named)}", file=sys.stderr)
    print(f"summary: {path}", file=sys.stderr)
    if summary.interrupted:
        print("interrupted: finished inputs are complete; the same command continues with the rest", file=sys.stderr)
        return 130
    return 1 if summary.failed else 0


# -- info -------------------------------------------------------------------------------

def add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="model file (default: the bundled model)")


def run_info(args: argparse.Namespace) -> int:
    import yaml

    from models import num_default_boxes
    from models.model_file import ModelFileError, read_spec

    from .model_store import DEFAULT_MODEL

    path = args.model or DEFAULT_MODEL
    try:
        spec = read_spec(path)
    except ModelFileError as exc:
        return _error(str(exc))
    print(f"# {path}")
    print(f"# layout {spec.layout}, {len(spec.class_names)} classes, {num_default_boxes(spec)} default boxes, "
          f"input {spec.input_size[1]}x{spec.input_size[0]}")
    print(yaml.safe_dump(spec.to_dict(), sort_keys=False), end="")
    return 0

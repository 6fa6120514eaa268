"""Command-line entry points of the app: gui, detect, info.

Only the standard library is imported at module level; everything heavy loads in run_*.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys


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

def add_detect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="video file, image, folder of images, camera index (0, 1, ...) or rtsp:// / http:// URL")
    parser.add_argument("--model", help="model file (default: the bundled model)")
    parser.add_argument("--conf", type=float, default=0.5, help="confidence threshold (default 0.5)")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    parser.add_argument("--classes", type=_class_list, help="only report these classes, comma-separated")
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

    # name the option the user typed, not the config field behind it
    if not 0.0 <= args.conf < 1.0:
        return _error(f"--conf must be at least 0 and below 1, got {args.conf:g}")
    if not 0.0 < args.iou <= 1.0:
        return _error(f"--iou must be above 0 and at most 1, got {args.iou:g}")
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
        print(f"model: {resolved.path or 'random (untrained)'}; classes: {', '.join(map(shown, predictor.class_names))}; "
              f"device: {predictor.device} ({predictor.backend}, {predictor.engine} engine)", file=sys.stderr)
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

"""``check-data``, ``train``, ``eval`` and ``autolabel`` on the command line.

Only the standard library is imported at module level, so ``main.py --help`` stays instant;
NumPy, OpenCV and Keras load inside the ``run_*`` functions. A user error (missing folder,
no images, bad model file, bad class list) prints one line naming the item on stderr and
returns exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

USER_ERROR = 2


def _default_workers() -> int:
    return max(2, min(8, os.cpu_count() or 2))


def _user_error_types() -> tuple[type[BaseException], ...]:
    from models.model_file import ModelFileError
    from models.spec import SpecError

    from .errors import DataError

    return (DataError, ModelFileError, SpecError)


def _guarded(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; user errors become one line on stderr and exit status 2."""
    try:
        user_errors = _user_error_types()
    except ImportError as exc:  # a broken install is not the user's data, but say it plainly
        print(f"error: cannot load the model code ({exc})", file=sys.stderr)
        return USER_ERROR
    try:
        return run(args)
    except user_errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USER_ERROR


LABELLED_SUFFIXES = (".xml", ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".txt")


def _refuse_clobbering(outputs: list[tuple[str, str | None]], folders: list[str], model: str | None = None) -> None:
    """Raise DataError when an output would overwrite the model, another output, or a file of a
    labelled folder (an annotation, an image or an image list)."""
    from models.paths import is_inside, output_clash

    from .errors import DataError

    clash = output_clash(outputs, [("the model file", model)])
    if clash:
        raise DataError(outputs[0][1] or "output", clash)
    for option, path in outputs:
        if path is None or not os.path.exists(path):
            continue
        for folder in folders:
            if is_inside(path, folder) and Path(path).suffix.lower() in LABELLED_SUFFIXES:
                raise DataError(path, f"{option} names a file of the labelled folder {folder}; writing there would "
                                      "destroy it. Choose a file outside the data")


def _model_or_layout_spec(model: str | None, layout: str, classes):
    """The spec a command compares the data with: the model file's, else a preset layout's."""
    from models.layouts import LAYOUTS
    from models.model_file import read_spec

    if model:
        return read_spec(model)
    return LAYOUTS[layout](list(classes) if classes else ["object"])


# -- check-data ---------------------------------------------------------------------------


def add_check_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folders", nargs="+", metavar="DIR",
                        help="labelled folders: VOC2007 (Annotations/, JPEGImages/) or labelImg "
                             "(images/ + annotations/, or images with their .xml side by side)")
    parser.add_argument("--json", metavar="FILE", help="also write the full report as JSON (every problem, every file)")
    parser.add_argument("--classes", metavar="NAMES|FILE",
                        help="the known classes: 'helmet,head' or a YAML list; others are reported as unknown")
    parser.add_argument("--model", metavar="FILE",
                        help="a model file: its classes are the known ones and its default boxes are "
                             "compared with the box sizes")
    parser.add_argument("--layout", choices=("seed", "caffe"), default="seed",
                        help="default boxes to compare box sizes with when no --model is given (default: seed)")
    parser.add_argument("--classes-from-data", action="store_true",
                        help="with --model: take only its default boxes; every class in the data is known "
                             "(as `train --from` does: new classes are added, not dropped)")
    parser.add_argument("--all", action="store_true", help="list every problem (default: 10 per kind and folder)")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when any problem is found")
    parser.add_argument("--workers", type=int, default=_default_workers(), help="reading threads")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors (with --json)")


def _check_data(args: argparse.Namespace) -> int:
    from .atomic import write_text_atomic
    from .classes import parse_classes
    from .folders import discover
    from .report import data_report, format_report
    from .scan import scan_folders

    for folder in args.folders:  # fail fast, before the model code loads
        discover(folder)
    _refuse_clobbering([("--json", args.json)], args.folders, args.model)
    known = parse_classes(args.classes) if args.classes else None
    spec = _model_or_layout_spec(args.model, args.layout, known)
    if known is None and args.model and not args.classes_from_data:
        known = spec.class_names
    scans = scan_folders(args.folders, known, workers=args.workers, progress=not args.quiet and sys.stderr.isatty())
    report = data_report(scans, spec, known, args.model)
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1))
    if not args.quiet:
        print(format_report(report, limit=None if args.all else 10))
        if args.json:
            print(f"report written to {args.json}")
    nothing = report["totals"]["images"] == 0  # nothing usable at all: not a passing check
    return 1 if nothing or (args.strict and not report["ok"]) else 0


def run_check_data(args: argparse.Namespace) -> int:
    return _guarded(_check_data, args)


# -- train --------------------------------------------------------------------------------

# Result-defining options whose default lives in TrainConfig; argparse defaults are None so
# that a resumed run can tell "given" from "not given" (see trainer.config.resolve_config).
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data and run folder")
    g.add_argument("--data", action="append", metavar="DIR",
                   help="a labelled folder (VOC2007 or labelImg); repeat to combine several")
    g.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="run folder: best model, log, plots, summary; re-running with the same folder resumes")
    g.add_argument("--resume", action="store_true", help="insist on resuming RUN_DIR (error if there is nothing to resume)")
    g.add_argument("--classes", metavar="NAMES|FILE",
                   help="classes to train ('helmet,head' or a YAML list); default: every class in the data")
    g.add_argument("--val-split", type=float, metavar="F", help="fraction of each folder held out for validation (default 0.15)")
    g = parser.add_argument_group("network")
    g.add_argument("--from", dest="from_model", metavar="MODEL_FILE",
                   help="fine-tune this model: backbone, extra layers, box regressors and the predictors of "
                        "classes with the same name carry over; default: random initialisation")
    g.add_argument("--imagenet", action="store_const", const=True,
                   help="start a new detector from an ImageNet-trained backbone (EfficientNet-Lite0, the lite0 "
                        "layout): far better than random initialisation when there is no model to --from")
    g.add_argument("--layout", choices=("seed", "caffe", "lite0"),
                   help="network layout without --from (default seed; lite0 is EfficientNet-Lite0 SSDLite)")
    g.add_argument("--alpha", type=float, help="MobileNet width multiplier of the seed layout (default 1.0)")
    g.add_argument("--spec", dest="spec_file", metavar="SPEC.yaml", help="an exact network spec (experts; class names are replaced)")
    g.add_argument("--top-down", action="store_const", const=True,
                   help="add a top-down path to the finest heads (two, or --top-down-heads; the next map's features, upsampled, "
                        "lift small objects' scores; the lite0 layout has it already). With --from the path "
                        "starts at zero, so training starts from the model exactly as it was")
    g.add_argument("--top-down-heads", type=int, metavar="N",
                   help="how many of the finest heads the top-down path reaches, each from the next head's map "
                        "(default 2; 3 adds top <- extra1 on lite0). Implies --top-down")
    g.add_argument("--top-down-depth", type=int, metavar="D",
                   help="how many coarser maps each of those heads reads: the next D heads' maps, each "
                        "upsampled to the head's size (default 1; 2 gives block5 <- block11 + top on lite0). "
                        "New projections start at zero. Implies --top-down")
    g.add_argument("--freeze-backbone-epochs", type=int, metavar="N",
                   help="keep the backbone frozen for the first N epochs (default 0)")
    g.add_argument("--freeze-through", metavar="BLOCK",
                   help="keep the backbone frozen up to and including this feature map for the whole run "
                        "(e.g. block5; about 3x faster steps on a CPU; default: nothing)")
    g = parser.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, metavar="N", help="epochs (default 30)")
    g.add_argument("--batch", dest="batch_size", type=int, metavar="N", help="images per step (default 32)")
    g.add_argument("--optimizer", choices=("sgd", "adam"), help="SGD with momentum 0.9 (default) or Adam")
    g.add_argument("--lr", type=float, help="peak learning rate (default 0.01 for sgd, 0.001 for adam)")
    g.add_argument("--momentum", type=float, help="SGD momentum / Adam beta1 (default 0.9)")
    g.add_argument("--weight-decay", type=float, help="L2 on convolution kernels, not BN or biases (default 5e-4)")
    g.add_argument("--schedule", choices=("cosine", "step"), help="decay after warm-up (default cosine)")
    g.add_argument("--warmup-epochs", type=float, metavar="E", help="linear warm-up length (default 1)")
    g.add_argument("--class-mask", choices=("auto", "on", "off"),
                   help="leave classes a folder does not label out of its images' softmax (partial labels); "
                        "auto: on when the folders label different classes (default)")
    g.add_argument("--oversample", metavar="CLASS=N[,...]",
                   help="show images with CLASS N times per epoch (N from 1 to 10, e.g. person=2 or "
                        "helmet=1.5,cow=2) for a class the model stays weak on or that few images show; "
                        "default: every image once")
    g.add_argument("--match-top-k", type=int, metavar="K",
                   help="each object also learns from its K best default boxes that overlap it by IoU 0.3 or more "
                        "(small or thin objects otherwise get one or two); 0 to 16, default 0: the SSD paper's rule "
                        "(the best box and every box at IoU 0.5)")
    g.add_argument("--ignore-difficult", action="store_const", const=True,
                   help="objects marked difficult (labelImg's check box; autolabel's uncertain pre-labels) are "
                        "neither learned nor taught as background; default: learned like the others")
    g.add_argument("--copies-positive-only", action="store_const", const=True,
                   help="in `autolabel` copies, the classes the model filled in are learned only where boxed: "
                        "the copy's images never teach them as background (a model's boxes miss objects, which "
                        "would otherwise be taught as background); default: the copy labels them like any folder")
    g.add_argument("--positive-only-copy", dest="positive_only_copies", action="append", metavar="DIR",
                   help="as --copies-positive-only, for this copy only (one of the --data folders; repeat for "
                        "several): e.g. a copy whose model misses many of the objects it filled in, beside "
                        "copies whose unboxed areas may still teach background")
    g.add_argument("--mosaic", type=float, metavar="P",
                   help="build this share of training images (0 to 1) from four pictures of the same folder, "
                        "YOLOv4's mosaic: more small objects and busy scenes per step, for a model that misses "
                        "small or crowded objects (e.g. 0.5); default 0")
    g.add_argument("--precision", choices=("float32", "mixed_float16", "mixed_bfloat16"),
                   help="mixed precision (float16 on GPUs; bfloat16 on recent CPUs/TPUs); default float32")
    g.add_argument("--no-augment", dest="augment", action="store_const", const=False,
                   help="no SSD augmentation (resize only); for tests and debugging")
    g.add_argument("--seed", type=int, help="seed of initialisation, split, shuffling and augmentation (default 0)")
    g.add_argument("--split-seed", type=int, metavar="N",
                   help="seed of the train/validation split alone (default: --seed); a fine-tuning stage keeps "
                        "the split of the run it continues with --split-seed 0 while --seed 1 gives it new "
                        "shuffles and augmentations instead of repeating that run's first epoch")
    g.add_argument("--eval-every", type=int, metavar="N", help="validate every N epochs (default 1; always at the end)")
    g = parser.add_argument_group("process")
    g.add_argument("--devices", type=int, metavar="N",
                   help="train data-parallel on N accelerators (JAX backend: KERAS_BACKEND=jax); --batch is the "
                        "global batch, split evenly, so the learning rate stays as for one device (default 1)")
    g.add_argument("--workers", type=int, help=f"loader threads (default {_default_workers()})")
    g.add_argument("--progress-jsonl", metavar="FILE", help="progress as JSON lines (default RUN_DIR/progress.jsonl)")
    g.add_argument("--checkpoint-minutes", type=float, help="also checkpoint inside an epoch this often (default 10)")
    g.add_argument("--no-progress", dest="progress_bar", action="store_const", const=False, help="no progress bars")


TRAIN_OPTIONS = (
    "data", "out", "from_model", "classes", "epochs", "batch_size", "val_split", "layout", "alpha", "spec_file",
    "imagenet",
    "optimizer", "lr", "momentum", "weight_decay", "schedule", "warmup_epochs", "freeze_backbone_epochs",
    "freeze_through", "top_down", "top_down_heads", "top_down_depth",
    "class_mask", "oversample", "match_top_k", "ignore_difficult",
    "copies_positive_only", "positive_only_copies", "mosaic", "precision", "seed", "split_seed", "augment", "eval_every", "devices", "workers",
    "progress_jsonl",
    "checkpoint_minutes", "progress_bar",
)


class _StopFlag:
    """Ctrl-C / SIGTERM ask the run to stop after the current step (with a checkpoint); a
    second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def install(self):
        import signal

        def handler(signum, frame):
            if self.requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.requested = True
            print("\nstopping after this step (a checkpoint will be written); Ctrl-C again to abort",
                  file=sys.stderr, flush=True)

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return lambda: [signal.signal(s, h) for s, h in previous.items()]


def train_config_from_args(args: argparse.Namespace):
    """The run's :class:`TrainConfig` from ``train``'s parsed options (and, when ``--out``
    holds a started run, its recorded settings). Returns (config, resuming).

    Raises DataError for a missing folder or file, an --out inside the data, or options that
    contradict each other or the recorded run.
    """
    from .classes import parse_classes
    from .config import resolve_config
    from .errors import DataError
    from .folders import discover

    explicit = {k: getattr(args, k) for k in TRAIN_OPTIONS}
    if explicit["classes"] is not None:
        explicit["classes"] = parse_classes(explicit["classes"])
    if explicit["data"] is not None:
        from models.paths import is_inside

        for folder in explicit["data"]:
            discover(folder)  # fail fast on a missing folder
            if is_inside(explicit["out"], folder):
                raise DataError(explicit["out"], f"--out is inside the labelled folder {folder}; run files (models, "
                                                 "logs, plots) would mix with the labels. Choose a folder outside the data")
    if explicit["workers"] is None:
        explicit["workers"] = _default_workers()
    if explicit["progress_bar"] is None:  # bars in a terminal; a GUI reads progress.jsonl instead
        explicit["progress_bar"] = sys.stderr.isatty()
    for name in ("from_model", "spec_file"):
        if explicit[name] is not None and not os.path.isfile(explicit[name]):
            raise DataError(explicit[name], "no such file")
    if (explicit["top_down_heads"] is not None or explicit["top_down_depth"] is not None) and explicit["top_down"] is None:
        explicit["top_down"] = True  # naming how far the path reaches asks for the path
    if explicit["imagenet"] and explicit["layout"] is None and explicit["spec_file"] is None:
        explicit["layout"] = "lite0"  # --imagenet alone names the network
    network = [f"--{k.replace('_file', '')}" for k in ("layout", "alpha", "spec_file", "imagenet") if explicit[k] is not None]
    if explicit["from_model"] is not None and network:
        raise DataError("--from", f"the network is the model's own; leave out {', '.join(network)} "
                                  "(they choose a network for training from scratch)")
    return resolve_config(explicit, resume=args.resume)


def _train(args: argparse.Namespace) -> int:
    from .loop import RunHooks, train

    config, resuming = train_config_from_args(args)
    stop = _StopFlag()
    restore = stop.install()
    try:
        result = train(config, resuming=resuming, hooks=RunHooks(should_stop=stop))
    finally:
        restore()
    return {"finished": 0, "stopped": 130, "diverged": 1}[result.status]


def run_train(args: argparse.Namespace) -> int:
    return _guarded(_train, args)


# -- eval ---------------------------------------------------------------------------------


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", action="append", required=True, metavar="DIR",
                        help="a labelled folder (VOC2007 or labelImg); repeat to combine several")
    parser.add_argument("--model", metavar="FILE",
                        help="the model file to evaluate (default: the bundled model, assets/default_model.keras)")
    parser.add_argument("--images", metavar="LIST",
                        help="evaluate only the images listed in this file (e.g. RUN_DIR/val_images.txt)")
    parser.add_argument("--json", metavar="FILE", help="write every figure (AP per class, PR curves) as JSON")
    parser.add_argument("--plot", metavar="PNG", help="precision-recall plot (default: beside --json, as <name>_pr.png)")
    parser.add_argument("--batch", type=int, default=16, help="images per inference batch (default 16)")
    parser.add_argument("--engine", default="auto", choices=["auto", "keras", "litert", "litert-fp16", "litert-int8"],
                        help="inference engine, as the app runs it (default auto: LiteRT on a CPU, else the "
                             "compiled Keras graph); the mAP is that engine's")
    parser.add_argument("--tiles", metavar="RxC", help="evaluate with tiled inference (2x2, 3x3), as the app's "
                                                       "--tiles runs it; default off")
    # the literal is runtime.batch.EVAL_POSTPROCESS.vote_iou (a test keeps them equal): importing
    # it here would load Keras for every --help
    parser.add_argument("--vote-iou", type=float, default=0.5, metavar="IOU",
                        help="box voting after NMS: each kept box becomes the score-weighted mean of the candidates "
                             "overlapping it by this IoU, as the app does (default 0.5); 0: off, Caffe's rule")
    parser.add_argument("--workers", type=int, default=_default_workers(), help="reading threads")
    parser.add_argument("--no-progress", dest="progress_bar", action="store_false", help="no progress bars")


def _tiles_and_model(args: argparse.Namespace):
    """``--tiles`` parsed and ``--model`` loaded (the bundled model when not given; then
    ``args.model`` is set to its path). Raises DataError naming the option or file."""
    from models.model_file import load_model
    from runtime.tiling import TileGrid

    from .errors import DataError

    try:
        tiles = TileGrid.parse(args.tiles)
    except ValueError as exc:
        raise DataError("--tiles", str(exc)) from exc
    if args.model is None:
        from models.bundled import BUNDLED_MODEL, bundled_model_path

        if bundled_model_path() is None:
            raise DataError(BUNDLED_MODEL, "no bundled model in this checkout; pass --model FILE")
        args.model = str(BUNDLED_MODEL)
    return tiles, load_model(args.model)


def _evaluate(args: argparse.Namespace) -> int:
    from .atomic import write_text_atomic
    from .errors import DataError
    from .evaluate import evaluate_detections, format_result, labelled_classes
    from .folders import discover
    from .inference import EVAL_POSTPROCESS, detect_samples, eval_predictor
    from .plots import plot_pr_curves
    from .scan import scan_folders
    from .size_recall import format_recall_by_size, recall_by_size
    from .split import restrict_to_list

    for folder in args.data:
        discover(folder)
    plot_given = args.plot or (str(Path(args.json).with_name(Path(args.json).stem + "_pr.png")) if args.json else None)
    _refuse_clobbering([("--json", args.json), ("--plot", plot_given)], args.data, args.model)
    if args.batch < 1:
        raise DataError("--batch", f"must be at least 1, got {args.batch}")
    if not 0.0 <= args.vote_iou <= 1.0:
        raise DataError("--vote-iou", f"must be from 0 (off) to 1, got {args.vote_iou}")
    vote_iou = args.vote_iou or None
    tiles, model = _tiles_and_model(args)
    classes = model.spec.class_names
    scans = scan_folders(args.data, classes, workers=args.workers, progress=args.progress_bar)
    every = [s for scan in scans for s in scan.samples]
    samples = restrict_to_list(every, args.images) if args.images else every
    if not samples:
        raise DataError(", ".join(args.data), "no usable labelled images")
    skipped = sum(1 for scan in scans for i in scan.issues if i.kind == "unknown_class")
    if skipped and not any(s.names for s in samples):  # every object is of a class the model does not know
        unknown = sorted({i.detail["class"] for scan in scans for i in scan.issues
                          if i.kind == "unknown_class" and i.detail})
        raise DataError(", ".join(args.data), f"labels only classes that {args.model} does not detect ({', '.join(unknown)}; "
                                              f"the model detects {', '.join(classes)}): nothing to evaluate. "
                                              "Wrong model or folder? `main.py train --from MODEL` learns new classes")
    print(f"evaluating {args.model} ({len(classes)} classes) on {len(samples)} images")
    if skipped:
        print(f"note: {skipped} objects of classes the model does not know are not part of this evaluation")
    predictor = eval_predictor(model, args.engine, vote_iou)
    predictor.tiles = tiles
    print(f"engine: {predictor.engine} on {predictor.device} (the app's inference path)"
          + (f"; tiles {tiles} + the full frame" if tiles else ""))
    detections = detect_samples(predictor, samples, args.batch, args.workers, "detecting" if args.progress_bar else None)
    labelled = labelled_classes(samples, classes, reference=every)
    if labelled is not None:
        print("note: the folders label different classes; each class is measured on the folders that label it")
    result = evaluate_detections(samples, detections, classes, labelled)
    print(format_result(result))
    by_size = recall_by_size(result, model.spec.input_size)
    print(format_recall_by_size(by_size))
    plot = args.plot or (str(Path(args.json).with_name(Path(args.json).stem + "_pr.png")) if args.json else None)
    if plot:
        plot_pr_curves(result, plot)
        print(f"precision-recall plot: {plot}")
    if args.json:
        report = {
            "model": str(Path(args.model).resolve()),
            "data": [str(Path(d).resolve()) for d in args.data],
            "images": len(samples),
            "classes": list(classes),
            "engine": predictor.engine,
            "tiles": str(tiles) if tiles else None,
            "postprocess": {"conf_threshold": EVAL_POSTPROCESS.conf_threshold, "nms_iou": EVAL_POSTPROCESS.iou_threshold,
                            "top_k": EVAL_POSTPROCESS.top_k, "max_detections": EVAL_POSTPROCESS.max_detections,
                            "box_voting_iou": vote_iou},
            "rules": {"ap": "VOC2010+ all-point", "ap_voc07": "VOC2007 11-point", "difficult": "ignored",
                      "iou": "continuous pixel coordinates, match if IoU >= threshold"},
            **result.to_dict(curves=True),
            "recall_by_size": by_size,
        }
        write_text_atomic(args.json, json.dumps(report, indent=1))
        print(f"report: {args.json}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    return _guarded(_evaluate, args)


# -- autolabel ----------------------------------------------------------------------------


def add_autolabel_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", help="the folder to label (VOC2007, labelImg, or images with or "
                                                      "without .xml side by side); it is never written")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="where the labelled copy goes (annotations written, images linked); give it the source "
                             "folder's name to keep the same train/validation split")
    parser.add_argument("--model", metavar="FILE", help="the model that labels (default: the bundled model)")
    parser.add_argument("--classes", metavar="A,B",
                        help="the model's classes to add (default: those the folder does not label yet)")
    parser.add_argument("--conf", type=float, default=0.5,
                        help="a detection scored at least this becomes an object (default 0.5)")
    parser.add_argument("--review-conf", type=float, default=0.25,
                        help="from this score up to --conf, a difficult object: to review in labelImg, and left out "
                             "by train --ignore-difficult (default 0.25)")
    parser.add_argument("--same-iou", type=float, default=0.5,
                        help="a detection overlapping a labelled object of its class this much is that object "
                             "(default 0.5)")
    parser.add_argument("--other-iou", type=float, default=0.7,
                        help="a detection overlapping a labelled object of another class this much is that object "
                             "mistaken (a horse from behind scored as a person) and is not added (default 0.7; 0: "
                             "no such check)")
    parser.add_argument("--tiles", metavar="RxC", help="tiled inference (2x2, 3x3): finds smaller objects, several "
                                                       "times slower; default off")
    parser.add_argument("--engine", default="auto", choices=["auto", "keras", "litert", "litert-fp16", "litert-int8"],
                        help="inference engine (default auto: LiteRT on a CPU, else the compiled Keras graph)")
    parser.add_argument("--batch", type=int, default=16, help="images per inference batch (default 16)")
    parser.add_argument("--workers", type=int, default=_default_workers(), help="reading threads")
    parser.add_argument("--no-progress", dest="progress_bar", action="store_false", help="no progress bars")


def _autolabel(args: argparse.Namespace) -> int:
    import numpy as np

    from runtime.batch import detect_pictures

    from .autolabel import AutolabelConfig, Picture, autolabel, format_summary, load_picture
    from .errors import DataError
    from .inference import eval_predictor
    from .scan import scan_folders

    if args.batch < 1:
        raise DataError("--batch", f"must be at least 1, got {args.batch}")
    tiles, model = _tiles_and_model(args)
    known = list(model.spec.class_names)
    scan = scan_folders([args.folder], None, workers=args.workers, progress=args.progress_bar)[0]
    labelled = {n for s in scan.samples for n in s.names}
    if args.classes:
        classes = tuple(c.strip() for c in args.classes.split(",") if c.strip())
        unknown = [c for c in classes if c not in known]
        if unknown:
            raise DataError("--classes", f"{', '.join(unknown)}: not detected by {args.model} "
                                         f"(it detects {', '.join(known)})")
    else:
        classes = tuple(c for c in known if c not in labelled)
        if not classes:
            raise DataError(args.folder, f"already labels every class {args.model} detects; name the ones to add "
                                         "with --classes")
    cfg = AutolabelConfig(classes, args.conf, args.review_conf, args.same_iou, args.other_iou or None).validate()
    pictures = [Picture(Path(s.image_path), Path(s.annotation_path) if s.annotation_path else None, s.boxes, s.names,
                        s.exif_orientation) for s in scan.samples]
    unlabelled = [Path(i.file) for i in scan.issues if i.detail and i.detail.get("unlabelled_image")]
    empty = np.zeros((0, 4), np.float32)
    pictures += [Picture(p, None, empty, ()) for p in unlabelled]
    if not pictures:
        raise DataError(args.folder, "no images to label")
    left_out = scan.candidates - len(scan.samples) - len(unlabelled)
    if left_out > 0:
        print(f"note: {left_out} files of {args.folder} cannot be read and are left out "
              f"(`main.py check-data {args.folder}` says why)")
    print(f"labelling {len(pictures)} images of {args.folder} ({len(unlabelled)} unlabelled) with {args.model}: "
          f"{', '.join(classes)}" + (f"; tiles {tiles}" if tiles else ""))
    if any(c in labelled for c in classes):
        print("note: the folder already labels " + ", ".join(c for c in classes if c in labelled)
              + "; only detections that overlap no labelled object of their class are added")
    predictor = eval_predictor(model, args.engine)
    predictor.tiles = tiles
    progress = "detecting" if args.progress_bar else None

    def detect(items):
        return detect_pictures(predictor, items, load_picture, args.batch, args.workers, progress)[0]

    settings = {"source": str(Path(args.folder).resolve()), "model": str(Path(args.model).resolve()),
                "engine": predictor.engine, "tiles": str(tiles) if tiles else None, "source_classes": sorted(labelled)}
    summary = autolabel(pictures, detect, cfg, Path(scan.root), Path(args.out), scan.layout, settings)
    print(format_summary(summary, cfg))
    if Path(args.out).name != Path(args.folder).resolve().name:
        print(f"note: {args.out} is not named like {args.folder}: a training run on it splits its images differently "
              "(the split depends on the folder's name); validation images of a run on the source may be trained on")
    print(f"written: {args.out} (open it in labelImg to review the difficult ones; train with --data {args.out})")
    return 0


def run_autolabel(args: argparse.Namespace) -> int:
    return _guarded(_autolabel, args)

"""``main.py import-caffe``: convert the Caffe MobileNet-SSD to a model file of this app.

    python main.py import-caffe MobileNetSSD_deploy.prototxt mobilenet_iter_73000.caffemodel \
        --out models/mobilenet_ssd_voc.keras

Only the standard library is imported at module level; the importer (and Keras) load in
``run_import_caffe``. User errors print one line naming the file and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def add_import_caffe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prototxt", metavar="DEPLOY.prototxt", help="the deploy network (text), e.g. MobileNetSSD_deploy.prototxt")
    parser.add_argument("caffemodel", metavar="WEIGHTS.caffemodel", help="the trained weights (binary), e.g. mobilenet_iter_73000.caffemodel")
    parser.add_argument("--out", required=True, metavar="FILE", help="model file to write (.keras)")
    names = parser.add_mutually_exclusive_group()
    names.add_argument("--classes", metavar="A,B,...",
                       help="class names in the network's order, comma-separated, without background "
                            "(default: the 20 VOC classes, for a 21-class network)")
    names.add_argument("--labels", metavar="FILE",
                       help="class names from a file: one per line, or a Caffe SSD labelmap.prototxt")


def _class_names(args: argparse.Namespace) -> list[str] | None:
    """The --classes or --labels names (None: the VOC default). Raises CaffeImportError."""
    from models.caffe.errors import CaffeImportError
    from models.caffe.labels import read_labels

    if args.labels is not None:
        return read_labels(args.labels)
    if args.classes is not None:
        names = [c.strip() for c in args.classes.split(",") if c.strip()]
        if not names:
            raise CaffeImportError(None, "--classes needs at least one class name")
        return names
    return None


def _check_paths(args: argparse.Namespace) -> str | None:
    """Cheap checks before the importer loads Keras; a message for the first problem, or None."""
    for path, what in ((args.prototxt, "prototxt"), (args.caffemodel, "caffemodel")):
        if not Path(path).is_file():
            return f"{path}: no such {what} file"
    if Path(args.out).suffix != ".keras":
        return f"{args.out}: the output model file must end in .keras"
    return None


def run_import_caffe(args: argparse.Namespace) -> int:
    problem = _check_paths(args)
    if problem:
        return _error(problem)

    from models.caffe import CaffeImportError, import_caffe
    from models.model_file import ModelFileError
    from models.priors import num_default_boxes
    from models.spec import SpecError

    try:
        result = import_caffe(args.prototxt, args.caffemodel, args.out, class_names=_class_names(args))
    except (CaffeImportError, SpecError, ModelFileError) as exc:
        return _error(str(exc))
    except OSError as exc:  # an unreadable input, or an output that cannot be written
        if exc.filename in (args.prototxt, args.caffemodel):
            return _error(f"{exc.filename}: cannot be read ({exc.strerror or exc})")
        return _error(f"{args.out}: cannot write the model file ({exc.strerror or exc})")

    spec = result.plan.spec
    shown = ", ".join(spec.class_names[:6]) + (", ..." if len(spec.class_names) > 6 else "")
    print(f"wrote {result.path}: Caffe MobileNet-SSD, {len(spec.class_names)} classes ({shown}), "
          f"{num_default_boxes(spec):,} default boxes, {result.model.count_params():,} parameters")
    if result.folded:
        print(f"folded BatchNorm/Scale layers into {len(result.folded)} convolutions")
    d = result.plan.detection
    print(f"the prototxt's DetectionOutput used confidence > {d.confidence_threshold:g}, NMS IoU "
          f"{d.nms_threshold:g}, top_k {d.top_k}, keep_top_k {d.keep_top_k} (set the app's own "
          f"thresholds with detect --conf/--iou)")
    return 0

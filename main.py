"""Real-time object detection: one command line, the GUI by default.

    python main.py                      # the desktop app with the bundled default model
    python main.py detect SOURCE ...    # detect objects in a video, image(s), camera or stream
    python main.py check-data DIR ...   # check labelled VOC folders
    python main.py train --data DIR --out RUN_DIR ...
    python main.py eval --data DIR --model FILE
    python main.py import-caffe DEPLOY.prototxt WEIGHTS.caffemodel --out FILE
    python main.py bench                # speed figures for this machine
    python main.py info MODEL           # what a model file holds

Each subcommand lives in a ``cli`` module that imports nothing heavy at import time, so
``--help`` is instant; TensorFlow and Qt load only when a command runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

# The GUI's X11 process must not use Qt's GL integration when TensorFlow is loaded too (two
# LLVM copies abort at exit); set it before any QApplication exists.
os.environ.setdefault("QT_XCB_GL_INTEGRATION", "none")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# OpenCV refuses to decode a picture of more pixels than this (read when cv2 loads, so it is set
# before): a 2.6 MB PNG of 30000x30000 took 6 GB. 256 Mpx is 8x an 8K frame and above any
# camera's photo; detector_app.sources and trainer.image_io name the limit when it is hit.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(256 * 2**20))

# subcommand -> (module, name): module.add_<name>_arguments(parser), module.run_<name>(args) -> int
COMMANDS: dict[str, tuple[str, str, str]] = {
    "gui": ("detector_app.cli", "gui", "open the desktop app (the default)"),
    "detect": ("detector_app.cli", "detect", "detect objects in a video, image, folder, camera or stream"),
    "detect-many": ("detector_app.cli", "detect_many", "detect over many videos/folders, locally or on a Ray cluster"),
    "info": ("detector_app.cli", "info", "show what a model file holds (classes, layout, spec)"),
    "check-data": ("trainer.cli", "check_data", "check labelled VOC folders and report every problem"),
    "train": ("trainer.cli", "train", "train or fine-tune a detector on labelled VOC folders"),
    "eval": ("trainer.cli", "evaluate", "VOC mAP of a model on a labelled folder"),
    "autolabel": ("trainer.cli", "autolabel", "pre-label a folder with a model: the classes it lacks, for review or training"),
    "import-caffe": ("detector_app.caffe_cli", "import_caffe", "convert the Caffe MobileNet-SSD to a model file"),
    "bench": ("bench.cli", "bench", "speed figures for this machine"),
}


# Commands that need no deep-learning backend (they start faster without it).
NO_BACKEND = {"info", "check-data"}


def preload_backend(probe_gpu: bool = True) -> None:
    """Import Keras and its backend, and probe the GPU, with native log noise silenced.

    Commands that never run a network (``NO_BACKEND``) skip the GPU probe, but still import
    Keras here: ``models`` imports it, and unsilenced that printed TensorFlow's start-up lines."""
    from runtime.quiet import native_stderr_silenced

    with native_stderr_silenced():
        import keras

        if probe_gpu and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_logical_devices("GPU")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only ``command``'s module is imported (all of them when None)."""
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Real-time object detection with MobileNet-SSD: desktop app, detection, training.",
        epilog="Without a command the desktop app opens. `main.py COMMAND --help` for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name_, (module_name, name, help_text) in COMMANDS.items():
        p = sub.add_parser(name_, help=help_text, description=help_text)
        if command is None or command == name_:
            module = importlib.import_module(module_name)
            getattr(module, f"add_{name}_arguments")(p)
    return parser


def honour_sigint() -> None:
    """SIGINT is how a user (Ctrl-C) and the app (Cancel of a training run) ask a command to
    stop cleanly: checkpoint, keep finished outputs, exit 130. A process started as a
    background job of a non-interactive shell inherits SIGINT as ignored and would then only
    ever be killed; give it Python's handler back."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in COMMANDS:
        command = first
    elif any(a in ("-h", "--help") for a in argv):
        build_parser(command="gui").parse_args(argv)  # prints the command list and exits
        return 0
    else:
        command, argv = "gui", ["gui", *argv]
    args = build_parser(command).parse_args(argv)
    honour_sigint()
    preload_backend(probe_gpu=command not in NO_BACKEND)
    module_name, name, _ = COMMANDS[command]
    runner = getattr(importlib.import_module(module_name), f"run_{name}")
    try:
        return int(runner(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

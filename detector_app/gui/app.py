"""``run_app``: the desktop app's entry point (``python main.py`` / ``main.py gui``)."""

from __future__ import annotations

import gc
import os
import signal
import sys


def run_app(model: str | None = None, source: str | None = None) -> int:
    """Open the window, load ``model`` (None: the bundled default) off the GUI thread and play
    ``source`` (a file, folder, camera index or URL) if given. Returns the exit status."""
    # A process that has TensorFlow loaded and opens a PyQt5 window on X11 aborts at exit
    # with Qt's GL integration (two LLVM copies); it must be off before QApplication exists.
    os.environ["QT_XCB_GL_INTEGRATION"] = "none"
    from PyQt5.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Detector")
    app.setOrganizationName("detector-app")
    settle_heap()
    window = MainWindow()
    window.show()
    window.start(model=model, source=source)
    _quit_on_ctrl_c(app, window)
    status = app.exec_()
    window.shutdown()
    return status


def settle_heap() -> None:
    """Collect once, then move every object alive now (TensorFlow, Keras and Qt modules:
    hundreds of thousands) out of the garbage collector's reach. Python's full collections
    hold the GIL, so on a full heap they froze the window for 20-270 ms at a time; with the
    start-up objects frozen they take a few milliseconds."""
    gc.collect()
    gc.freeze()


def _quit_on_ctrl_c(app, window) -> None:
    """Ctrl-C in the terminal closes the window cleanly (Qt's loop would not let Python see
    the signal without a timer giving the interpreter a turn)."""
    from PyQt5.QtCore import QTimer

    signal.signal(signal.SIGINT, lambda *_: window.close())
    timer = QTimer(app, interval=200)
    timer.timeout.connect(lambda: None)
    timer.start()

"""A real-window screenshot of the app running on a video, for the README.

    python -m tools.screenshot_gui                         # vtest.avi -> docs/screenshot.png
    python -m tools.screenshot_gui --source clip.mp4 --model my.keras --seconds 8 --out shot.png

Starts a virtual X server (Xvfb) unless --display is given, runs the real app (X11 window,
not the offscreen platform) on the video for a few seconds, grabs the window from the screen
(QScreen.grabWindow) and writes the PNG atomically. Settings and the model registry of the
run go to a temporary folder, so the user's own are untouched.

Needs the Debian packages ``xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0`` (Qt's xcb
plugin needs the last three) and, for the default video, ``opencv-doc``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
INSTALL_HINT = ("sudo apt-get install xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 "
                "libxkbcommon-x11-0 opencv-doc")
SCREEN = "1440x900x24"


def start_xvfb(screen: str = SCREEN) -> tuple[subprocess.Popen, str]:
    """Start Xvfb on a free display number; returns (process, ":N")."""
    if shutil.which("Xvfb") is None:
        sys.exit(f"error: Xvfb is not installed; install it with:\n  {INSTALL_HINT}")
    for number in range(99, 140):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        display = f":{number}"
        process = subprocess.Popen(["Xvfb", display, "-screen", "0", screen, "-nolisten", "tcp"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                return process, display
            if process.poll() is not None:
                break
            time.sleep(0.1)
        process.terminate()
        process.wait(5)
    sys.exit("error: could not start Xvfb on any display from :99 to :139")


def capture(source: str, model: str | None, seconds: float, out: Path, conf: float | None,
            size: tuple[int, int], tiles: str | None = None) -> int:
    """Run the app in this process on the current $DISPLAY and save a grab of its window."""
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    os.environ["QT_XCB_GL_INTEGRATION"] = "none"  # TensorFlow + Qt GL on X11 abort at exit
    sys.path.insert(0, str(ROOT))
    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QApplication

    from detector_app.gui.app import settle_heap
    from detector_app.gui.main_window import MainWindow

    app = QApplication([sys.argv[0]])
    settle_heap()  # as run_app does
    window = MainWindow(find_cameras=True)
    window.resize(*size)
    window.show()
    if conf is not None:
        window.thresholds.conf.set_value(conf)
    if tiles is not None:
        window.thresholds.set_tiles(tiles)
    window.start(model=model, source=source)
    started = time.perf_counter()
    state = {"status": 1, "ready_at": None}

    def grab() -> None:
        now = time.perf_counter()
        if state["ready_at"] is None and window.loaded is not None and window.meter.shown >= 10:
            state["ready_at"] = now  # model loaded (the first conversion takes a while) and playing
        if state["ready_at"] is None and now - started > 300:
            print("error: no frames shown after 300 s", file=sys.stderr)
        elif state["ready_at"] is None or now - state["ready_at"] < seconds:
            return
        else:
            state["status"] = save(window, app, out)
        window.close()
        app.quit()

    timer = QTimer(interval=250, timeout=grab)
    timer.start()
    app.exec_()
    window.shutdown()
    return state["status"]


def save(window, app, out: Path) -> int:
    """Grab the window from the screen (what a user sees) and write it atomically."""
    from detector_app.writers import AtomicFile

    window.refresh_status()
    app.processEvents()
    pixmap = app.primaryScreen().grabWindow(int(window.winId()))
    target = AtomicFile(out)
    if not pixmap.save(str(target.tmp), "PNG"):
        target.abort()
        print(f"error: could not write {out}", file=sys.stderr)
        return 1
    target.commit()
    print(f"wrote {out} ({pixmap.width()}x{pixmap.height()})\nstatus: {window.stats_label.text()}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(VTEST), help="video to play (default: OpenCV's vtest.avi)")
    parser.add_argument("--model", help="model file (default: the bundled model)")
    parser.add_argument("--conf", type=float, help="confidence threshold to show")
    parser.add_argument("--tiles", choices=["off", "2x2", "3x3"], help="the Small objects setting to show")
    parser.add_argument("--seconds", type=float, default=6.0, help="play this long before the grab")
    parser.add_argument("--size", default="1280x760", help="window size WIDTHxHEIGHT")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--display", help="use this X display instead of starting Xvfb")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not Path(args.source).exists() and "://" not in args.source:
        sys.exit(f"error: {args.source}: no such file (vtest.avi comes with: sudo apt-get install opencv-doc)")
    size = tuple(int(v) for v in args.size.lower().split("x"))
    if args.child:
        return capture(args.source, args.model, args.seconds, Path(args.out), args.conf, size, args.tiles)
    xvfb, display = (None, args.display) if args.display else start_xvfb()
    try:
        with tempfile.TemporaryDirectory() as config:
            env = {**os.environ, "DISPLAY": display, "DETECTOR_APP_CONFIG_DIR": config}
            command = [sys.executable, "-m", "tools.screenshot_gui", "--child", *sys.argv[1:]]
            return subprocess.run(command, cwd=ROOT, env=env).returncode
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)


if __name__ == "__main__":
    sys.exit(main())

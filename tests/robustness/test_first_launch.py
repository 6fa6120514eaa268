"""First launch of a model: the video shows and is detected at once on the compiled Keras
graph while LiteRT is converted in a child process, then the predictor switches engines
without a pause. Closing the app mid-conversion ends the child and removes its files (before:
"loading model..." for 40-70 s, and a converter left running with a 44 MB folder)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("ai_edge_litert")

from detector_app.gui.main_window import MainWindow  # noqa: E402
from runtime import engines  # noqa: E402
from tests.test_gui_window import clip, model_files, pipeline_threads  # noqa: E402,F401

pytestmark = pytest.mark.gui


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of this process: reap it
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit is reaped by whoever adopted it, if anyone)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def fresh_window(qtbot, tmp_path, monkeypatch):
    """A window with an empty converted-model cache (a fresh install)."""
    monkeypatch.setenv("DETECTOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DETECTOR_ENGINE", raising=False)
    win = MainWindow(settings_file=str(tmp_path / "config" / "settings.yaml"),
                     registry=str(tmp_path / "config" / "models.yaml"), find_cameras=False)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    assert not pipeline_threads()


def test_a_new_model_detects_at_once_then_switches_to_litert(qtbot, fresh_window, model_files, clip, tmp_path):
    win = fresh_window
    win.load_model(model_files["dog"])
    qtbot.waitUntil(lambda: win.loaded is not None, timeout=60000)
    assert win.loaded.predictor.engine == "keras" and win._upgrade is not None
    conversion = win._upgrade.conversion
    win.set_realtime(False)
    win.open_source_text(str(clip))
    qtbot.waitUntil(lambda: win.meter.shown >= 3, timeout=30000)
    first = win.last_result
    assert first.detections is not None and len(first.detections) > 0, "detected while LiteRT is prepared"
    qtbot.waitUntil(lambda: "LiteRT being prepared" in win.device_label.text() or win._upgrade is None, timeout=5000)

    qtbot.waitUntil(lambda: win.loaded.predictor.engine == "litert" and win._upgrade is None, timeout=180000)
    assert "switched to the litert engine" in win.statusBar().currentMessage()
    assert "(litert engine)" in win._device_text("CPU")
    shown = win.meter.shown
    win.seek_to(0)
    win.set_playing(True)
    qtbot.waitUntil(lambda: win.meter.shown >= shown + 3, timeout=30000)  # frames go on, now on LiteRT
    later = win.last_result
    assert later.detections is not None and later.detections.names[:1] == first.detections.names[:1]
    cached = list((tmp_path / "cache" / "litert").glob("*.tflite"))
    assert len(cached) == 1 and cached[0].stat().st_size > 0, "the next launch starts on LiteRT"
    assert not conversion.folder.exists() and not alive(conversion.pid)


def test_closing_during_the_first_conversion_ends_the_converter(qtbot, fresh_window, model_files, tmp_path):
    win = fresh_window
    win.load_model(model_files["cow"])
    qtbot.waitUntil(lambda: win._upgrade is not None, timeout=60000)
    conversion = win._upgrade.conversion
    assert alive(conversion.pid) and conversion.folder.exists()
    win.close()
    deadline = time.monotonic() + 10
    while alive(conversion.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(conversion.pid), "the converter child ends with the app"
    assert not conversion.folder.exists(), "its temporary folder is removed"
    assert not list((tmp_path / "cache").rglob("*.tflite")), "a cancelled conversion fills no cache"


def test_a_converter_whose_app_dies_stops_and_cleans_up(tmp_path):
    """Killed apps cannot clean up: the child notices it was orphaned and removes its files."""
    code = (
        "import sys; from models import build_model, seed_spec; from runtime.engines import ChildConversion;"
        "c = ChildConversion(build_model(seed_spec(['dog'], alpha=0.25)));"
        "print(c.pid, c.folder, flush=True); import os; os._exit(0)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(root)})
    pid, folder = out.stdout.split()
    # The child arms its watch before importing TensorFlow, so it should notice within a
    # second or two; the limit is generous for a machine under load. It removes its folder,
    # then exits: wait for both.
    start = time.monotonic()
    while (Path(folder).exists() or running(int(pid))) and time.monotonic() < start + 180:
        time.sleep(0.2)
    waited = time.monotonic() - start
    log = Path(folder) / engines.CHILD_LOG
    said = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
    assert not Path(folder).exists(), (
        f"the orphaned converter left its folder after {waited:.0f} s (still running: {running(int(pid))});"
        f" its stderr ended with:\n{said}")
    assert not running(int(pid)), f"the orphaned converter still runs after {waited:.0f} s"
    assert engines.ChildConversion  # the class the app uses

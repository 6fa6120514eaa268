"""The main window, offscreen (pytest-qt): frames with overlays, sliders and class filter,
recording, snapshots and export, bad sources, model swap, stream reconnection, clean close."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt5.QtCore import QThread  # noqa: E402

from detector_app.gui.main_window import MainWindow  # noqa: E402
from detector_app.gui.model_loading import LoadedModel  # noqa: E402
from runtime.predictor import Predictor  # noqa: E402
from tests.media import write_video  # noqa: E402
from tools.mjpeg_server import MjpegServer  # noqa: E402

pytestmark = pytest.mark.gui

# Class probabilities the test models give every default box (background first).
DOG_MODEL = {"background": 0.05, "dog": 0.6, "cat": 0.3, "person": 0.05}
COW_MODEL = {"background": 0.05, "cow": 0.9, "sheep": 0.05}


def predictable_model(probs: dict[str, float]):
    """A tiny seed model whose every default box has the class probabilities ``probs`` and
    no offset (boxes are the default boxes), so what is drawn follows from the thresholds."""
    from models import build_model, seed_spec

    classes = [c for c in probs if c != "background"]
    model = build_model(seed_spec(classes, alpha=0.25))
    logits = np.log(np.array([probs["background"], *(probs[c] for c in classes)], np.float32))
    for layer in model.layers:
        if not layer.name.startswith(("cls_", "box_")) or len(layer.get_weights()) != 2:
            continue
        kernel, bias = layer.get_weights()
        if layer.name.startswith("cls_"):
            bias = np.tile(logits, bias.size // logits.size)
        else:
            bias = np.zeros_like(bias)
        layer.set_weights([np.zeros_like(kernel), bias])
    return model


@pytest.fixture(scope="session")
def model_files(tmp_path_factory):
    from models.model_file import save_model

    folder = tmp_path_factory.mktemp("models")
    return {"dog": str(save_model(predictable_model(DOG_MODEL), folder / "dogs.keras")),
            "cow": str(save_model(predictable_model(COW_MODEL), folder / "cows.keras"))}


@pytest.fixture(scope="session")
def dog_predictor(model_files):
    return Predictor.from_file(model_files["dog"])


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("media") / "clip.avi", frames=64, size=(320, 240))


def pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "inference-worker" or t.name.startswith("capture:")]


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, dog_predictor):
    monkeypatch.setenv("DETECTOR_APP_CONFIG_DIR", str(tmp_path / "config"))
    win = MainWindow(settings_file=str(tmp_path / "config" / "settings.yaml"),
                     registry=str(tmp_path / "config" / "models.yaml"), find_cameras=False)
    qtbot.addWidget(win)
    win.outputs.output_dir = tmp_path / "out"
    win.show()
    win.use_model(LoadedModel(dog_predictor, dog_predictor.source))
    yield win
    win.close()
    assert not pipeline_threads(), "closing the window stops the capture and inference threads"
    assert not any(t.isRunning() for t in win.tasks.threads())


def play(qtbot, win: MainWindow, source: str, frames: int = 3, realtime: bool = True) -> None:
    win.set_realtime(realtime)
    win.open_source_text(source)
    qtbot.waitUntil(lambda: win.meter.shown >= frames, timeout=20000)


def next_result(qtbot, win: MainWindow):
    """The first result shown after now (a change applies from the next frame; a paused
    frame re-selected with new thresholds comes back as a new result of the same frame)."""
    previous = win.last_result
    qtbot.waitUntil(lambda: win.last_result is not None and win.last_result is not previous, timeout=10000)
    return win.last_result


def shown_everything(win: MainWindow) -> bool:
    """The pipeline's worker is idle and the GUI has taken its last result."""
    pipeline = win.bridge.pipeline
    return pipeline is not None and pipeline.idle() and not win.bridge.pending


def settled_result(qtbot, win: MainWindow):
    """The frame shown once a paused file has shown every change made (a new result first,
    then nothing left in the worker or the mailbox)."""
    next_result(qtbot, win)
    qtbot.waitUntil(lambda: shown_everything(win), timeout=20000)
    return win.last_result


def drained(qtbot, win: MainWindow):
    """After a pause: the capture thread paused, nothing queued or in the worker, and the
    last result taken by the GUI (conditions, not a quiet period that a busy machine breaks)."""
    pipeline = win.bridge.pipeline
    qtbot.waitUntil(lambda: pipeline.capture.stats().state == "paused" and shown_everything(win), timeout=20000)
    return win.last_result


def test_video_frames_arrive_with_overlays(qtbot, window, clip):
    play(qtbot, window, str(clip), frames=8)
    result = window.last_result
    assert result.detections is not None and len(result.detections) > 0
    assert set(result.detections.names) == {"dog"}  # confidence 0.5: dogs (0.6), not cats (0.3)
    assert not np.array_equal(window.view.image(), result.frame.image), "boxes are drawn"
    assert result.image.shape == (240, 320, 3)
    assert {"capture", "preprocess", "inference", "postprocess", "draw"} <= set(result.stage_ms)
    qtbot.waitUntil(lambda: "FPS" in window.stats_label.text(), timeout=3000)
    text = window.stats_label.text()
    for word in ("capture", "inference", "display", "dropped", "latency", "pre", "inf", "post", "draw"):
        assert word in text
    assert "CPU" in window.device_label.text() or "GPU" in window.device_label.text()
    assert window.meter.figures().latency_ms["p50"] > 0
    # a message is shown whole over the figures, which come back when it goes
    window.statusBar().showMessage("switched to the litert engine: the same detections, faster")
    qtbot.waitUntil(lambda: not window.stats_label.isVisible(), timeout=3000)
    assert window.device_label.isVisible()
    window.statusBar().clearMessage()
    qtbot.waitUntil(window.stats_label.isVisible, timeout=3000)


def test_view_keeps_the_aspect_ratio(qtbot, window, clip):
    play(qtbot, window, str(clip))
    for size in ((900, 300), (300, 900)):
        window.view.resize(*size)
        rect = window.view.image_rect()
        assert rect.width() / rect.height() == pytest.approx(320 / 240, rel=0.02)
        assert rect.width() <= window.view.width() and rect.height() <= window.view.height()


def test_sliders_and_class_filter_change_what_is_drawn(qtbot, window, clip):
    play(qtbot, window, str(clip))
    window.set_playing(False)  # a paused file shows its frame again when a setting changes
    drained(qtbot, window)  # frames read before the pause are shown first
    processed = window.bridge.pipeline.stats().processed
    drawn_before = window.view.image().copy()

    window.thresholds.conf.set_value(0.2)
    result = settled_result(qtbot, window)
    assert set(result.detections.names) == {"dog", "cat"}
    assert not np.array_equal(window.view.image(), drawn_before)

    window.thresholds.conf.set_value(0.7)
    assert len(settled_result(qtbot, window).detections) == 0

    window.thresholds.conf.set_value(0.5)
    window.thresholds.iou.set_value(0.3)
    few = len(settled_result(qtbot, window).detections)
    window.thresholds.iou.set_value(1.0)
    many = len(settled_result(qtbot, window).detections)
    assert many > few > 0, "a looser NMS keeps more overlapping boxes"

    window.thresholds.iou.set_value(0.45)
    window.thresholds.conf.set_value(0.2)
    window.class_filter.set_checked("dog", False)
    qtbot.waitUntil(lambda: set(window.last_result.detections.names) == {"cat"}, timeout=10000)
    assert window.settings.hidden_classes == ["dog"]
    # every change was a re-selection of the paused frame's cached outputs: no network run
    assert window.bridge.pipeline.stats().processed == processed


def test_small_object_tiles_run_the_paused_frame_again_and_are_remembered(qtbot, window, clip, dog_predictor):
    from runtime.tiling import TileGrid

    play(qtbot, window, str(clip))
    window.set_playing(False)
    shown = drained(qtbot, window)
    processed = window.bridge.pipeline.stats().processed
    window.thresholds.tiles.setCurrentIndex(window.thresholds.tiles.findData("3x3"))
    again = settled_result(qtbot, window)
    assert again.frame.index == shown.frame.index, "the same frame, looked at again"
    assert window.bridge.pipeline.stats().processed == processed + 1, "through the network, not re-selected"
    assert dog_predictor.tiles == TileGrid(3, 3) and window.settings.tiles == "3x3"
    assert "3x3 tiles" in window.device_label.text(), "the status bar says frames are tiled"
    window.thresholds.set_tiles("off")
    settled_result(qtbot, window)
    assert dog_predictor.tiles is None and window.settings.tiles == "off"
    assert "tiles" not in window.device_label.text()


def test_play_pause_step_and_seek(qtbot, window, clip):
    play(qtbot, window, str(clip))
    window.set_playing(False)
    drained(qtbot, window)
    index = window.last_result.frame.index
    window.step_frame()
    assert next_result(qtbot, window).frame.index == index + 1
    window.seek_to(40)
    assert next_result(qtbot, window).frame.index == 40
    window.set_playing(True)
    qtbot.waitUntil(lambda: window.last_result.frame.index >= 45, timeout=10000)


def test_recording_writes_a_video_that_reads_back(qtbot, window, clip, tmp_path):
    play(qtbot, window, str(clip), realtime=False)
    window.set_playing(False)
    window.seek_to(0)
    assert window.outputs.start_recording(tmp_path / "rec.mp4")
    assert window.actions_by_name["record"].isChecked()
    window.set_playing(True)
    qtbot.waitUntil(lambda: window._at_end and window.last_result.frame.index == 63, timeout=20000)
    path = window.outputs.stop_recording()
    assert path == tmp_path / "rec.mp4" and not window.actions_by_name["record"].isChecked()
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    assert len(frames) >= 60 and frames[0].shape == (240, 320, 3)


def test_snapshot_and_export(qtbot, window, clip, tmp_path):
    play(qtbot, window, str(clip), realtime=False)
    window.set_playing(False)
    drained(qtbot, window)  # the frame in flight when pausing is logged too
    files = window.outputs.snapshot(window.last_result, tmp_path / "snaps")
    assert files.annotated.is_file() and files.image.is_file()
    assert cv2.imread(str(files.annotated)).shape == (240, 320, 3)
    root = ET.parse(files.xml).getroot()
    assert root.findtext("filename") == files.image.name
    names = [o.findtext("name") for o in root.iter("object")]
    assert names and set(names) == {"dog"}

    frames = window.outputs.export(tmp_path / "run.jsonl")
    lines = (tmp_path / "run.jsonl").read_text().splitlines()
    assert frames == len(lines) == len(window.outputs.run_log) > 0
    record = json.loads(lines[0])
    assert set(record) == {"frame", "time_s", "detections"} and record["detections"][0]["class"] == "dog"
    assert window.outputs.export(tmp_path / "run.csv") == frames
    assert (tmp_path / "run.csv").read_text().startswith("frame,time_s,file,class,score")


def test_a_bad_file_shows_an_error_and_the_window_still_works(qtbot, window, clip, tmp_path):
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"this is not a video" * 100)
    window.open_source_text(str(bad))
    qtbot.waitUntil(lambda: "broken.avi" in window.messages.text(), timeout=10000)
    assert window.messages.level == "error"
    play(qtbot, window, str(clip))
    assert window.last_result.frame.image.shape == (240, 320, 3)


def test_a_camera_that_does_not_exist_shows_an_error(qtbot, window, clip):
    play(qtbot, window, str(clip))
    window.open_source_text("99")
    qtbot.waitUntil(lambda: "camera 99" in window.messages.text(), timeout=10000)
    assert "keeps running" in window.messages.text()
    assert window.bridge.pipeline is not None and window.bridge.pipeline.running
    index = window.last_result.id
    qtbot.waitUntil(lambda: window.last_result.id > index, timeout=5000)


def test_swapping_the_model_mid_stream(qtbot, window, clip, model_files, tmp_path):
    play(qtbot, window, str(clip), realtime=True)
    with qtbot.waitSignal(window.modelReady, timeout=60000):
        window.load_model(model_files["cow"])
    window.set_playing(True)  # from the start again if the clip ended while the model loaded
    # The swap applies from the next frame the worker takes: a frame already in inference when
    # it came may still be shown with the old model's boxes (labelled with that model), so wait
    # for the first result of the new one rather than take whichever result comes next.
    qtbot.waitUntil(lambda: window.last_result is not None and window.last_result.model == model_files["cow"],
                    timeout=10000)
    result = window.last_result
    assert set(result.detections.names) == {"cow"}
    assert [window.class_filter.list.item(i).text() for i in range(window.class_filter.list.count())] == ["cow", "sheep"]

    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    window.load_model(str(damaged))
    qtbot.waitUntil(lambda: "damaged.keras" in window.messages.text(), timeout=20000)
    assert "keeps running" in window.messages.text()
    window.seek_to(0)
    window.set_playing(True)
    assert next_result(qtbot, window).model == model_files["cow"]


def test_a_stream_that_drops_reconnects(qtbot, window):
    server = MjpegServer(fps=30).start()
    try:
        play(qtbot, window, server.url)
        assert window.playback.position.text() == "live"
        server.stop()
        qtbot.waitUntil(lambda: "reconnecting" in window.messages.text(), timeout=15000)
        server.start()
        qtbot.waitUntil(lambda: "reconnected" in window.statusBar().currentMessage()
                        or window.bridge.pipeline.stats().reconnects > 0, timeout=20000)
        shown = window.meter.shown
        qtbot.waitUntil(lambda: window.meter.shown > shown, timeout=10000)
        window.close_source()
    finally:
        server.stop()


def test_settings_are_kept(qtbot, window, clip, tmp_path):
    play(qtbot, window, str(clip))
    window.thresholds.conf.set_value(0.35)
    window.close()
    again = MainWindow(settings_file=window.settings_file, registry=str(tmp_path / "config" / "models.yaml"),
                       find_cameras=False)
    qtbot.addWidget(again)
    try:
        assert again.thresholds.values()[0] == pytest.approx(0.35)
        assert again.settings.last_source == str(clip)
        assert again.settings.window_geometry
    finally:
        again.close()


def test_closing_mid_stream_leaves_no_thread_running(qtbot, window, clip):
    play(qtbot, window, str(clip), realtime=False)
    window.outputs.start_recording()
    window.close()
    assert not pipeline_threads()
    assert not any(isinstance(t, QThread) and t.isRunning() for t in window.tasks.threads())
    assert not window.outputs.recording


def test_drop_a_file_on_the_window_and_keyboard_shortcuts(qtbot, window, clip):
    from PyQt5.QtCore import QMimeData, QPoint, Qt, QUrl
    from PyQt5.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(clip))])
    event = QDropEvent(QPoint(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.view.dropEvent(event)
    qtbot.waitUntil(lambda: window.meter.shown >= 3, timeout=20000)
    assert window.settings.last_source == str(clip)

    window.actions_by_name["play_pause"].trigger()  # Space
    assert not window.playback.playing
    drained(qtbot, window)
    index = window.last_result.frame.index
    window.actions_by_name["step"].trigger()  # "."
    qtbot.waitUntil(lambda: window.last_result.frame.index > index, timeout=5000)
    conf = window.thresholds.values()[0]
    window.actions_by_name["conf_up"].trigger()  # "]"
    assert window.thresholds.values()[0] == pytest.approx(conf + 0.05)
    shortcuts = {a.shortcut().toString() for a in window.actions_by_name.values()}
    assert {"Space", "Ctrl+O", "Ctrl+R", "Ctrl+S", "Ctrl+E", "Ctrl+M"} <= shortcuts


def test_cameras_are_probed_without_blocking(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTOR_APP_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr("detector_app.gui.main_window.probe_cameras", lambda: [0, 2])
    win = MainWindow(settings_file=str(tmp_path / "s.yaml"), registry=str(tmp_path / "m.yaml"))
    qtbot.addWidget(win)
    try:
        qtbot.waitUntil(lambda: win.cameras.combo.count() == 3, timeout=10000)
        assert [win.cameras.combo.itemText(i) for i in range(3)] == ["Choose a camera…", "Camera 0", "Camera 2"]
    finally:
        win.close()


def test_a_model_opened_from_a_file_joins_the_model_list(qtbot, window, model_files):
    with qtbot.waitSignal(window.modelReady, timeout=60000):
        window.load_model(model_files["cow"], remember=True)
    labels = [window.model_picker.combo.itemText(i) for i in range(window.model_picker.combo.count())]
    assert any(label.startswith("cows (imported: cow, sheep)") for label in labels)
    assert window.model_picker.combo.currentText().startswith("cows")


def test_a_folder_of_images_opens_paused_and_steps(qtbot, window, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"p{i}.jpg"), np.full((120, 160, 3), 60 * i, np.uint8))
    (folder / "broken.jpg").write_bytes(b"not an image")
    window.open_source_text(str(folder))
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=20000)
    assert window.last_result.frame.label == "p0.jpg"  # broken.jpg is reported and skipped
    assert not window.playback.playing
    first = window.last_result.id
    qtbot.wait(300)
    assert window.last_result.id == first, "paused: no other image"
    window.step_frame()
    qtbot.waitUntil(lambda: window.last_result.id > first, timeout=5000)
    assert window.last_result.frame.label == "p1.jpg"


def test_switching_sources_quickly_never_runs_two_inferences_at_once(qtbot, window, clip, model_files):
    """Opening a source retires the old pipeline without waiting for it (a stream read can
    block), so for a moment two workers hold the same predictor: its lock must keep their
    inferences (resize buffer, LiteRT interpreter) from overlapping."""
    predictor = Predictor.from_file(model_files["dog"])  # a real model on the real engine
    inner, state, guard = predictor._infer, {"inside": 0, "most": 0, "calls": 0}, threading.Lock()

    def watched(batch):
        with guard:
            state["inside"] += 1
            state["calls"] += 1
            state["most"] = max(state["most"], state["inside"])
        try:
            QThread.msleep(3)  # widen the window a race would need
            return inner(batch)
        finally:
            with guard:
                state["inside"] -= 1

    predictor._infer = watched
    window.use_model(LoadedModel(predictor, predictor.source))
    window.set_realtime(False)  # frames as fast as they go: inference always busy
    for _ in range(12):
        before = window.bridge.pipeline
        window.open_source_text(str(clip))
        qtbot.waitUntil(lambda before=before: window.bridge.pipeline is not before and window.bridge.pipeline.stats().processed >= 2,
                        timeout=20000)
    assert state["calls"] >= 24 and state["most"] == 1

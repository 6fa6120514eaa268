"""The main window: wiring of sources, model, pipeline, view, controls and outputs.

Threads: a capture thread and one inference worker per open source (the Qt-free
:class:`HeadlessPipeline`, reached through :class:`PipelineBridge` signals), one-shot
QThreads for model loading, source opening and camera probing (:class:`TaskRunner`), and a
separate process for training. This thread only paints ready frames and moves widgets.
"""

from __future__ import annotations

import base64
from pathlib import Path

from PyQt5.QtCore import QByteArray, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PyQt5.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from models.model_file import ModelFileError
from runtime.predictor import EngineUpgrade

from ..capture import CaptureEvent, CaptureState, EventKind
from ..model_registry import RegistryError, register_model
from ..model_store import DEFAULT_MODEL
from ..pipeline import FrameResult, HeadlessPipeline
from ..settings import load_settings, save_settings
from ..sources import IMAGE_EXTENSIONS, SourceError, is_stream_url, open_source
from ..writers import OutputError
from .actions import ActionSpec, build_actions, shortcut_table
from .camera_probe import probe_cameras
from .class_filter import ClassFilterPanel
from .display_stats import DisplayMeter, status_text, status_tooltip
from .message_bar import MessageBar
from .model_loading import LoadedModel, load_predictor
from .model_picker import ModelPicker
from .outputs import Outputs
from .pipeline_bridge import PipelineBridge
from .playback_bar import PlaybackBar
from .source_picker import CameraPicker
from .tasks import TaskRunner
from .threshold_panel import TILE_CHOICES, ThresholdPanel
from .training_panel import TrainingPanel
from .video_view import VideoView

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.m4v *.webm *.mpg *.mpeg *.wmv *.flv *.ts);;All files (*)"
IMAGE_FILTER = f"Images ({' '.join('*' + e for e in sorted(IMAGE_EXTENSIONS))});;All files (*)"
# Capture event kind -> where it is shown besides the status bar (None: status bar only).
EVENT_LEVELS: dict[EventKind, str | None] = {
    EventKind.RECONNECTING: "warning", EventKind.RECONNECTED: "info", EventKind.GAVE_UP: "error",
    EventKind.ERROR: "error", EventKind.DROPPING: "warning", EventKind.WARNING: None, EventKind.END: None,
    EventKind.MODEL: None,
}
STATUS_MS = 500
SEEK_STEP_S = 5.0


class MainWindow(QMainWindow):
    """``settings_file`` / ``registry``: YAML files to use instead of the user's config folder
    (tests); ``find_cameras``: look for cameras at start."""

    modelReady = pyqtSignal(str)  # the model's source, once it detects

    def __init__(self, settings_file: str | None = None, registry: str | None = None,
                 find_cameras: bool = True):
        super().__init__()
        self.setWindowTitle("Detector")
        self.setAcceptDrops(True)
        self.settings_file = settings_file
        self.settings, setting_warnings = load_settings(settings_file)
        self.tasks = TaskRunner(self)
        self.bridge = PipelineBridge(self)
        self.meter = DisplayMeter()
        self.loaded: LoadedModel | None = None
        self.last_result: FrameResult | None = None
        self._tokens = {"model": 0, "source": 0}
        self._at_end = False
        self._closed = False
        self._upgrade: EngineUpgrade | None = None  # a LiteRT conversion in progress
        self.engine_note = ""  # shown in the status bar while the model runs on a stand-in engine
        self._build_ui(registry)
        self.outputs = Outputs(self.report, self.settings.output_dir, self)
        self.actions_by_name = build_actions(self, self.toolbar, ACTIONS)
        self._wire()
        self._restore()
        self._status_timer = QTimer(self, interval=STATUS_MS, timeout=self.refresh_status)
        self._status_timer.start()
        for warning in setting_warnings:
            self.report(warning, "warning")
        if find_cameras:
            self.find_cameras()

    # -- construction ---------------------------------------------------------------------------

    def _build_ui(self, registry: str | None) -> None:
        self.messages = MessageBar()
        self.view = VideoView()
        self.playback = PlaybackBar()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.messages)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.playback)
        self.setCentralWidget(central)
        self.toolbar = QToolBar("Main", objectName="main_toolbar")
        self.addToolBar(self.toolbar)
        self.cameras = CameraPicker()
        self.model_picker = ModelPicker(registry)
        self.thresholds = ThresholdPanel(self.settings.conf, self.settings.iou, self.settings.tiles)
        self.class_filter = ClassFilterPanel()
        self.training = TrainingPanel(registry, self.settings)
        self._add_docks()
        self.stats_label = QLabel("")
        self.device_label = QLabel("device: –")
        # The figures are a normal (not permanent) status-bar widget: a message ("now detecting
        # with ...") covers them for its few seconds instead of being clipped to a few words
        # beside a line of figures that fills a 1280-pixel window.
        self.statusBar().addWidget(self.stats_label, 1)
        self.statusBar().addPermanentWidget(self.device_label)

    def _add_docks(self) -> None:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        for title, widget in (("Camera", self.cameras), ("Model", self.model_picker),
                              ("Thresholds", self.thresholds), ("Classes", self.class_filter)):
            box = QGroupBox(title)
            QFormLayout(box).addRow(widget)
            layout.addWidget(box, 1 if widget is self.class_filter else 0)
        controls = QDockWidget("Detection", self, objectName="detection_dock")
        controls.setWidget(panel)
        self.addDockWidget(Qt.RightDockWidgetArea, controls)
        self.training_dock = QDockWidget("Fine-tuning", self, objectName="training_dock")
        self.training_dock.setWidget(self.training)
        self.addDockWidget(Qt.RightDockWidgetArea, self.training_dock)
        self.training_dock.hide()

    def _wire(self) -> None:
        self.bridge.frameReady.connect(self._frame_ready)
        self.bridge.event.connect(self._on_event)
        self.view.framePainted.connect(self._frame_painted)
        self.view.fileDropped.connect(self.open_source_text)
        self.playback.playToggled.connect(self.set_playing)
        self.playback.stepRequested.connect(self.step_frame)
        self.playback.seekRequested.connect(self.seek_to)
        self.playback.realtime.toggled.connect(self.actions_by_name["realtime"].setChecked)
        self.actions_by_name["realtime"].setChecked(self.settings.realtime)
        self.playback.realtime.setChecked(self.settings.realtime)
        self.thresholds.thresholdsChanged.connect(self._thresholds_changed)
        self.thresholds.tilesChanged.connect(self._tiles_changed)
        self.class_filter.hiddenChanged.connect(self._hidden_changed)
        self.model_picker.modelChosen.connect(self.load_model)
        self.model_picker.openRequested.connect(self.choose_model_file)
        self.cameras.cameraChosen.connect(lambda index: self.open_source_text(str(index)))
        self.cameras.refreshRequested.connect(self.find_cameras)
        self.outputs.recordingChanged.connect(self._recording_changed)
        self.training.useModel.connect(self.load_model)
        self.training.modelRegistered.connect(self.model_picker.refresh)
        self.training_dock.visibilityChanged.connect(self.actions_by_name["training"].setChecked)

    def _restore(self) -> None:
        for text, restore in ((self.settings.window_geometry, self.restoreGeometry),
                              (self.settings.window_state, self.restoreState)):
            if text:
                restore(QByteArray(base64.b64decode(text.encode("ascii"))))
        if not self.settings.window_geometry:
            self.resize(1280, 800)

    # -- start-up -------------------------------------------------------------------------------

    def start(self, model: str | None = None, source: str | None = None) -> None:
        """Load the model (given, else the last one used, else the bundled default) and open
        ``source`` (else the last file opened, if it still exists). Returns at once."""
        self.load_model(model or self.settings.model)
        last = self.settings.last_source
        if source is None and last and not is_stream_url(last) and not last.strip().isdigit() and Path(last).exists():
            source = last
        if source is not None:
            self.open_source_text(source)

    # -- messages -------------------------------------------------------------------------------

    def report(self, text: str, level: str = "info") -> None:
        """Tell the user: "info" in the status bar; "warning"/"error" also in the message bar."""
        self.statusBar().showMessage(text, 8000)
        if level != "info":
            self.messages.show_message(text, level)

    # -- models ---------------------------------------------------------------------------------

    def load_model(self, path: str | None, remember: bool = False) -> None:
        """Load a model file off the GUI thread and swap it in between frames; on failure the
        current model keeps running. None: the bundled default. ``remember``: add the file to
        the model list (the registry) once it loaded."""
        self._tokens["model"] += 1
        token = self._tokens["model"]
        name = f"model {Path(path).name}" if path else "the default model"
        self.model_picker.set_state(f"loading {name}…")
        self.statusBar().showMessage(f"loading {name}…")
        if self.loaded is None:
            self.view.set_placeholder("loading model…")
        self.tasks.run("model-loader", lambda: load_predictor(path),
                       lambda loaded: self._model_loaded(loaded, token, remember),
                       lambda exc: self._model_failed(path, exc, token))

    def _model_loaded(self, loaded: LoadedModel, token: int, remember: bool = False) -> None:
        if remember and loaded.path:
            self._remember_model(loaded)
        if token == self._tokens["model"]:  # else a later request supersedes this one
            self.use_model(loaded)

    def _remember_model(self, loaded: LoadedModel) -> None:
        try:
            register_model(loaded.path, "imported", classes=loaded.predictor.class_names,
                           registry=self.model_picker.registry)
        except (RegistryError, OutputError) as exc:
            self.statusBar().showMessage(f"not added to the model list: {exc}", 8000)
        self.model_picker.refresh()

    def use_model(self, loaded: LoadedModel) -> None:
        """Run this loaded model from the next frame on."""
        self.loaded = loaded
        predictor = loaded.predictor
        if self.bridge.pipeline is not None:
            self.bridge.pipeline.set_predictor(predictor)
        self.class_filter.set_classes(predictor.class_names, self.settings.hidden_classes)
        self.model_picker.set_current(loaded.path, None if loaded.path else predictor.source)
        self.model_picker.set_state(f"{len(predictor.class_names)} classes; {predictor.device}")
        self.device_label.setText(self._device_text(predictor.device))
        self.settings.model = loaded.path if loaded.path and Path(loaded.path) != DEFAULT_MODEL else None
        self.view.set_placeholder("Open a video, images, a camera or a stream (or drop a file here)")
        self.statusBar().showMessage(f"model ready: {predictor.source}", 5000)
        if loaded.warning:
            self.messages.show_message(loaded.warning, "warning")
        self._refresh_if_paused()
        self._start_upgrade(loaded)
        self.modelReady.emit(predictor.source)

    def _device_text(self, device: str) -> str:
        engine = getattr(self.loaded.predictor, "engine", "") if self.loaded else ""
        note = ", LiteRT being prepared" if self._upgrade is not None else ""
        tiles = f", {self.settings.tiles} tiles" if self.settings.tiles in TILE_CHOICES and \
            self.settings.tiles != "off" else ""
        return f"device: {device}" + (f" ({engine} engine{note}{tiles})" if engine else "")

    def _start_upgrade(self, loaded: LoadedModel) -> None:
        """First launch of a model: it detects on the compiled Keras graph while LiteRT is
        converted in a child process; then the predictor switches engines between frames."""
        if self._upgrade is not None and self._upgrade is not loaded.upgrade:
            self._upgrade.cancel()  # a model replaced mid-conversion: its conversion is moot
        self._upgrade = loaded.upgrade
        if loaded.upgrade is None:
            return
        upgrade = loaded.upgrade
        self.engine_note = "compiled Keras graph; preparing the faster LiteRT engine (first launch of this model)"
        self.statusBar().showMessage(f"detecting now with the {self.engine_note}…", 10000)
        self.tasks.run("litert-conversion", upgrade.run, lambda name: self._upgraded(upgrade, name),
                       lambda exc: self._upgrade_failed(upgrade, exc))

    def _upgraded(self, upgrade, name: str) -> None:
        if upgrade is self._upgrade:
            self._upgrade = None
            self.engine_note = ""
        self.statusBar().showMessage(f"switched to the {name} engine: the same detections, faster", 8000)

    def _upgrade_failed(self, upgrade, exc: Exception) -> None:
        if upgrade is not self._upgrade or upgrade.conversion.cancelled:
            return
        self._upgrade = None
        self.engine_note = ""
        self.report(f"The LiteRT engine could not be prepared ({exc}); detection goes on with the compiled "
                    "Keras graph", "warning")

    def _model_failed(self, path: str | None, exc: Exception, token: int) -> None:
        reason = str(exc) if isinstance(exc, ModelFileError) else f"{path}: {type(exc).__name__}: {exc}"
        running = f"; {self.loaded.predictor.source} keeps running" if self.loaded else ""
        self.report(f"Could not load the model {reason}{running}", "error")
        if token == self._tokens["model"]:
            if self.loaded is not None:
                self.model_picker.set_current(self.loaded.path, None if self.loaded.path else self.loaded.predictor.source)
            self.model_picker.set_state("")
        if self.loaded is None and path is not None and token == self._tokens["model"]:
            self.load_model(None)  # nothing runs yet: fall back to the default model

    def choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a model file", str(Path.home()), "Keras models (*.keras)")
        if path:
            self.load_model(path, remember=True)

    def refresh_models(self) -> None:
        self.model_picker.refresh()

    # -- sources --------------------------------------------------------------------------------

    def open_source_text(self, text: str) -> None:
        """Open a file, folder, camera index or URL off the GUI thread, then run it."""
        text = str(text).strip()
        if not text:
            return
        self._tokens["source"] += 1
        token = self._tokens["source"]
        self.statusBar().showMessage(f"opening {text}…")
        self.tasks.run("source-opener", lambda: open_source(text),
                       lambda source: self._source_opened(text, source, token),
                       lambda exc: self._source_failed(text, exc))

    def _source_opened(self, text: str, source, token: int) -> None:
        if token != self._tokens["source"]:
            source.close()  # a later request supersedes this one
            return
        self._retire_pipeline()
        predictor = self.loaded.predictor if self.loaded else None
        pipeline = self.bridge.start(source, predictor, realtime=self.settings.realtime)
        pipeline.set_thresholds(*self.thresholds.values())
        pipeline.set_hidden_classes(self.settings.hidden_classes)
        pipeline.set_tiles(self.settings.tiles)
        self.outputs.attach(pipeline)
        self.meter = DisplayMeter()
        self._at_end = False
        self.playback.set_source(source.seekable, source.frame_count, source.fps)
        # Photos open paused on the first one (step with "." or play through them); videos play.
        playing = source.kind != "images"
        if not playing:
            pipeline.pause()
            pipeline.step()
        self.playback.set_playing(playing)
        self.settings.last_source = text
        self.setWindowTitle(f"{Path(source.name).name or source.name} — Detector")
        if self.messages.level == "error":
            self.messages.dismiss()  # an earlier source's failure is old news
        pipeline.start()
        self.statusBar().showMessage(f"playing {source.name}", 3000)

    def _source_failed(self, text: str, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, SourceError) else f"{text}: {type(exc).__name__}: {exc}"
        still = " The current source keeps running." if self.bridge.pipeline is not None else ""
        self.report(f"Could not open {reason}.{still}", "error")

    def _retire_pipeline(self) -> None:
        self.outputs.detach()
        pipeline = self.bridge.retire()
        if pipeline is not None:
            # Joining may wait for a blocked stream read: do it off the GUI thread.
            self.tasks.run("pipeline-stop", lambda: pipeline.stop(10), lambda _: None, lambda _: None)

    def close_source(self) -> None:
        self._retire_pipeline()
        self.last_result = None
        self.playback.set_source(False, 0, None)
        self.view.clear("Open a video, images, a camera or a stream (or drop a file here)")
        self.setWindowTitle("Detector")

    def choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", self._start_dir(), VIDEO_FILTER)
        if path:
            self.open_source_text(path)

    def choose_images(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", self._start_dir(), IMAGE_FILTER)
        if path:
            self.open_source_text(path)

    def choose_image_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of images", self._start_dir())
        if path:
            self.open_source_text(path)

    def choose_stream(self) -> None:
        last = self.settings.last_source if is_stream_url(self.settings.last_source or "") else "rtsp://"
        url, ok = QInputDialog.getText(self, "Open a stream", "Stream URL (rtsp://, http://, https://):", text=last)
        if ok and url.strip():
            if not is_stream_url(url.strip()):
                self.report(f"{url}: not a stream URL (it should start with rtsp:// or http://)", "error")
                return
            self.open_source_text(url)

    def _start_dir(self) -> str:
        last = self.settings.last_source
        if last and Path(last).exists():
            return str(Path(last).parent if Path(last).is_file() else last)
        return str(Path.home())

    def find_cameras(self) -> None:
        """Probe camera indices off the GUI thread; the drop-down lists those that open."""
        if self.tasks.busy("camera-probe"):
            return
        self.cameras.set_probing()
        self.tasks.run("camera-probe", probe_cameras, self.cameras.set_cameras,
                       lambda exc: self.cameras.set_cameras([]))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.open_source_text(urls[0])

    # -- frames and events ------------------------------------------------------------------------

    def _frame_ready(self) -> None:
        result = self.bridge.take_latest()
        if result is None:
            return
        self.last_result = result
        self.view.set_frame(result.image, result)
        self.playback.set_position(result.frame.index)

    def _frame_painted(self, result: FrameResult, paint_ms: float) -> None:
        if result is not None:
            self.meter.painted(result.frame.captured_at, paint_ms)

    def _on_event(self, event: CaptureEvent) -> None:
        self.statusBar().showMessage(event.message, 8000)
        level = EVENT_LEVELS.get(event.kind, "warning")
        if level is not None:
            self.messages.show_message(event.message, level)
        if event.kind in (EventKind.RECONNECTED, EventKind.MODEL):
            self._clear_transient_messages()
        self._at_end = self._at_end or event.kind == EventKind.END
        if event.kind == EventKind.END:
            self.playback.set_playing(False)

    def _clear_transient_messages(self) -> None:
        if self.messages.level in ("info", "warning") and "reconnect" in self.messages.text():
            self.messages.dismiss()

    def refresh_status(self) -> None:
        pipeline = self.bridge.pipeline
        if pipeline is None:
            self.stats_label.setText("")
            return
        stats = pipeline.stats()
        self.meter.superseded = self.bridge.superseded
        figures = self.meter.figures()
        self.stats_label.setText(status_text(stats, figures))
        self.stats_label.setToolTip(status_tooltip(stats, figures))
        self.device_label.setText(self._device_text(stats.device))
        if stats.state == CaptureState.RECONNECTING:
            self.statusBar().showMessage(f"{pipeline.source.name}: reconnecting…", STATUS_MS * 2)

    # -- playback -----------------------------------------------------------------------------------

    def _file_pipeline(self) -> HeadlessPipeline | None:
        pipeline = self.bridge.pipeline
        return pipeline if pipeline is not None and pipeline.source.seekable else None

    def toggle_play(self) -> None:
        self.set_playing(not self.playback.playing)

    def set_playing(self, playing: bool) -> None:
        pipeline = self._file_pipeline()
        if pipeline is None:
            return
        if playing:
            if self._at_end:
                self.seek_to(0)
            pipeline.resume()
        else:
            pipeline.pause()
        self.playback.set_playing(playing)

    def step_frame(self) -> None:
        pipeline = self._file_pipeline()
        if pipeline is None:
            return
        if self.playback.playing:
            self.set_playing(False)
        pipeline.step()

    def seek_to(self, index: int) -> None:
        pipeline = self._file_pipeline()
        if pipeline is None:
            return
        self._at_end = False
        pipeline.seek(index)
        if not self.playback.playing:
            pipeline.step()  # show the frame sought to

    def _seek_by(self, seconds: float) -> None:
        pipeline = self._file_pipeline()
        if pipeline is None or self.last_result is None:
            return
        step = int(round(seconds * (pipeline.source.fps or 1)))
        self.seek_to(max(0, self.last_result.frame.index + step))

    def seek_back(self) -> None:
        self._seek_by(-SEEK_STEP_S)

    def seek_forward(self) -> None:
        self._seek_by(SEEK_STEP_S)

    def set_realtime(self, realtime: bool) -> None:
        self.settings.realtime = bool(realtime)
        self.playback.realtime.setChecked(realtime)
        if self.bridge.pipeline is not None:
            self.bridge.pipeline.set_realtime(realtime)

    def _refresh_if_paused(self, selection_only: bool = False) -> None:
        """A paused file shows the change on its current frame at once. ``selection_only``:
        only thresholds or the class filter changed, so the frame's cached network outputs are
        selected again (no seek, no inference) when the pipeline has them."""
        pipeline = self._file_pipeline()
        if pipeline is None or self.playback.playing or self.last_result is None:
            return
        if selection_only and pipeline.reselect():
            return
        pipeline.seek(self.last_result.frame.index)
        pipeline.step()

    # -- detection settings ----------------------------------------------------------------------------

    def _thresholds_changed(self, conf: float, iou: float) -> None:
        self.settings.conf, self.settings.iou = conf, iou
        if self.bridge.pipeline is not None:
            self.bridge.pipeline.set_thresholds(conf, iou)
        self._refresh_if_paused(selection_only=True)

    def _tiles_changed(self, tiles: str) -> None:
        self.settings.tiles = tiles
        if self.bridge.pipeline is not None:
            self.bridge.pipeline.set_tiles(tiles)
        if self.loaded is not None:
            self.device_label.setText(self._device_text(self.loaded.predictor.device))
        self.statusBar().showMessage(f"small objects: {TILE_CHOICES.get(tiles, tiles)}", 6000)
        self._refresh_if_paused()  # other views of the frame: the network runs again

    def _hidden_changed(self, hidden: list[str]) -> None:
        model_classes = set(self.loaded.predictor.class_names) if self.loaded else set()
        # Classes of other models stay hidden for when those models come back.
        self.settings.hidden_classes = sorted(set(hidden) | (set(self.settings.hidden_classes) - model_classes))
        if self.bridge.pipeline is not None:
            self.bridge.pipeline.set_hidden_classes(self.settings.hidden_classes)
        self._refresh_if_paused(selection_only=True)

    def conf_down(self) -> None:
        self.thresholds.nudge_conf(-5)

    def conf_up(self) -> None:
        self.thresholds.nudge_conf(5)

    # -- outputs ---------------------------------------------------------------------------------------

    def snapshot(self) -> None:
        self.outputs.snapshot(self.last_result)

    def set_recording(self, on: bool) -> None:
        if on and not self.outputs.recording:
            self.outputs.start_recording()
        elif not on and self.outputs.recording:
            self.outputs.stop_recording()

    def _recording_changed(self, on: bool) -> None:
        action = self.actions_by_name["record"]
        action.blockSignals(True)
        action.setChecked(on)
        action.blockSignals(False)
        action.setText("Stop &recording" if on else "&Record")

    def export_detections(self) -> None:
        default = str(self.outputs.output_dir / "detections.jsonl")
        path, _ = QFileDialog.getSaveFileName(self, "Export the detections of this run", default,
                                              "JSON Lines (*.jsonl);;CSV (*.csv)")
        if path:
            self.outputs.export(path)

    def choose_output_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Where snapshots and recordings go", str(self.outputs.output_dir))
        if path:
            self.outputs.output_dir = Path(path)
            self.settings.output_dir = path

    # -- view --------------------------------------------------------------------------------------------

    def set_training_visible(self, visible: bool) -> None:
        self.training_dock.setVisible(visible)
        if visible:
            self.training_dock.raise_()

    def set_fullscreen(self, on: bool) -> None:
        self.showFullScreen() if on else self.showNormal()

    def show_shortcuts(self) -> None:
        box = QMessageBox(QMessageBox.Information, "Keyboard shortcuts", shortcut_table(ACTIONS), parent=self)
        box.setModal(False)
        box.show()

    # -- shutdown ------------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.training.confirm_close(self):
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop everything cooperatively and wait for every thread; save the settings."""
        if self._closed:
            return
        self._closed = True
        self._status_timer.stop()
        self.outputs.detach()
        if self._upgrade is not None:  # the converter child ends with the app, its files too
            self._upgrade.cancel()
        self.bridge.shutdown()
        self.training.shutdown()
        self.tasks.close()
        self.save_settings()

    def save_settings(self) -> None:
        self.settings.window_geometry = base64.b64encode(bytes(self.saveGeometry())).decode("ascii")
        self.settings.window_state = base64.b64encode(bytes(self.saveState())).decode("ascii")
        self.settings.output_dir = str(self.outputs.output_dir)
        self.settings.conf, self.settings.iou = self.thresholds.values()
        self.training.store_settings(self.settings)
        try:
            save_settings(self.settings, self.settings_file)
        except OutputError as exc:
            self.statusBar().showMessage(str(exc), 8000)


# The window's actions: name, text, shortcut, menu, the method it calls (see actions.py).
ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_video", "Open &video…", "Ctrl+O", "&File", MainWindow.choose_video, toolbar=True),
    ActionSpec("open_images", "Open &images…", "Ctrl+I", "&File", MainWindow.choose_images),
    ActionSpec("open_folder", "Open image &folder…", "Ctrl+Shift+I", "&File", MainWindow.choose_image_folder),
    ActionSpec("open_stream", "Open &stream…", "Ctrl+U", "&File", MainWindow.choose_stream, toolbar=True,
               tip="rtsp://, http://, https:// URL"),
    ActionSpec("close_source", "&Close source", "Ctrl+W", "&File", MainWindow.close_source),
    ActionSpec("snapshot", "Snapshot", "Ctrl+S", "&File", MainWindow.snapshot, toolbar=True,
               tip="PNG of the annotated frame, plus the clean frame and a VOC XML of its detections"),
    ActionSpec("record", "&Record", "Ctrl+R", "&File", MainWindow.set_recording, checkable=True, toolbar=True,
               tip="Record the annotated stream to MP4"),
    ActionSpec("export", "&Export detections…", "Ctrl+E", "&File", MainWindow.export_detections,
               tip="Detections of this run as JSON Lines (as `main.py detect --json`) or CSV"),
    ActionSpec("output_dir", "Output &folder…", None, "&File", MainWindow.choose_output_dir,
               tip="Where snapshots and recordings go"),
    ActionSpec("quit", "&Quit", "Ctrl+Q", "&File", MainWindow.close),
    ActionSpec("play_pause", "&Play / pause", "Space", "&Playback", MainWindow.toggle_play, toolbar=True),
    ActionSpec("step", "&Step one frame", ".", "&Playback", MainWindow.step_frame, toolbar=True),
    ActionSpec("back", "Back 5 s", "Left", "&Playback", MainWindow.seek_back),
    ActionSpec("forward", "Forward 5 s", "Right", "&Playback", MainWindow.seek_forward),
    ActionSpec("realtime", "&Real time", "Ctrl+T", "&Playback", MainWindow.set_realtime, checkable=True,
               tip="Play files at their own FPS (off: as fast as possible, no frame lost)"),
    ActionSpec("conf_down", "Confidence −0.05", "[", "&Detection", MainWindow.conf_down),
    ActionSpec("conf_up", "Confidence +0.05", "]", "&Detection", MainWindow.conf_up),
    ActionSpec("open_model", "Load &model file…", "Ctrl+M", "&Detection", MainWindow.choose_model_file),
    ActionSpec("refresh_models", "Refresh model list", None, "&Detection", MainWindow.refresh_models),
    ActionSpec("training", "&Fine-tune…", "Ctrl+Shift+F", "&Training", MainWindow.set_training_visible,
               checkable=True, toolbar=True, tip="Fine-tune a model on a labelled folder"),
    ActionSpec("fullscreen", "&Full screen", "F11", "&View", MainWindow.set_fullscreen, checkable=True),
    ActionSpec("shortcuts", "&Keyboard shortcuts", "F1", "&Help", MainWindow.show_shortcuts),
)

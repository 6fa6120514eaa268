"""Fine-tuning from the GUI: pick labelled folders, check them, choose the base model and
epochs, train in a separate process with live progress, cancel, resume, and use the result.

Training runs ``python main.py train`` (flags: ``--data DIR ... --out RUN_DIR [--from MODEL]
--epochs N [--batch N]``) and the data check ``python main.py check-data DIR ... --json FILE``
as QProcesses, so the window and the live view stay responsive. Progress comes from
``RUN_DIR/progress.jsonl`` (polled), the result from ``RUN_DIR/summary.yaml`` and the model
from ``RUN_DIR/best.keras`` (else ``last.keras``), which is added to the model registry.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
import time
from pathlib import Path

from PyQt5.QtCore import QTimer, pyqtSignal
from PyQt5.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..model_registry import RegistryError, list_models, register_model
from ..settings import Settings
from ..writers import OutputError
from .outputs import default_output_dir
from .training_commands import check_data_command, data_summary, resume_command, train_command
from .training_plots import TrainingPlots
from .training_process import CommandProcess
from .training_progress import (
    PROGRESS_FILE,
    SUMMARY_FILE,
    ProgressReader,
    TrainingState,
    TrainingStatus,
    ap_rows,
    can_resume,
    evaluation_rows,
    read_yaml,
    run_model,
)

POLL_MS = 500
NEW_MODEL = "(new model from the ImageNet backbone)"


class DataBox(QGroupBox):
    """The labelled folders and their check-data summary."""

    def __init__(self, folders: list[str]):
        super().__init__("Labelled data")
        self.folders = QListWidget(toolTip="VOC2007 folders or labelImg folders")
        self.folders.addItems(folders)
        self.folders.setMaximumHeight(90)
        self.add_button = QPushButton("Add folder…")
        self.remove_button = QPushButton("Remove")
        self.check_button = QPushButton("Check data")
        self.summary = QLabel("Add a labelled folder, then check it.")
        self.summary.setWordWrap(True)
        buttons = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.check_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.folders)
        layout.addLayout(buttons)
        layout.addWidget(self.summary)
        self.remove_button.clicked.connect(lambda: [self.folders.takeItem(self.folders.row(i))
                                                    for i in self.folders.selectedItems()])

    def paths(self) -> list[str]:
        return [self.folders.item(i).text() for i in range(self.folders.count())]

    def add(self, path: str) -> None:
        if path and path not in self.paths():
            self.folders.addItem(path)


class RunBox(QGroupBox):
    """Base model, epochs, batch size, run folder, start / cancel / resume, progress."""

    def __init__(self, epochs: int):
        super().__init__("Training run")
        self.base_model = QComboBox(toolTip="Fine-tune from this model (its weights and box layout)")
        self.epochs = QSpinBox(minimum=1, maximum=10000, value=epochs)
        self.batch = QSpinBox(minimum=1, maximum=512, value=16, toolTip="Images per step")
        self.options = QLineEdit(placeholderText="e.g. --lr 0.001 --freeze-backbone-epochs 2",
                                 toolTip="More `main.py train` options (see `python main.py train --help`)")
        self.run_dir = QLineEdit(placeholderText="a new folder for this run")
        self.browse = QPushButton("…")
        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.resume_button = QPushButton("Resume…", toolTip="Continue an interrupted run from its checkpoint")
        self.progress = QProgressBar(maximum=1000, textVisible=True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_dir, 1)
        run_row.addWidget(self.browse)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.cancel_button, self.resume_button):
            buttons.addWidget(b)
        form = QFormLayout(self)
        form.addRow("Base model", self.base_model)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch", self.batch)
        form.addRow("More options", self.options)
        form.addRow("Run folder", run_row)
        form.addRow(buttons)
        form.addRow(self.progress)
        form.addRow(self.status)

    def set_running(self, running: bool) -> None:
        for widget in (self.start_button, self.resume_button, self.base_model, self.epochs, self.batch,
                       self.options, self.run_dir, self.browse):
            widget.setEnabled(not running)
        self.cancel_button.setEnabled(running)


class ResultBox(QGroupBox):
    """The finished run's evaluation table and the button to use its model."""

    def __init__(self):
        super().__init__("Result")
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["", "value"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.use_button = QPushButton("Use this model live", enabled=False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.use_button)

    def show_rows(self, rows: list[tuple[str, str]]) -> None:
        self.table.setRowCount(len(rows))
        for r, (name, value) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(name))
            self.table.setItem(r, 1, QTableWidgetItem(value))
        self.table.resizeColumnToContents(0)


class TrainingPanel(QScrollArea):
    useModel = pyqtSignal(str)  # a trained model file to run live
    modelRegistered = pyqtSignal()

    def __init__(self, registry: str | None, settings: Settings):
        super().__init__()
        self.registry = registry
        self.output_dir = Path(settings.output_dir) if settings.output_dir else default_output_dir()
        self.data = DataBox(settings.train_data)
        self.run = RunBox(settings.train_epochs)
        self.plots = TrainingPlots()
        self.result = ResultBox()
        self.log = QPlainTextEdit(readOnly=True, maximumBlockCount=500)
        self.log.setMaximumHeight(120)
        self._layout()
        self.trainer = CommandProcess(self)
        self.checker = CommandProcess(self)
        self.state = TrainingState()
        self.run_path: Path | None = None
        self.model_path: Path | None = None
        self._reader: ProgressReader | None = None
        self._report_file: str | None = None
        self._poll = QTimer(self, interval=POLL_MS, timeout=self._poll_progress)
        self._wire()
        self.refresh_models(settings.train_base_model)

    def _layout(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        for widget in (self.data, self.run, self.plots, self.result, self.log):
            layout.addWidget(widget)
        self.setWidget(body)
        self.setWidgetResizable(True)
        self.setMinimumWidth(360)

    def _wire(self) -> None:
        self.data.add_button.clicked.connect(self.choose_folder)
        self.data.check_button.clicked.connect(self.check_data)
        self.run.browse.clicked.connect(self._choose_run_dir)
        self.run.start_button.clicked.connect(self.start_training)
        self.run.cancel_button.clicked.connect(self.cancel_training)
        self.run.resume_button.clicked.connect(self.choose_resume)
        self.result.use_button.clicked.connect(self._use_model)
        self.trainer.line.connect(self.log.appendPlainText)
        self.trainer.finished.connect(self._training_finished)
        self.checker.finished.connect(self._check_finished)

    # -- data ---------------------------------------------------------------------------------

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "A labelled folder (VOC or labelImg)", str(Path.home()))
        if path:
            self.data.add(path)

    def check_data(self) -> bool:
        """Run ``check-data`` on the folders; the summary appears when it ends."""
        folders = self.data.paths()
        if not folders or self.checker.running:
            self.data.summary.setText("Add a labelled folder first." if not folders else "Checking…")
            return False
        handle, self._report_file = tempfile.mkstemp(prefix="check-data-", suffix=".json")
        os.close(handle)  # check-data replaces the file with its report
        base = self.base_model_path()
        self.data.summary.setText("Checking the data…")
        self.data.check_button.setEnabled(False)
        self.checker.start(check_data_command(folders, self._report_file, base))
        return True

    def _check_finished(self, code: int, crashed: bool) -> None:
        self.data.check_button.setEnabled(True)
        report_path = Path(self._report_file) if self._report_file else None
        try:
            report = json.loads(report_path.read_text(encoding="utf-8")) if report_path and report_path.exists() else None
        except (OSError, json.JSONDecodeError):
            report = None
        if report_path is not None:
            report_path.unlink(missing_ok=True)
        if report is None:
            error = next((l for l in reversed(self.checker.lines) if l.startswith("error")), None)
            self.data.summary.setText(error or f"check-data failed (exit {code}): " + " ".join(self.checker.lines[-3:]))
            return
        self.data.summary.setText("\n".join(data_summary(report)))

    # -- models -------------------------------------------------------------------------------

    def refresh_models(self, current: str | None = None) -> None:
        current = current or self.base_model_path()
        self.run.base_model.clear()
        for entry in list_models(self.registry):
            if not entry.missing:
                self.run.base_model.addItem(entry.label(), entry.path)
        self.run.base_model.addItem(NEW_MODEL, None)
        index = self.run.base_model.findData(current) if current else -1
        self.run.base_model.setCurrentIndex(max(0, index))

    def base_model_path(self) -> str | None:
        return self.run.base_model.currentData()

    # -- training -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.trainer.running

    def _choose_run_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for the training run", str(self.output_dir))
        if path:
            self.run.run_dir.setText(path)

    def _new_run_dir(self) -> Path:
        text = self.run.run_dir.text().strip()
        if text:
            return Path(text)
        return self.output_dir / "runs" / time.strftime("run-%Y%m%d-%H%M%S")

    def start_training(self) -> bool:
        folders = self.data.paths()
        if not folders:
            self.run.status.setText("Add a labelled folder first.")
            return False
        run_dir = self._new_run_dir()
        if run_dir.exists() and any(run_dir.iterdir()) and not can_resume(run_dir):
            self.run.status.setText(f"{run_dir} is not empty: choose a new run folder.")
            return False
        try:
            extra = shlex.split(self.run.options.text())
        except ValueError as exc:
            self.run.status.setText(f"More options: {exc}")
            return False
        command = train_command(folders, str(run_dir), self.base_model_path(), self.run.epochs.value(),
                                self.run.batch.value(), extra)
        return self._launch(run_dir, command)

    def choose_resume(self) -> None:
        start = self.run_path or self.output_dir / "runs"
        path = QFileDialog.getExistingDirectory(self, "The run folder to resume", str(start))
        if path:
            self.resume_training(path)

    def resume_training(self, run_dir: str | Path) -> bool:
        command = resume_command(str(run_dir))
        if command is None:
            self.run.status.setText(f"{run_dir}: no checkpoint to resume from (was the run started here?)")
            return False
        return self._launch(Path(run_dir), command)

    def _launch(self, run_dir: Path, command: list[str]) -> bool:
        if self.trainer.running:
            return False
        self.run_path, self.model_path = run_dir, None
        self.run.run_dir.setText(str(run_dir))
        self.state = TrainingState(status=TrainingStatus.STARTING)
        self._reader = ProgressReader(run_dir / PROGRESS_FILE)
        self._skip_old_progress()
        self.result.use_button.setEnabled(False)
        self.result.show_rows([])
        self.log.clear()
        self.log.appendPlainText(" ".join(command))
        self.run.set_running(True)
        self.run.progress.setValue(0)
        self.run.status.setText("starting the training process…")
        self.trainer.start(command)
        self._poll.start()
        return True

    def _skip_old_progress(self) -> None:
        """A resumed run's file holds the earlier session too: fold it in, so the plots show
        the whole run, but its final event does not count as this session's end."""
        for record in self._reader.read():
            self.state.apply(record)
        self.state.status = TrainingStatus.STARTING

    def cancel_training(self) -> None:
        if self.trainer.running:
            self.run.status.setText("stopping (the trainer saves a checkpoint; Resume continues)…")
            self.trainer.interrupt()

    def _poll_progress(self) -> None:
        if self._reader is None:
            return
        for record in self._reader.read():
            self.state.apply(record)
        self._show_state()

    def _show_state(self) -> None:
        state = self.state
        self.run.progress.setValue(int(state.fraction * 1000))
        epochs = f"epoch {state.epoch}/{state.epochs}" if state.epochs else ""
        steps = f", step {state.step}/{state.steps}" if state.steps else ""
        loss = f", loss {state.loss:.3f}" if isinstance(state.loss, (int, float)) else ""
        self.run.progress.setFormat(f"{epochs}{steps}" or "%p%")
        if state.status in (TrainingStatus.RUNNING, TrainingStatus.STARTING):
            self.run.status.setText(f"{state.message or 'running'}{loss}")
        self.plots.show_state(state)

    def _training_finished(self, code: int, crashed: bool) -> None:
        self._poll.stop()
        self._poll_progress()
        self.run.set_running(False)
        self.run.run_dir.clear()  # Start makes a new run next time; Resume continues this one
        status = self.state.status if self.state.status.ended else None
        if status is None:
            status = (TrainingStatus.DONE if code == 0 and not crashed
                      else TrainingStatus.STOPPED if code == 130 else TrainingStatus.ERROR)
        handlers = {TrainingStatus.DONE: self._finished_done, TrainingStatus.STOPPED: self._finished_stopped,
                    TrainingStatus.ERROR: self._finished_error}
        handlers[status](code)

    def _finished_done(self, code: int) -> None:
        self.run.progress.setValue(1000)
        summary = read_yaml(self.run_path / SUMMARY_FILE)
        best_epoch = summary.get("best_epoch") if isinstance(summary.get("best_epoch"), int) else None
        self.result.show_rows(ap_rows(self.state, best_epoch) + evaluation_rows(summary))
        self.model_path = run_model(self.run_path)
        if self.model_path is None:
            self.run.status.setText(f"finished, but no model file was found in {self.run_path}")
            return
        try:
            register_model(self.model_path, "trained", registry=self.registry)
        except (RegistryError, OutputError) as exc:
            self.log.appendPlainText(f"not added to the model list: {exc}")
        self.modelRegistered.emit()
        self.refresh_models()
        self.result.use_button.setEnabled(True)
        self.run.status.setText(f"finished: {self.model_path}")

    def _finished_stopped(self, code: int) -> None:
        resumable = self.run_path is not None and can_resume(self.run_path)
        self.run.status.setText("stopped" + ("; Resume continues from the last checkpoint" if resumable else ""))

    def _finished_error(self, code: int) -> None:
        error = next((l for l in reversed(self.trainer.lines) if l.startswith("error")), None)
        detail = error or self.state.message or " ".join(self.trainer.lines[-2:])
        self.run.status.setText(f"training failed (exit {code}): {detail}")

    def _use_model(self) -> None:
        if self.model_path is not None:
            self.useModel.emit(str(self.model_path))

    # -- window life --------------------------------------------------------------------------

    def confirm_close(self, parent: QWidget) -> bool:
        """Before the window closes: a running training is stopped (it can be resumed)."""
        if not self.trainer.running:
            return True
        answer = QMessageBox.question(parent, "Training is running",
                                      "Stop the training and quit? It saves a checkpoint; Resume continues it later.")
        return answer == QMessageBox.Yes

    def shutdown(self, timeout_ms: int = 60000) -> None:
        """Stop the child processes cooperatively and wait for them."""
        self._poll.stop()
        for process in (self.trainer, self.checker):
            if process.running:
                process.interrupt(grace_ms=timeout_ms // 2)
                if not process.wait(timeout_ms // 2):
                    process.process.kill()
                    process.wait(5000)

    def store_settings(self, settings: Settings) -> None:
        settings.train_data = self.data.paths()
        settings.train_epochs = self.run.epochs.value()
        settings.train_base_model = self.base_model_path()

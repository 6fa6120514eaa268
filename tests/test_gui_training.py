"""Fine-tuning from the GUI: check-data summary, a real (tiny) training run in a separate
process with live progress, its result table and model, cancel and resume."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from detector_app.gui.training_panel import NEW_MODEL, TrainingPanel  # noqa: E402
from detector_app.model_registry import load_registry  # noqa: E402
from detector_app.model_store import DEFAULT_MODEL  # noqa: E402
from detector_app.settings import Settings  # noqa: E402
from tests.trainer_helpers import make_voc_folder, write_spec_yaml  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def panel(qtbot, tmp_path):
    widget = TrainingPanel(str(tmp_path / "models.yaml"), Settings(output_dir=str(tmp_path / "out")))
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    widget.shutdown(timeout_ms=20000)
    assert not widget.trainer.running and not widget.checker.running


@pytest.fixture
def data(tmp_path) -> Path:
    return make_voc_folder(tmp_path / "voc", 8)


def tiny_run(panel: TrainingPanel, data: Path, tmp_path: Path, epochs: int) -> None:
    """Settings for a run that takes seconds on a CPU: the trainer tests' tiny network."""
    spec = write_spec_yaml(tmp_path / "spec.yaml", ["redbox", "bluedisc"])
    panel.data.add(str(data))
    base = panel.run.base_model
    # The bundled model (when the checkout has it) is offered first; these runs start from scratch.
    assert base.itemText(base.count() - 1) == NEW_MODEL
    if DEFAULT_MODEL.is_file():
        assert base.currentData() == str(DEFAULT_MODEL)
    base.setCurrentIndex(base.count() - 1)
    assert panel.base_model_path() is None
    panel.run.epochs.setValue(epochs)
    panel.run.batch.setValue(4)
    panel.run.options.setText(f"--spec {spec} --workers 1 --val-split 0.25")


def test_check_data_shows_the_summary(qtbot, panel, data, tmp_path):
    (data / "Annotations" / "img0003.xml").write_text("<annotation><object>")  # a broken file
    panel.data.add(str(data))
    assert panel.check_data()
    qtbot.waitUntil(lambda: "images" in panel.data.summary.text() and "Checking" not in panel.data.summary.text(),
                    timeout=120000)
    text = panel.data.summary.text()
    assert "7 images" in text and "redbox" in text and "bluedisc" in text
    assert "problems:" in text and "img0003.xml" in text


@pytest.mark.slow
def test_training_runs_shows_progress_and_offers_the_model(qtbot, panel, data, tmp_path):
    tiny_run(panel, data, tmp_path, epochs=3)
    assert panel.start_training()
    assert panel.running and not panel.run.start_button.isEnabled()
    qtbot.waitUntil(lambda: panel.result.use_button.isEnabled(), timeout=240000)
    assert panel.state.status == "done" and panel.run.progress.value() == 1000
    assert [h["epoch"] for h in panel.state.history] == [1, 2, 3]
    assert panel.plots.series("val_map")[0] == [1, 2, 3] and panel.plots.series("train_loss")[1]
    rows = {panel.result.table.item(r, 0).text(): panel.result.table.item(r, 1).text()
            for r in range(panel.result.table.rowCount())}
    assert any(name.startswith("AP redbox") for name in rows) and rows["status"] == "finished"
    assert panel.model_path.name == "best.keras" and panel.model_path.is_file()
    assert [e.kind for e in load_registry(panel.registry)] == ["trained"]
    with qtbot.waitSignal(panel.useModel) as signal:
        panel.result.use_button.click()
    assert signal.args == [str(panel.model_path)]


@pytest.mark.slow
def test_cancel_then_resume(qtbot, panel, data, tmp_path):
    tiny_run(panel, data, tmp_path, epochs=400)
    assert panel.start_training()
    qtbot.waitUntil(lambda: len(panel.state.history) >= 1, timeout=240000)
    panel.cancel_training()
    qtbot.waitUntil(lambda: not panel.running, timeout=60000)
    assert panel.state.status == "stopped" and "Resume" in panel.run.status.text()
    run_dir = panel.run_path
    done = len(panel.state.history)
    assert panel.resume_training(run_dir)
    qtbot.waitUntil(lambda: len(panel.state.history) > done, timeout=240000)
    assert panel.state.history[0]["epoch"] == 1, "the plots keep the epochs of the first session"
    panel.cancel_training()
    qtbot.waitUntil(lambda: not panel.running, timeout=60000)
    assert panel.state.status == "stopped"


def test_plots_show_the_series_and_a_deleted_panel_leaves_nothing_pending(qtbot, monkeypatch):
    """The curves hold each series of the run; closing the panel (deleting the widget) with an
    update just made must not reach the deleted widget (the matplotlib canvas did: 'wrapped
    C/C++ object ... has been deleted')."""
    import sys

    from PyQt5 import sip
    from PyQt5.QtWidgets import QApplication

    from detector_app.gui.training_plots import TrainingPlots
    from detector_app.gui.training_progress import TrainingState

    errors = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc: errors.append(exc))
    plots = TrainingPlots()
    plots.show()
    state = TrainingState(step_losses=[(0.1, 5.0), (0.2, 4.0)],
                          history=[{"epoch": 1, "train_loss": 4.0, "val_loss": 4.5, "val_map": 0.1},
                                   {"epoch": 2, "train_loss": 3.0, "val_map": 0.2}])
    plots.show_state(state)
    assert plots.series("step_loss") == ([0.1, 0.2], [5.0, 4.0])
    assert plots.series("val_map") == ([1.0, 2.0], [0.1, 0.2])
    assert plots.series("val_loss") == ([1.0], [4.5]), "an epoch without a figure is skipped"
    plots.show_state(TrainingState(step_losses=[(0.1, 5.0)]))  # an update, then the panel goes
    sip.delete(plots)
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(20)
    assert errors == []

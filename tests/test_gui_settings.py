"""The GUI's Qt-free parts: settings file, model registry, snapshots, run log, recorder,
training progress, status text."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
import yaml

from detector_app.frames import Frame
from detector_app.gui.display_stats import DisplayMeter, status_text
from detector_app.gui.recording import StreamRecorder
from detector_app.gui.run_log import RunLog
from detector_app.gui.snapshot import save_snapshot, voc_annotation
from detector_app.gui.training_commands import data_summary, resume_command, train_command
from detector_app.gui.training_progress import ProgressReader, TrainingState, evaluation_rows, run_model
from detector_app.model_registry import (
    RegistryError,
    bundled_entry,
    list_models,
    load_registry,
    register_model,
    unregister_model,
)
from detector_app.pipeline import FrameResult, PipelineStats
from detector_app.settings import Settings, config_dir, load_settings, save_settings
from models import Detections
from tests.media import count_frames

CLASSES = ("dog", "cat")


def detections(boxes, classes=(0,), size=(240, 320)) -> Detections:
    return Detections(np.array(boxes, np.float32), np.full(len(boxes), 0.9, np.float32),
                      np.array(classes, np.int32), CLASSES, size)


def result(index: int, time_s: float, dets: Detections | None, image=None) -> FrameResult:
    image = np.zeros((240, 320, 3), np.uint8) if image is None else image
    frame = Frame(index, image, time_s, 0.0)
    return FrameResult(index, frame, image, dets, {}, 0.0)


# -- settings ------------------------------------------------------------------------------------

def test_settings_round_trip_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTOR_APP_CONFIG_DIR", str(tmp_path / "cfg"))
    assert config_dir() == tmp_path / "cfg"
    settings, warnings = load_settings()
    assert settings == Settings() and warnings == []
    settings.conf, settings.hidden_classes, settings.last_source = 0.3, ["cat"], "video.mp4"
    path = save_settings(settings)
    assert path == tmp_path / "cfg" / "settings.yaml"
    again, warnings = load_settings()
    assert again == settings and warnings == []


def test_bad_settings_fall_back_to_defaults_with_a_warning(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"conf": 1.5, "iou": 0.3, "realtime": "yes", "unknown": 1}))
    settings, warnings = load_settings(path)
    assert settings.conf == Settings().conf and settings.iou == 0.3 and settings.realtime is True
    assert len(warnings) == 2 and all(str(path) in w for w in warnings)
    path.write_text("conf: [unclosed")
    settings, warnings = load_settings(path)
    assert settings == Settings() and "could not be read" in warnings[0]


# -- model registry --------------------------------------------------------------------------------

def test_registry_lists_bundled_imported_and_trained_models(tmp_path, tiny_seed_model):
    from models.model_file import save_model

    registry = tmp_path / "models.yaml"
    trained = save_model(tiny_seed_model, tmp_path / "run1" / "best.keras")
    imported = save_model(tiny_seed_model, tmp_path / "voc.keras")
    entry = register_model(trained, "trained", registry=registry)
    assert entry.name == "run1" and entry.classes == ("dog", "cat", "person") and entry.kind == "trained"
    register_model(imported, "imported", name="caffe VOC", classes=["aeroplane"], registry=registry)
    register_model(trained, "trained", registry=registry)  # again: updated, not duplicated
    models = list_models(registry)
    assert [m.kind for m in models] == ["bundled", "imported", "trained"]
    assert models[0] == bundled_entry() and models[1].name == "caffe VOC"
    imported.unlink()
    assert [m.missing for m in list_models(registry)][1:] == [True, False]
    assert "[missing]" in list_models(registry)[1].label()
    assert unregister_model(imported, registry) and len(load_registry(registry)) == 1


def test_registry_refuses_bad_kinds_and_non_models_and_survives_a_damaged_file(tmp_path):
    registry = tmp_path / "models.yaml"
    with pytest.raises(RegistryError, match="kind"):
        register_model(tmp_path / "x.keras", "bundled", registry=registry)
    (tmp_path / "notes.keras").write_text("not a model")
    with pytest.raises(RegistryError, match="notes.keras"):
        register_model(tmp_path / "notes.keras", "imported", registry=registry)
    registry.write_text("models: [{path: 3}, {kind: trained}, 'x', {path: /a/b.keras, kind: odd}]")
    entries = load_registry(registry)
    assert [(e.path, e.kind, e.name) for e in entries] == [("/a/b.keras", "imported", "b")]
    registry.write_text("{{{")
    assert load_registry(registry) == []


# -- snapshot, run log, recorder ---------------------------------------------------------------------

def test_snapshot_writes_png_jpeg_and_a_voc_xml(tmp_path):
    image = np.full((240, 320, 3), 80, np.uint8)
    dets = detections([[-5.0, 10.2, 100.6, 250.0], [30, 40, 60, 80]], classes=(0, 1))
    files = save_snapshot(result(7, 0.28, dets, image), tmp_path, stem="shot")
    assert files.annotated == tmp_path / "shot.png" and files.image == tmp_path / "labelled" / "shot.jpg"
    assert cv2.imread(str(files.image)).shape == (240, 320, 3)
    root = ET.parse(files.xml).getroot()
    assert root.findtext("filename") == "shot.jpg"
    assert root.findtext("size/width") == "320" and root.findtext("size/height") == "240"
    objects = root.findall("object")
    assert [o.findtext("name") for o in objects] == ["dog", "cat"]
    box = [int(objects[0].findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")]
    assert box == [1, 11, 102, 240], "1-based pixel corners, clipped to the image"


def test_voc_annotation_without_detections():
    root = ET.fromstring(voc_annotation(None, "a.jpg", "labelled", (10, 20)))
    assert root.findall("object") == [] and root.findtext("size/depth") == "3"


def test_run_log_keeps_one_record_per_frame_and_exports_like_detect(tmp_path):
    log = RunLog(keyed_by_index=True)
    log(result(1, 0.04, detections([[1, 2, 3, 4]])))
    log(result(0, 0.0, detections([[5, 6, 7, 8]])))
    log(result(1, 0.04, detections([[9, 9, 10, 10]])))  # seeked back: the newer result wins
    log(result(2, 0.08, None))  # no model yet: nothing to export
    assert len(log) == 2
    assert log.export_jsonl(tmp_path / "d.jsonl") == 2
    records = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1]
    assert records[1] == {"frame": 1, "time_s": 0.04, "detections": [{"class": "dog", "score": 0.9, "box": [9.0, 9.0, 10.0, 10.0]}]}
    assert log.export_csv(tmp_path / "d.csv") == 2
    rows = (tmp_path / "d.csv").read_text().splitlines()
    assert rows[0] == "frame,time_s,file,class,score,x1,y1,x2,y2" and len(rows) == 3


def test_recorder_keeps_the_source_clock(tmp_path):
    recorder = StreamRecorder(tmp_path / "rec.avi", fps=10)
    for index, time_s in ((0, 0.0), (1, 0.1), (2, 0.5), (3, 0.6)):  # frames 0.2-0.4 s were dropped
        recorder(result(index, time_s, None))
    assert recorder.close() == tmp_path / "rec.avi"  # the writer thread drains its queue first
    assert recorder.frames == 7  # 0.0, 0.1, then 0.2-0.5 repeated, 0.6
    assert count_frames(tmp_path / "rec.avi") == 7
    recorder(result(4, 0.7, None))  # after close: ignored
    assert not [t for t in threading.enumerate() if t.name == "recording-writer"]
    empty = StreamRecorder(tmp_path / "none.avi", fps=None)
    assert empty.fps == 25.0 and empty.close() is None and not (tmp_path / "none.avi").exists()


# -- training progress ------------------------------------------------------------------------------

def test_progress_reader_reads_appended_complete_lines(tmp_path):
    path = tmp_path / "progress.jsonl"
    reader = ProgressReader(path)
    assert reader.read() == []
    path.write_text('{"event": "start", "epochs": 3}\n{"event": "step", "ep')
    assert reader.read() == [{"event": "start", "epochs": 3}]
    with open(path, "a") as f:
        f.write('och": 1, "step": 5, "steps": 10, "loss": 2.5}\nnot json\n')
    assert reader.read() == [{"event": "step", "epoch": 1, "step": 5, "steps": 10, "loss": 2.5}]
    assert reader.bad_lines == 1


def test_training_state_folds_events():
    state = TrainingState()
    for record in (
        {"event": "start", "epochs": 4},
        {"event": "step", "epoch": 1, "step": 5, "steps": 10, "loss": 3.0},
        {"event": "epoch", "epoch": 1, "train_loss": 2.8, "val_loss": 2.9, "val_map": 0.1},
        {"event": "epoch", "epoch": 2, "train_loss": 2.0, "val_loss": 2.2, "val_map": 0.3},
        {"event": "checkpoint", "path": "x"},
        {"event": "mystery"},
    ):
        state.apply(record)
    assert state.status == "running" and state.fraction == pytest.approx(0.5)
    assert state.series("val_map") == ([1, 2], [0.1, 0.3])
    assert state.step_losses == [(0.5, 3.0)]
    state.apply({"event": "epoch", "epoch": 2, "train_loss": 1.9, "val_map": 0.35})  # redone after resume
    assert state.series("val_map") == ([1, 2], [0.1, 0.35])
    state.apply({"event": "stopped", "message": "interrupted"})
    assert state.status == "stopped" and state.message == "interrupted"


def test_commands_and_summaries(tmp_path):
    command = train_command(["a", "b"], "run", "base.keras", 5, 8)
    assert command[2:] == ["train", "--data", "a", "--data", "b", "--out", "run", "--epochs", "5", "--no-progress",
                           "--from", "base.keras", "--batch", "8"]
    new = train_command(["a"], "run", None, 5, 8)
    assert new[2:] == ["train", "--data", "a", "--out", "run", "--epochs", "5", "--no-progress", "--imagenet",
                       "--batch", "8"]
    expert = train_command(["a"], "run", None, 5, None, ["--spec", "s.yaml"])
    assert "--imagenet" not in expert and expert[-2:] == ["--spec", "s.yaml"]
    assert resume_command(str(tmp_path)) is None
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"data": ["/d"], "epochs": 9, "from_model": None}))
    (tmp_path / "checkpoint.npz").write_bytes(b"x")
    assert resume_command(str(tmp_path))[2:] == ["train", "--out", str(tmp_path), "--resume", "--no-progress"]
    assert run_model(tmp_path) is None
    (tmp_path / "last.keras").write_bytes(b"x")
    assert run_model(tmp_path) == tmp_path / "last.keras"
    rows = evaluation_rows({"best_val_map": 0.41234, "epochs": 9, "ap_per_class": {"dog": 0.5}, "classes": ["dog"]})
    assert rows == [("best_val_map", "0.4123"), ("epochs", "9"), ("classes", "dog"), ("ap_per_class: dog", "0.5000")]
    report = {"totals": {"folders": 1, "images": 10, "objects": 12, "objects_per_class": {"dog": 12},
                         "images_without_objects": 1, "issues": {"bad_box": 2}},
              "issue_kinds": {"bad_box": "boxes outside the image"},
              "folders": [{"issues": [{"file": "a.xml", "message": "box outside"}]}]}
    lines = data_summary(report)
    assert lines[0].startswith("10 images, 12 objects") and "dog 12" in lines[1]
    assert "boxes outside the image 2" in lines[3] and "a.xml: box outside" in lines[4]
    assert not any("oversample" in line for line in lines)
    report["totals"]["oversample_hint"] = {"cat": 2.5, "cow": 3.0}
    assert data_summary(report)[-1] == ("few images show cat, cow: if the model stays weak on them, "
                                        "add --oversample cat=2.5,cow=3 to Options")


def test_status_text_names_every_figure():
    stats = PipelineStats("running", 10, 9, 1, 0, 0, 0, 25.0, 24.0, {"p50": 30.0, "p95": 40.0},
                          {"capture": 1.0, "preprocess": 2.0, "inference": 20.0, "postprocess": 1.0, "draw": 0.5},
                          "CPU", 1.0)
    meter = DisplayMeter()
    meter.painted(captured_at=0.0, paint_ms=2.0, now=0.05)
    text = status_text(stats, meter.figures())
    for part in ("capture 25.0", "inference 24.0", "display", "dropped 1", "latency 50/50 ms", "inf 20.0", "draw 0.5"):
        assert part in text


def test_recorder_encodes_off_the_calling_thread(tmp_path, monkeypatch):
    """The inference worker only queues: with the encoder blocked, its calls still return, and
    the frames are written (in order) once the encoder runs; past the queue's size frames are
    left out rather than stalling the worker."""
    from detector_app.gui import recording
    from detector_app.writers import VideoRecorder

    release, writing_threads = threading.Event(), set()
    original = VideoRecorder.write

    def slow_write(self, image):
        writing_threads.add(threading.current_thread().name)
        release.wait(30)
        return original(self, image)

    monkeypatch.setattr(VideoRecorder, "write", slow_write)
    recorder = StreamRecorder(tmp_path / "rec.avi", fps=10)
    for index in range(recording.QUEUE_FRAMES + 6):  # one taken by the blocked writer, then the queue fills
        recorder(result(index, index / 10, None))
    assert recorder.frames == 0 and recorder.left_out >= 4
    release.set()
    assert recorder.close() == tmp_path / "rec.avi"
    assert writing_threads == {"recording-writer"}
    assert recorder.frames == count_frames(tmp_path / "rec.avi") >= recording.QUEUE_FRAMES

"""The main window (offscreen) when things go wrong while it runs: detection failing on one
frame, a disk that fills up while recording, a read-only output folder, a stream that
refuses or stalls, a camera that stops delivering. Each time: what the message bar says,
and that the window keeps playing.

Already covered elsewhere (not repeated): a broken video file, camera 99, a damaged model
file, a stream that drops and comes back (tests/test_gui_window.py).
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from detector_app.gui.model_loading import LoadedModel  # noqa: E402
from tests.test_gui_window import clip, dog_predictor, model_files, next_result, play, window  # noqa: E402,F401

from .helpers import can_limit_file_size, file_size_limit  # noqa: E402
from .loopback import LoopbackServer, closed_port, silent  # noqa: E402

pytestmark = pytest.mark.gui


class FailsOnce:
    """The real predictor, except that its ``fail_at``-th call raises (a driver error, an
    out-of-memory on one frame)."""

    def __init__(self, inner, fail_at: int):
        self._inner, self.fail_at, self.calls = inner, fail_at, 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def run(self, frames, keep_raw=False):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("simulated failure inside the model")
        return self._inner.run(frames, keep_raw=keep_raw)


def test_detection_failing_on_one_frame_is_shown_and_the_stream_goes_on(qtbot, window, clip, dog_predictor):
    failing = FailsOnce(dog_predictor, fail_at=4)
    window.use_model(LoadedModel(failing, dog_predictor.source))
    play(qtbot, window, str(clip), frames=2)
    qtbot.waitUntil(lambda: "detection failed" in window.messages.text(), timeout=20000)
    text = window.messages.text()
    assert window.messages.level == "error"
    assert "simulated failure inside the model" in text and "shown without boxes" in text and "frame " in text
    qtbot.waitUntil(lambda: failing.calls > 8, timeout=20000)
    result = next_result(qtbot, window)
    assert result.detections is not None and len(result.detections) > 0, "later frames are detected again"
    assert window.bridge.pipeline.stats().errors == 1


@pytest.mark.skipif(not can_limit_file_size(), reason="needs RLIMIT_FSIZE (Linux, macOS)")
def test_recording_on_a_full_disk_says_so_and_keeps_the_earlier_file(qtbot, window, clip, tmp_path):
    target = tmp_path / "recording.avi"
    target.write_bytes(b"yesterday's recording")
    play(qtbot, window, str(clip), realtime=True)
    with file_size_limit(60_000):  # the disk "fills up" while recording
        assert window.outputs.start_recording(target)
        recorder = window.outputs.recorder
        qtbot.waitUntil(lambda: recorder.frames >= 40, timeout=30000)
        assert window.outputs.stop_recording() is None
    text = window.messages.text()
    assert window.messages.level == "error" and "Recording lost" in text and str(target) in text
    assert "incomplete" in text and "the previous file is kept" in text
    assert target.read_bytes() == b"yesterday's recording"
    assert not window.actions_by_name["record"].isChecked()
    next_result(qtbot, window)  # still playing


def test_outputs_to_a_read_only_folder_are_refused_with_a_message(qtbot, window, clip, lockable_folder):
    folder = lockable_folder.path
    (folder / "run.jsonl").write_text("earlier export\n")
    lockable_folder.lock()
    play(qtbot, window, str(clip), realtime=False)
    window.set_playing(False)
    assert window.outputs.export(folder / "run.jsonl") is None
    assert "Export failed" in window.messages.text() and "run.jsonl" in window.messages.text()
    assert window.outputs.snapshot(window.last_result, folder / "snapshots") is None
    assert "Snapshot not saved" in window.messages.text() and "snapshots" in window.messages.text()
    assert not window.outputs.start_recording(folder / "rec.mp4")
    assert "Recording not started" in window.messages.text() and "rec.mp4" in window.messages.text()
    assert (folder / "run.jsonl").read_text() == "earlier export\n"
    window.step_frame()
    next_result(qtbot, window)


@pytest.mark.parametrize("stalls", [False, True], ids=["refused", "stalls"])
def test_a_dead_stream_url_is_an_error_while_the_current_source_plays_on(qtbot, window, clip, stalls):
    server = LoopbackServer(silent).start() if stalls else None
    url = server.url if server else f"http://127.0.0.1:{closed_port()}/camera.mjpg"
    try:
        play(qtbot, window, str(clip), frames=2, realtime=True)
        window.open_source_text(url)
        shown = window.meter.shown
        if stalls:  # opened off the GUI thread: the video plays on while the open times out (5 s)
            qtbot.waitUntil(lambda: window.meter.shown > shown + 3, timeout=20000)
            assert url not in window.messages.text()
        qtbot.waitUntil(lambda: url in window.messages.text(), timeout=30000)
    finally:
        if server:
            server.stop()
    text = window.messages.text()
    assert window.messages.level == "error" and "could not be opened" in text and "keeps running" in text
    assert window.bridge.pipeline.source.name == str(clip)
    window.set_playing(True)  # from the start, if the clip ended meanwhile
    next_result(qtbot, window)


def test_a_camera_that_stops_delivering_reconnects_and_says_so(qtbot, window, fake_camera):
    """Unplugged after 10 frames; two reopenings fail; then it delivers again."""
    device = fake_camera([10, None, None, 10_000])
    window.open_source_text("0")
    qtbot.waitUntil(lambda: "reconnecting" in window.messages.text(), timeout=20000)
    assert window.messages.level == "warning" and "camera 0" in window.messages.text()
    qtbot.waitUntil(lambda: window.bridge.pipeline is not None and window.bridge.pipeline.stats().reconnects == 1,
                    timeout=30000)
    delivered = device.delivered
    qtbot.waitUntil(lambda: device.delivered > delivered + 5, timeout=10000)
    next_result(qtbot, window)
    qtbot.waitUntil(lambda: "reconnect" not in window.messages.text(), timeout=10000)  # the warning goes
    window.close_source()

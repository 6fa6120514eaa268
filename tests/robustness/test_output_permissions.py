"""Output files get the permissions the user's umask asks for (0o666 less the umask), as files
made by ``open`` do, and a replaced file keeps its own mode. Before, every atomically written
output was 0600 whatever the umask (issue 15)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from detector_app.writers import JsonlWriter
from models import Detections
from models.atomic import AtomicFile, current_umask, write_bytes_atomic
from trainer.atomic import write_text_atomic


def _jsonl(path: Path) -> None:
    writer = JsonlWriter(path)
    writer.write(0, 0.0, Detections.empty(("dog",), (10, 10)))
    writer.close()


def _model(path: Path) -> None:
    from models import build_model, seed_spec
    from models.model_file import save_model

    save_model(build_model(seed_spec(["dog"], alpha=0.25)), path)


WRITERS = {
    "detect --json (JsonlWriter)": ("out.jsonl", _jsonl),
    "run files (trainer.atomic)": ("log.csv", lambda p: write_text_atomic(p, "epoch\n1\n")),
    "caches and weights (write_bytes_atomic)": ("cache.tflite", lambda p: write_bytes_atomic(p, b"\0" * 8)),
    "model files (save_model)": ("model.keras", _model),
}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield lambda value: os.umask(value)
    os.umask(previous)


def test_the_umask_is_read_without_changing_it(umask):
    umask(0o027)
    assert current_umask() == 0o027 and current_umask() == 0o027


@pytest.mark.parametrize("name", list(WRITERS))
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_new_outputs_follow_the_umask(tmp_path, umask, name, mask):
    filename, write = WRITERS[name]
    umask(mask)
    target = tmp_path / filename
    write(target)
    assert mode(target) == 0o666 & ~mask, f"{name}: {oct(mode(target))}"
    assert [p.name for p in tmp_path.iterdir()] == [filename], "no temporary left behind"


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_replaced_output_keeps_its_mode(tmp_path, umask, name):
    filename, write = WRITERS[name]
    target = tmp_path / filename
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    write(target)
    assert mode(target) == 0o640 and target.read_bytes() != b"old"


def test_an_aborted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("good")
    with pytest.raises(RuntimeError):
        with AtomicFile(target) as out:
            out.tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
    np.testing.assert_equal(mode(target) & 0o600, 0o600)

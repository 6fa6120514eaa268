"""The converter child's clean-up when its parent dies, and its error report (no TensorFlow:
these run in a second)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime import orphan

ROOT = Path(__file__).resolve().parents[1]


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"  # a zombie nobody reaped yet
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads process states from /proc")
def test_a_child_whose_parent_dies_removes_its_folder_and_exits(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "big.bin").write_bytes(b"x" * 1000)
    # parent: starts the child (which arms the watch, then "works" for a minute), prints its
    # pid and dies without any clean-up
    child = ("import sys, time; from runtime.orphan import exit_with_parent; "
             "exit_with_parent(int(sys.argv[1]), sys.argv[2], period_s=0.1); time.sleep(60)")
    parent = ("import os, subprocess, sys; "
              f"p = subprocess.Popen([sys.executable, '-c', {child!r}, str(os.getpid()), {str(folder)!r}]); "
              "print(p.pid, flush=True); os._exit(0)")
    out = subprocess.run([sys.executable, "-c", parent], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    pid = int(out.stdout)
    deadline = time.monotonic() + 30
    while not (gone(pid) and not folder.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not folder.exists(), "the orphan removed its folder"
    assert gone(pid), "the orphan exited"


def test_a_child_with_its_parent_alive_keeps_working(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    # (this test process plays the child: its parent, the shell or CI runner, is alive)
    thread = orphan.exit_with_parent(os.getppid(), folder, period_s=0.01)
    time.sleep(0.1)
    assert thread.is_alive() and folder.exists()
    assert not orphan.is_orphaned(os.getppid()) and orphan.is_orphaned(os.getppid() + 10**6)


def test_a_failed_conversion_names_the_childs_error(monkeypatch):
    pytest.importorskip("tensorflow")
    from models import build_model, seed_spec
    from runtime import engines

    monkeypatch.setattr(engines, "CHILD_CODE", "import sys; sys.stderr.write('noise\\n'); "
                                               "raise SystemExit('ValueError: the model file is damaged')")
    conversion = engines.ChildConversion(build_model(seed_spec(["dog"], alpha=0.25)))
    with pytest.raises(RuntimeError, match="failed: ValueError: the model file is damaged"):
        conversion.result(timeout_s=60)
    assert not conversion.folder.exists(), "the failed conversion's files are removed"

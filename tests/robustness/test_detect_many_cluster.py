"""`detect-many --address` against a real cluster (issue 14): two nodes started here with `ray
start --head`, token authentication on (as `ray start` does by default since Ray 2.59), joined
both ways a user would: through the Ray Client (``ray://HOST:PORT``) and through the head's GCS
address (``HOST:PORT``). Outputs are those of `detect`; a driver without the token, or an
address where nothing listens, gets one line that says what to do, not a traceback."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import main
from tests.media import write_video
from tests.test_detect_many import model_file, records  # noqa: F401 (a fixture)

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    """An unused port from the ephemeral range (outside Ray's default worker ports 10002-19999)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_of(temp_dir: str) -> list:
    """Every process of the cluster started with ``temp_dir``: those that name it (or their
    session folder) on their command line, and their descendants (the agents rename
    themselves "ray::DashboardAgent"): only ours, never another Ray on the machine."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(temp_dir in part for part in proc.info["cmdline"] or ()):
                found[proc.pid] = proc
                found.update((child.pid, child) for child in proc.children(recursive=True))
        except psutil.Error:
            continue
    return list(found.values())


@pytest.fixture(scope="module")
def head():
    """A cluster of two nodes of one CPU each (a head and a worker node, both on this
    machine, as Ray's own tests do), token authentication on; its addresses and token."""
    if not shutil.which("ray"):
        pytest.skip("the `ray` command is not installed")
    token = secrets.token_hex(32)
    # short: Ray's Unix socket paths under it must stay below the 107-character limit
    temp_dir = tempfile.mkdtemp(prefix="rayh-", dir="/tmp")
    gcs, client, agent = free_port(), free_port(), free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    env.pop("RAY_ADDRESS", None)
    common = ["--num-cpus", "1", "--temp-dir", temp_dir, "--disable-usage-stats"]
    commands = [["ray", "start", "--head", "--port", str(gcs), "--ray-client-server-port", str(client),
                 "--dashboard-agent-listen-port", str(agent), "--include-dashboard=false", *common],
                ["ray", "start", "--address", f"127.0.0.1:{gcs}", "--dashboard-agent-listen-port", str(free_port()),
                 *common]]
    try:
        for command in commands:
            started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
            assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        yield {"gcs": f"127.0.0.1:{gcs}", "client": f"ray://127.0.0.1:{client}", "token": token}
    finally:
        procs = processes_of(temp_dir)
        for proc in procs:
            try:
                proc.terminate()
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(procs, timeout=20)
        for proc in alive:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=10)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not processes_of(temp_dir), "the head's processes were stopped"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster-inputs")
    return [write_video(root / f"cam{i}.avi", frames=frames, size=(160, 120)) for i, frames in enumerate((10, 7))]


def detect_many(clips, out: Path, model: Path, address: str, token: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        env.pop(name, None)
    if token:
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    command = [sys.executable, "main.py", "detect-many", *map(str, clips), "--out", str(out), "--model", str(model),
               "--conf", "0.3", "--address", address, "--no-progress"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("way", ["client", "gcs"])
def test_a_cluster_runs_the_inputs_as_detect_does(way, head, clips, model_file, tmp_path):
    out = tmp_path / "out"
    run = detect_many(clips, out, model_file, head[way], head["token"])
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["address"] == head[way] and summary["done_now"] == 2 and not summary["failed"]
    assert summary["frames"] == 10 + 7
    # two workers of one CPU: one on each node
    assert summary["worker_plan"] == "2 worker(s) of 1 CPU" and len(summary["inputs_per_node"]) == 2, summary
    for clip in clips:
        single = tmp_path / f"{clip.stem}.jsonl"
        assert main.main(["detect", str(clip), "--model", str(model_file), "--conf", "0.3", "--json", str(single),
                          "--no-progress"]) == 0
        (made,) = out.glob(f"{clip.stem}-*.jsonl")
        assert records(made) == records(single), clip.name

    again = detect_many(clips, out, model_file, head[way], head["token"])
    assert again.returncode == 0 and json.loads((out / "summary.json").read_text())["skipped_complete"] == 2


def one_error_line(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 2, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and run.stderr.rstrip().endswith(errors[0]), run.stderr[-3000:]
    return errors[0]


def test_without_the_token_the_cluster_refuses_and_says_what_to_set(head, clips, model_file, tmp_path):
    run = detect_many(clips, tmp_path / "out", model_file, head["gcs"], token=None)
    line = one_error_line(run)
    assert head["gcs"] in line and "RAY_AUTH_MODE=token" in line and "RAY_AUTH_TOKEN" in line
    assert not list((tmp_path / "out").glob("*.jsonl")), "nothing was run"


@pytest.mark.parametrize("scheme", ["ray://", ""])
def test_an_address_where_nothing_listens_fails_in_seconds(scheme, clips, model_file, tmp_path):
    address = f"{scheme}127.0.0.1:{free_port()}"
    started = time.monotonic()
    line = one_error_line(detect_many(clips, tmp_path / "out", model_file, address, token=None))
    assert address in line and "nothing accepts connections" in line
    # Ray alone retries a dead GCS address for minutes; the probe answers in seconds (plus
    # the start-up of the command itself, tens of seconds on a loaded machine)
    assert time.monotonic() - started < 120

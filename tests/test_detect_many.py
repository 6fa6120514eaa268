"""`main.py detect-many` on a local Ray with two CPUs: the same outputs as `detect`, a damaged
input fails alone, a worker that dies has its input retried, and a re-run does nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from detector_app.many import FAULT_ENV, InputError, PlanError, WorkerPlan, collect_inputs, make_jobs, plan_workers
from models.model_file import save_model
from tests.media import force_class, write_video


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from models import build_model, seed_spec

    model = force_class(build_model(seed_spec(["dog", "cat"], alpha=0.25)), "dog", logit=6.0)
    return save_model(model, tmp_path_factory.mktemp("m") / "dog.keras")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("many")
    videos = root / "videos"
    videos.mkdir()
    for i, frames in enumerate((12, 9, 15)):
        write_video(videos / f"clip{i}.avi", frames=frames, size=(160, 120))
    (videos / "damaged.avi").write_bytes(b"\x00garbage, not a video" * 50)
    photos = root / "photos"
    photos.mkdir()
    for i in range(3):
        cv2.imwrite(str(photos / f"p{i}.jpg"), np.full((90, 120, 3), 40 * i, np.uint8))
    listing = root / "list.txt"
    listing.write_text("# one folder per line\nvideos\nphotos\n")
    return root, listing


def test_inputs_are_collected_from_folders_and_lists(inputs):
    root, listing = inputs
    found = collect_inputs([str(listing)])
    names = [Path(p).name for p in found]
    assert names == ["clip0.avi", "clip1.avi", "clip2.avi", "damaged.avi", "photos"]
    assert collect_inputs([str(listing), str(root / "videos" / "clip0.avi")]) == found, "duplicates dropped"
    jobs = make_jobs(found)
    assert len({j.name for j in jobs}) == len(jobs) and jobs == make_jobs(found), "unique and stable names"
    with pytest.raises(InputError, match="no such file"):
        collect_inputs([str(root / "missing.avi")])


def test_workers_are_sized_to_the_cluster_and_the_work():
    # this 2-core machine: one worker per core, each with one thread (measured fastest here)
    assert plan_workers(2, 0, inputs=5) == WorkerPlan(2, 1, 0.0)
    assert plan_workers(2, 0, inputs=5, workers=1) == WorkerPlan(1, 2, 0.0), "one worker gets both cores"
    assert plan_workers(2, 0, inputs=1) == WorkerPlan(1, 2, 0.0), "never more workers than inputs"
    # a cluster of 10 nodes x 16 cores with 4 GPUs each
    assert plan_workers(160, 40, inputs=1000, cpus_per_worker=4) == WorkerPlan(40, 4, 0.0)
    assert plan_workers(160, 40, inputs=1000, cpus_per_worker=4, gpus_per_worker=0.5) == WorkerPlan(40, 4, 0.5)
    assert plan_workers(160, 40, inputs=1000, cpus_per_worker=2, gpus_per_worker=1) == WorkerPlan(40, 2, 1.0), \
        "the GPUs limit the pool"
    assert plan_workers(8, 0, inputs=100, workers=6, cpus_per_worker=2) == WorkerPlan(4, 2, 0.0), \
        "only the workers that fit are asked for (Ray would hold the others back for ever)"
    with pytest.raises(PlanError, match="the cluster has 8 CPUs"):
        plan_workers(8, 0, inputs=3, cpus_per_worker=16)
    with pytest.raises(PlanError, match="0 GPUs"):
        plan_workers(8, 0, inputs=3, gpus_per_worker=1)
    assert WorkerPlan(4, 2, 0.5).describe() == "4 worker(s) of 2 CPUs, 0.5 GPU"


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_detect_many_on_local_ray(inputs, model_file, tmp_path, monkeypatch, capfd):
    pytest.importorskip("ray")
    root, listing = inputs
    out = tmp_path / "out"
    monkeypatch.setenv(FAULT_ENV, "clip1.avi")  # its first worker dies on it
    args = ["detect-many", str(listing), "--out", str(out), "--model", str(model_file), "--conf", "0.3",
            "--workers", "2", "--no-progress"]
    assert main.main(args) == 1  # one input failed
    err = capfd.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"] == 5 and summary["done_now"] == 4 and summary["workers"] == 2
    assert summary["retried"] == 1, "the input whose worker died was retried on a new worker"
    assert [f["input"] for f in summary["failed"]] == [str(root / "videos" / "damaged.avi")]
    assert "damaged.avi" in err and "cannot be opened" in summary["failed"][0]["reason"]
    assert summary["frames"] == 12 + 9 + 15 + 3

    # each input's outputs are what `detect` writes for it
    jobs = {Path(j.source).name: j for j in make_jobs(collect_inputs([str(listing)]))}
    for name in ("clip0.avi", "clip1.avi", "photos"):
        source = root / ("photos" if name == "photos" else f"videos/{name}")
        single = tmp_path / f"{name}.jsonl"
        assert main.main(["detect", str(source), "--model", str(model_file), "--conf", "0.3", "--json", str(single),
                          "--no-progress"]) == 0
        assert records(out / f"{jobs[name].name}.jsonl") == records(single), name

    # a re-run does no work twice: only the failed input is tried again
    done_times = {p.name: p.stat().st_mtime_ns for p in out.glob("*.done.json")}
    assert main.main(args) == 1
    again = json.loads((out / "summary.json").read_text())
    assert again["done_now"] == 0 and again["skipped_complete"] == 4 and len(again["failed"]) == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.done.json")} == done_times
    assert not list(out.glob(".*.partial.*")), "no temporary left behind"


def test_addresses_are_read_as_ray_reads_them():
    from detector_app.many import ClusterError, parse_address

    assert parse_address("ray://head.example:10001") == (True, "head.example", 10001)
    assert parse_address("10.0.0.5:6379") == (False, "10.0.0.5", 6379)
    assert parse_address("ray://[::1]:10001") == (True, "::1", 10001)
    assert parse_address("auto") is None
    for bad in ("ray://head", "head:port", "head:0", ":6379", "ray://head:99999"):
        with pytest.raises(ClusterError, match="expected ray://HOST:PORT"):
            parse_address(bad)


def test_without_an_address_a_new_local_ray_starts(monkeypatch):
    """Never a cluster that `ray start` left on this machine: Ray's default (address None)
    would join it, and refuse the CPU count given for a local Ray."""
    ray = pytest.importorskip("ray")
    from detector_app import many

    seen = {}
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.update(kwargs))
    many.start_ray(None, 2)
    assert seen["address"] == "local" and seen["num_cpus"] == 2
    assert seen["runtime_env"]["env_vars"]["PYTHONPATH"]

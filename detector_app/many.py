"""``detect-many``: ``detect`` over a collection of videos and image folders, on Ray. Qt-free.

Each input gets exactly the outputs ``detect`` writes for it (JSON Lines, optionally the
annotated video), made by the same code (:func:`detector_app.detect.run_detection`, the
runtime's predictor), plus a ``NAME.done.json`` written last; a run writes ``summary.json``.

On Ray (``ray`` from PyPI): without an address a local Ray starts on this machine's cores;
``--address`` / ``RAY_ADDRESS`` sends the same job to a cluster (inputs and the output folder
must then be on storage every node and the driver see, under the same paths; the model travels through Ray's object store). One
task per input; a model is loaded once per worker (an actor), not per task; at most one task
per worker is in flight, so a thousand inputs never sit in memory at once.

Nothing lost: outputs are atomic (a killed worker leaves a temporary, removed by the next
run); a re-run skips inputs whose ``done`` record matches the input (size and modification
time), the model and the settings; a damaged input fails alone, named in the summary with its
reason; an input whose worker died is retried on a fresh worker (``--retries``); Ctrl-C keeps
every finished output.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from models.atomic import write_text_atomic

from .sources import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
ROOT = Path(__file__).resolve().parents[1]
# Tests make a worker die on purpose: it exits hard when it starts the input named in this
# variable, once (a marker file beside the outputs records that it did).
FAULT_ENV = "DETECTOR_MANY_CRASH_ON"


class InputError(ValueError):
    """An input argument that names nothing usable (the message names it)."""


class PlanError(ValueError):
    """Workers that cannot fit the cluster (the message says what it has)."""


class ClusterError(RuntimeError):
    """The Ray cluster named by ``--address`` could not be reached or joined (the message names
    the address, the reason and what to check)."""


@dataclass(frozen=True)
class Job:
    """One input: ``source`` as ``detect`` takes it (a video file or a folder of images) and
    ``name``, the stem of its outputs (unique in the run, stable across runs)."""

    source: str
    name: str


@dataclass(frozen=True)
class Settings:
    """What decides the outputs besides the input: part of every ``done`` record."""

    conf: float = 0.5
    iou: float = 0.45
    classes: tuple[str, ...] | None = None
    video: bool = False
    model_sha256: str = ""
    tiles: str | None = None  # runtime.tiling.TileGrid as text ("3x3"), or None


@dataclass
class RunSummary:
    inputs: int = 0
    skipped: int = 0  # complete from an earlier run
    done: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # {"input", "reason"}
    retried: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    workers: int = 0
    plan: str = ""  # WorkerPlan.describe()

    @property
    def frames(self) -> int:
        return sum(r["frames"] for r in self.done)

    def per_node(self) -> Counter:
        """Inputs done per Ray node (where the work went)."""
        return Counter(r.get("node", "?") for r in self.done)

    def per_class(self) -> Counter:
        total: Counter = Counter()
        for record in self.done:
            total.update(record["per_class"])
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs, "done_now": len(self.done), "skipped_complete": self.skipped,
            "failed": self.failed, "retried": self.retried, "frames": self.frames,
            "detections_per_class": dict(self.per_class().most_common()), "wall_time_s": round(self.seconds, 2),
            "frames_per_s": round(self.frames / self.seconds, 2) if self.seconds > 0 else 0.0,
            "workers": self.workers, "worker_plan": self.plan, "inputs_per_node": dict(self.per_node()),
            "interrupted": self.interrupted,
            "outputs": [r["outputs"] for r in self.done],
        }

    def lines(self) -> list[str]:
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        out = [f"{len(self.done)} inputs done now, {self.skipped} complete from before, {len(self.failed)} failed "
               f"({self.inputs} in all); {self.frames} frames in {self.seconds:.1f} s ({fps:.1f} frames/s) "
               f"on {self.plan or f'{self.workers} workers'}"]
        if len(self.per_node()) > 1:
            out.append(f"on {len(self.per_node())} nodes: "
                       + ", ".join(f"{node} {n} input(s)" for node, n in sorted(self.per_node().items())))
        if self.retried:
            out.append(f"{self.retried} input(s) retried after a worker died")
        if self.per_class():
            out.append("per class: " + ", ".join(f"{c} {n}" for c, n in self.per_class().most_common()))
        return out


# -- inputs ----------------------------------------------------------------------------------

def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() for p in folder.iterdir())


def collect_inputs(items: Iterable[str]) -> list[str]:
    """Video files, folders (each video in it is an input; its images together are one), or
    ``.txt`` files listing such paths (one per line, ``#`` comments). Order kept, duplicates
    dropped. Raises :class:`InputError` naming an argument that is none of these."""
    found: list[str] = []

    def add(path: Path) -> None:
        key = str(path.resolve())
        if key not in seen:
            seen.add(key)
            found.append(str(path))

    seen: set[str] = set()
    for item in items:
        path = Path(item)
        if path.is_file() and path.suffix.lower() == ".txt":
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()]
            listed = [ln for ln in lines if ln and not ln.startswith("#")]
            for entry in collect_inputs(str((path.parent / ln) if not Path(ln).is_absolute() else ln) for ln in listed):
                add(Path(entry))
        elif path.is_dir():
            videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            for video in videos:
                add(video)
            if _has_images(path):
                add(path)
            if not videos and not _has_images(path):
                raise InputError(f"{item}: a folder with no videos or images")
        elif path.is_file():
            if path.suffix.lower() not in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS:
                raise InputError(f"{item}: not a video, an image, a folder or a .txt list")
            add(path)
        else:
            raise InputError(f"{item}: no such file or folder")
    return found


def make_jobs(sources: Sequence[str]) -> list[Job]:
    """Output stems: the input's name and 8 hex digits of its absolute path (two inputs named
    alike in different folders do not collide; the same input gets the same name next run)."""
    jobs = []
    for source in sources:
        path = Path(source).resolve()
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in (path.stem or "input"))[:60]
        jobs.append(Job(source, f"{stem}-{digest}"))
    return jobs


def fingerprint(source: str) -> dict[str, Any]:
    """Size and modification time of the input (for a folder: of its images), to tell a
    changed input from a complete one."""
    path = Path(source)
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    stats = [p.stat() for p in files]
    return {"files": len(stats), "bytes": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}


def output_paths(out_dir: Path, job: Job, video: bool) -> dict[str, Path]:
    paths = {"jsonl": out_dir / f"{job.name}.jsonl", "done": out_dir / f"{job.name}.done.json"}
    if video:
        paths["video"] = out_dir / f"{job.name}.mp4"
    return paths


def is_complete(out_dir: Path, job: Job, settings: Settings) -> bool:
    """True when an earlier run finished this input with these settings and it is unchanged."""
    paths = output_paths(out_dir, job, settings.video)
    try:
        record = json.loads(paths["done"].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (record.get("settings") == settings_record(settings) and record.get("fingerprint") == fingerprint(job.source)
            and all(p.exists() for k, p in paths.items() if k != "done"))


def settings_record(settings: Settings) -> dict[str, Any]:
    record = {"conf": settings.conf, "iou": settings.iou, "classes": list(settings.classes or []) or None,
              "video": settings.video, "model_sha256": settings.model_sha256}
    if settings.tiles:  # only when used, so records written before tiling existed still match
        record["tiles"] = settings.tiles
    return record


def remove_stale_temporaries(out_dir: Path) -> int:
    """Temporaries of outputs a killed worker left (``.NAME.XXXX.partial.EXT``)."""
    removed = 0
    for stale in out_dir.glob(".*.partial.*"):
        if stale.is_file():
            stale.unlink(missing_ok=True)
            removed += 1
    return removed


# -- one input (runs in a worker) -------------------------------------------------------------

def detect_one(predictor, job: Job, out_dir: Path, settings: Settings) -> dict[str, Any]:
    """``detect`` on one input into its outputs, then its ``done`` record. Returns the record;
    raises InputError (the reason) when the input yields no frame."""
    from .detect import run_detection
    from .sources import open_source

    paths = output_paths(out_dir, job, settings.video)
    warnings: list[str] = []
    started = time.perf_counter()
    source = open_source(job.source, on_warning=warnings.append)
    with source:
        summary = run_detection(source, predictor, paths.get("video"), paths["jsonl"], progress=False,
                                on_event=lambda e: warnings.append(e.message) if e.kind != "end" else None)
    if summary.output_errors:
        raise InputError("; ".join(summary.output_errors))
    if summary.frames == 0:
        raise InputError(f"no frame could be read ({'; '.join(warnings[-2:]) or 'nothing decodable'})")
    record = {
        "input": str(Path(job.source).resolve()), "name": job.name, "frames": summary.frames,
        "detections": summary.detections, "per_class": dict(summary.per_class), "skipped_frames": summary.skipped,
        "warnings": warnings[-20:], "seconds": round(time.perf_counter() - started, 3),
        "fingerprint": fingerprint(job.source), "settings": settings_record(settings),
        "outputs": {k: str(p) for k, p in paths.items() if k != "done"},
    }
    write_text_atomic(paths["done"], json.dumps(record, indent=1))
    return record


def _node_name() -> str:
    """This Ray node as the summary names it: its IP and the start of its node id (several
    nodes may share an IP)."""
    import ray

    return f"{ray.util.get_node_ip_address()} ({ray.get_runtime_context().get_node_id()[:8]})"


class DetectWorker:
    """A Ray actor: one model loaded once, many inputs."""

    def __init__(self, model_bytes: bytes, settings: Settings, threads: int):
        os.environ["DETECTOR_THREADS"] = str(threads)
        from models import PostprocessConfig
        from models.model_file import load_model
        from runtime.predictor import Predictor

        with tempfile.TemporaryDirectory(prefix="detect-many-") as tmp:
            path = Path(tmp) / "model.keras"
            path.write_bytes(model_bytes)
            model = load_model(path)
        config = PostprocessConfig(conf_threshold=settings.conf, iou_threshold=settings.iou)
        self.predictor = Predictor(model, config=config, classes=settings.classes, source="detect-many")
        self.predictor.tiles = settings.tiles
        self.settings = settings
        self.node = _node_name()

    def run(self, job: Job, out_dir: str) -> dict[str, Any]:
        crash_on = os.environ.get(FAULT_ENV)
        if crash_on and Path(job.source).name == crash_on:
            marker = Path(out_dir) / f".crashed-{job.name}"
            if not marker.exists():
                marker.write_text("a worker died here once (test fault)")
                os._exit(1)
        try:
            record = detect_one(self.predictor, job, Path(out_dir), self.settings)
            record["node"] = self.node  # for the summary only: the done record is written already
            return record
        except Exception as exc:  # an input that fails is named with its reason; the run goes on
            # returned, not raised: the app's exception types need not survive Ray's pickling
            return {"error": str(exc).strip().splitlines()[-1][:500] if str(exc).strip() else type(exc).__name__}

    def pid(self) -> int:
        return os.getpid()


# -- the run (the driver) -----------------------------------------------------------------------

def _frame_totals(jobs: Sequence[Job]) -> int:
    """Frames to do in all (for the progress bar); 0 where a count is unknown."""
    import cv2

    total = 0
    for job in jobs:
        path = Path(job.source)
        if path.is_dir():
            total += sum(1 for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            total += 1
        else:
            cap = cv2.VideoCapture(str(path))
            total += max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))) if cap.isOpened() else 0
            cap.release()
    return total


def parse_address(address: str) -> tuple[bool, str, int] | None:
    """``ray://HOST:PORT`` (Ray Client) or ``HOST:PORT`` (the head's GCS, for a driver on a
    cluster node) as (client, host, port); None for ``auto`` (a cluster started with ``ray
    start`` on this machine, found by Ray). Raises ClusterError for anything else."""
    if address == "auto":
        return None
    client = address.startswith("ray://")
    rest = address[len("ray://"):] if client else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"--address {address}: expected ray://HOST:PORT (Ray Client, port 10001 by default), "
                           "HOST:PORT (the head's GCS, port 6379 by default) or auto")
    return client, host.strip("[]"), int(port)


def probe_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds when nothing listens at ``address`` (Ray itself retries a dead GCS
    address for minutes and a dead client address for 30 s)."""
    import socket

    parsed = parse_address(address)
    if parsed is None:
        return
    client, host, port = parsed
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        what = "the Ray Client server port (ray start --ray-client-server-port, default 10001)" if client \
            else "the head's GCS port (ray start --port, default 6379)"
        raise ClusterError(f"--address {address}: nothing accepts connections at {host}:{port} "
                           f"({exc.strerror or exc}); is the head running, reachable from here, and is that "
                           f"{what}?") from None


def _join_failure(address: str, exc: BaseException) -> ClusterError:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    hint = ""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        # Ray >= 2.59 turns token authentication on for clusters made by `ray start`, and a
        # driver given an explicit address never sends a token unless told to.
        hint = ("; if the cluster uses token authentication (the default of `ray start` since Ray 2.59), "
                "set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or the file ~/.ray/auth_token) to the cluster's token")
    return ClusterError(f"could not join the Ray cluster at {address}: {reason[:300]}{hint}")


def start_ray(address: str | None, cpus: int) -> None:
    """Join the cluster at ``address``, or start a local Ray with ``cpus`` CPUs (never a
    cluster that happens to run on this machine: that takes ``--address auto``).

    Raises ClusterError when the cluster cannot be reached or joined."""
    import logging
    import warnings

    import ray

    from runtime.quiet import native_stderr_silenced

    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "QT_QPA_PLATFORM": "offscreen"}
    for name in (FAULT_ENV, "DETECTOR_CACHE_DIR", "OPENCV_IO_MAX_IMAGE_PIXELS"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    if address:
        probe_address(address)
        # The code travels as the job's working directory (on the workers' import path);
        # inputs and outputs must be on storage every node and this driver see.
        runtime_env: dict[str, Any] = {"working_dir": str(ROOT), "env_vars": env,
                                       "excludes": [".git", "tests", "docs", "*.jsonl", "*.mp4", "*.avi"]}
        try:
            # Ray's native retry messages would bury the one line that says what failed.
            with native_stderr_silenced(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ray.init(address=address, runtime_env=runtime_env, logging_level=logging.ERROR,
                         log_to_driver=False)
        except Exception as exc:  # ConnectionError, AuthenticationError, RuntimeError, ...: all say "no cluster"
            ray.shutdown()  # whatever half of a connection was made
            raise _join_failure(address, exc) from exc
    else:
        # Ray starts its workers at niceness 15 (so its own daemons stay responsive); here the
        # workers are the job, and at 15 they lose the cores to any other process: measured 33
        # frames/s in a worker against 55 in-process beside a training run, 55 with this.
        os.environ.setdefault("RAY_worker_niceness", "0")
        env["PYTHONPATH"] = str(ROOT)
        # "local": a new Ray of our own even when `ray start` left one running on this machine
        # (address=None would join it, and refuse the num_cpus given here).
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level=logging.ERROR,
                 log_to_driver=False, runtime_env={"env_vars": env})


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers, and what each asks of Ray: ``cpus`` (also its inference and decoding
    threads) and ``gpus`` (a fraction shares a GPU among workers)."""

    count: int
    cpus: int
    gpus: float

    def describe(self) -> str:
        gpu = f", {self.gpus:g} GPU" if self.gpus else ""
        return f"{self.count} worker(s) of {self.cpus} CPU{'s' if self.cpus > 1 else ''}{gpu}"


def plan_workers(cluster_cpus: float, cluster_gpus: float, inputs: int, workers: int | None = None,
                 cpus_per_worker: int | None = None, gpus_per_worker: float = 0.0) -> WorkerPlan:
    """Size the worker pool to the cluster (or this machine) and the work.

    Without ``workers``: as many as the CPUs (and GPUs, when each asks for some) allow at
    ``cpus_per_worker`` each (default 1 on this machine's local Ray, where one worker per core
    measured fastest; see the README). Without ``cpus_per_worker``: the CPUs shared evenly
    among ``workers``. Never more workers than inputs; at least one. Raises ValueError when a
    single worker asks for more than the cluster has (it would wait forever): PlanError."""
    cpus_total = max(1, int(cluster_cpus))
    if cpus_per_worker is not None and cpus_per_worker > cpus_total:
        raise PlanError(f"--cpus-per-worker {cpus_per_worker}: the cluster has {cpus_total} CPUs")
    if gpus_per_worker > cluster_gpus:
        raise PlanError(f"--gpus-per-worker {gpus_per_worker:g}: the cluster has {cluster_gpus:g} GPUs")
    if workers is None:
        per = cpus_per_worker or 1
        workers = cpus_total // per
        if gpus_per_worker > 0:
            workers = min(workers, int(cluster_gpus / gpus_per_worker + 1e-9))
    count = max(1, min(workers, inputs))
    cpus = cpus_per_worker or max(1, cpus_total // count)
    # Ray would hold back the workers that do not fit: do not ask for them.
    count = max(1, min(count, cpus_total // cpus))
    if gpus_per_worker > 0:
        count = max(1, min(count, int(cluster_gpus / gpus_per_worker + 1e-9)))
    return WorkerPlan(count, cpus, gpus_per_worker)


def run_many(jobs: Sequence[Job], out_dir: Path, model_path: str, settings: Settings, workers: int | None,
             address: str | None = None, retries: int = 1, progress: bool = True,
             cpus_per_worker: int | None = None, gpus_per_worker: float = 0.0) -> RunSummary:
    """Every job not complete already, on ``workers`` Ray actors. See the module docstring."""
    import ray
    from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    summary = RunSummary(inputs=len(jobs))
    remove_stale_temporaries(out_dir)
    todo = [job for job in jobs if not is_complete(out_dir, job, settings)]
    summary.skipped = len(jobs) - len(todo)
    started = time.perf_counter()
    if not todo:
        summary.seconds = time.perf_counter() - started
        return summary
    # A local Ray gets this machine's cores, or as many as the workers asked for (oversubscribed
    # on purpose, as asked).
    start_ray(address, max(os.cpu_count() or 1, (workers or 1) * (cpus_per_worker or 1)))
    try:
        resources = ray.cluster_resources()
        plan = plan_workers(resources.get("CPU", 1), resources.get("GPU", 0), len(todo), workers,
                            cpus_per_worker, gpus_per_worker)
        count = plan.count
        summary.workers, summary.plan = count, plan.describe()
        actor_class = ray.remote(num_cpus=plan.cpus, num_gpus=plan.gpus)(DetectWorker)
        model_ref = ray.put(Path(model_path).read_bytes())

        def new_actor():
            return actor_class.remote(model_ref, settings, plan.cpus)

        actors = [new_actor() for _ in range(count)]
        idle = list(range(count))
        pending = list(reversed(todo))  # pop() from the end keeps input order
        attempts: Counter = Counter()
        in_flight: dict[Any, tuple[Job, int]] = {}
        bar = tqdm(total=_frame_totals(todo) or None, unit="frame", disable=not progress, file=sys.stderr,
                   desc=f"{len(todo)} inputs", dynamic_ncols=True)
        try:
            while pending or in_flight:
                # Back-pressure: one task per idle worker; the rest wait as paths, not frames.
                while pending and idle:
                    slot = idle.pop()
                    job = pending.pop()
                    attempts[job] += 1
                    in_flight[actors[slot].run.remote(job, str(out_dir))] = (job, slot)
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                ref = ready[0]
                job, slot = in_flight.pop(ref)
                try:
                    record = ray.get(ref)
                except (RayActorError, WorkerCrashedError) as exc:  # the worker died: a new one
                    ray.kill(actors[slot], no_restart=True)
                    actors[slot] = new_actor()
                    if attempts[job] <= retries:
                        summary.retried += 1
                        pending.append(job)
                    else:
                        summary.failed.append({"input": job.source, "reason": f"the worker died ({type(exc).__name__})"})
                except RayTaskError as exc:  # a failure outside detect_one (out of memory, ...)
                    summary.failed.append({"input": job.source, "reason": str(exc).strip().splitlines()[-1][:500]})
                else:
                    if "error" in record:  # the input itself failed: named, the run goes on
                        summary.failed.append({"input": job.source, "reason": record["error"]})
                    else:
                        summary.done.append(record)
                        bar.update(record["frames"])
                idle.append(slot)
                elapsed = time.perf_counter() - started
                bar.set_postfix(inputs=f"{len(summary.done) + len(summary.failed)}/{len(todo)}",
                                fps=f"{summary.frames / elapsed:.1f}" if elapsed > 0 else "0")
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            bar.close()
            for actor in actors:
                ray.kill(actor, no_restart=True)
    finally:
        ray.shutdown()
        summary.seconds = time.perf_counter() - started
    return summary


def write_summary(out_dir: Path, summary: RunSummary, extra: dict[str, Any]) -> Path:
    return write_text_atomic(out_dir / "summary.json", json.dumps({**extra, **summary.to_dict()}, indent=1))

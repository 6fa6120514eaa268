"""The training run: data, network, optimiser, epochs, validation, checkpoints, logs.

One function, :func:`train`, drives a run folder (see :mod:`trainer.run_files`) from start or
from its checkpoint to the end:

1. scan the data folders (the check-data pass; the report goes into the run folder), fix the
   classes and the deterministic split (recorded);
2. build the network: fresh from a layout (seeded init), or fine-tuned from ``--from``
   (:mod:`trainer.finetune`), or rebuilt from the recorded spec and restored from the
   checkpoint when resuming;
3. per epoch: batches from :class:`trainer.loader.BatchLoader`, one compiled Keras step per
   batch (:class:`trainer.training_model.SSDTrainer`), validation mAP with the app's
   post-processing, then model files, checkpoint, CSV, plots, summary and progress events.

Stopping: ``hooks.should_stop()`` is polled after every step (the command line sets it on
Ctrl-C / SIGTERM); the run then writes a mid-epoch checkpoint and returns "stopped". A loss
that is not finite stops the run with "diverged" and keeps the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .config import TrainConfig, identity
from .errors import DataError
from .run_files import ProgressEvent, ProgressLog, RunFiles, write_log_csv, write_yaml

Log = Callable[[str], None]


@dataclass
class RunHooks:
    """Callbacks into a run. ``should_stop``: polled after each step; True ends the run with a
    checkpoint. ``on_step``: called with the step's figures (tests, GUI glue)."""

    should_stop: Callable[[], bool] = lambda: False
    on_step: Callable[[dict[str, Any]], None] | None = None


@dataclass
class TrainResult:
    """How a run ended: ``status`` is "finished", "stopped" or "diverged"."""

    status: str
    run_dir: str
    epochs_done: int
    best_map: float | None = None
    best_epoch: int | None = None
    final_map: float | None = None
    message: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


# -- network spec -------------------------------------------------------------------------

def _layout_builders() -> dict[str, Callable[[Sequence[str], float], Any]]:
    from models.layouts import caffe_spec, lite0_spec, seed_spec

    def caffe(classes: Sequence[str], alpha: float):
        if alpha != 1.0:
            raise DataError("--alpha", "the caffe layout has a fixed width (alpha 1.0); use --layout seed for other widths")
        return caffe_spec(classes)

    def lite0(classes: Sequence[str], alpha: float):
        if alpha != 1.0:
            raise DataError("--alpha", "the lite0 layout has a fixed width (its ImageNet weights); use --layout seed for other widths")
        return lite0_spec(classes)

    return {"seed": lambda classes, alpha: seed_spec(classes, alpha=alpha), "caffe": caffe, "lite0": lite0}


def build_spec(config: TrainConfig, classes: Sequence[str]):
    """The network to train: the --from model's (with the new classes), a --spec YAML file's,
    or a preset layout's; with ``top_down``, a top-down path into its ``top_down_heads``
    finest heads from the next ``top_down_depth`` heads' maps (models.layouts.with_top_down)."""
    from models.spec import SpecError

    spec = _network_spec(config, classes)
    if config.top_down:
        from models.layouts import with_top_down

        try:
            return with_top_down(spec, config.top_down_heads, config.top_down_depth)
        except SpecError as exc:
            raise DataError("--top-down", str(exc)) from exc
    return spec


def _network_spec(config: TrainConfig, classes: Sequence[str]):
    """The network as the --from model, the --spec file or the layout gives it."""
    from models.model_file import read_spec
    from models.spec import ModelSpec, SpecError

    if config.from_model:
        return read_spec(config.from_model).with_classes(list(classes))
    if config.spec_file:
        import yaml

        path = Path(config.spec_file)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise DataError(path, f"cannot read the model spec ({exc})") from exc
        try:
            return ModelSpec.from_dict({**data, "class_names": list(classes)})
        except (SpecError, TypeError) as exc:
            raise DataError(path, f"is not a valid model spec: {exc}") from exc
    builders = _layout_builders()
    if config.layout not in builders:
        raise DataError("--layout", f"unknown layout {config.layout!r}; expected one of {sorted(builders)}")
    return builders[config.layout](list(classes), config.alpha)


# -- the run ------------------------------------------------------------------------------

@contextlib.contextmanager
def run_lock(files: RunFiles):
    """Hold an exclusive lock on the run folder (POSIX), so two processes never write one run."""
    try:
        files.root.mkdir(parents=True, exist_ok=True)
        lock = open(files.lock, "w")
    except OSError as exc:  # a read-only or full disk, or a file where the folder should be
        raise DataError(files.root, f"the run folder cannot be written ({exc.strerror or exc}); "
                                    "choose another --out") from exc
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; the GUI starts one process per run anyway
        with lock:
            yield
        return
    with lock as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise DataError(files.root, "another training process is using this run folder") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _class_mask_enabled(mode: str, folder_classes: Sequence[set[str]]) -> bool:
    """"auto": on when the folders label different sets of classes (partial labels)."""
    modes = {"on": True, "off": False, "auto": len({frozenset(c) for c in folder_classes}) > 1}
    return modes[mode]


def _fingerprint(samples) -> str:
    import hashlib

    h = hashlib.sha1()
    for s in samples:
        h.update(f"{s.image_path}\0{s.digest}\n".encode())
    return h.hexdigest()


class Trainer:
    """One run, from :func:`train`. Split in methods so each does one thing."""

    def __init__(self, config: TrainConfig, hooks: RunHooks, log: Log):
        self.config = config
        self.hooks = hooks
        self.log = log
        self.files = RunFiles(config.out, config.progress_jsonl)
        self.progress = ProgressLog(self.files.progress)

    # data ---------------------------------------------------------------------------------

    def read_data(self, recorded: dict | None) -> None:
        from .autolabel import added_classes, copy_record
        from .classes import classes_from_data
        from .scan import scan_folders

        cfg = self.config
        # before scanning: a half-finished autolabel copy would train on half its new labels
        self.labelled_copies = {d: r for d in cfg.data if (r := copy_record(d)) is not None}
        known = cfg.classes if cfg.classes else (recorded["resolved"]["classes"] if recorded else None)
        self.log(f"reading {len(cfg.data)} data folder(s) ...")
        scans = scan_folders(cfg.data, known, workers=cfg.workers, progress=cfg.progress_bar)
        classes = tuple(known) if known else classes_from_data([n for s in scans for x in s.samples for n in x.names],
                                                               ", ".join(cfg.data))
        self.scans = scans
        self.classes = classes
        self.samples = [x for s in scans for x in s.samples]
        if not self.samples:
            raise DataError(", ".join(cfg.data), "no usable labelled images (see data_report.json for why)")
        # --copies-positive-only: per folder, the classes it teaches only where boxed (not part of its mask)
        self.positive_only: dict[str, set[str]] = {}
        option = cfg.positive_only_option
        if option is not None:
            if cfg.class_mask == "off":
                raise DataError(option, "works through the class masks; leave out --class-mask off")
            if not self.labelled_copies:
                raise DataError(option, "none of the --data folders is an `autolabel` copy (no "
                                        "autolabel.json); leave the option out or train on the copies")
            chosen = cfg.positive_only_copies or tuple(self.labelled_copies)
            plain = [d for d in chosen if d not in self.labelled_copies]
            if plain:
                raise DataError(option, f"{', '.join(plain)} is not an `autolabel` copy (no autolabel.json): "
                                        "its labels are all a person's, so nothing in it is positive-only")
            self.positive_only = {s.root: added_classes(d, self.labelled_copies[d])
                                  for d, s in zip(cfg.data, scans) if d in chosen}
        self.folder_classes = [set(s.class_names) - self.positive_only.get(s.root, set()) for s in scans]

    def write_data_report(self, spec) -> None:
        import json

        from .atomic import write_text_atomic
        from .report import data_report

        report = data_report(self.scans, spec, list(self.classes))
        write_text_atomic(self.files.data_report, json.dumps(report, indent=1))
        totals = report["totals"]
        self.log(f"data: {totals['images']} images, {totals['objects']} objects "
                 f"({', '.join(f'{k} {v}' for k, v in totals['objects_per_class'].items())})")
        if totals["issues"]:
            kinds = report["issue_kinds"]
            self.log("data problems (handled as described; details in "
                     f"{self.files.data_report}): " + ", ".join(f"{kinds[k]}: {v}" for k, v in totals["issues"].items()))

    # network ------------------------------------------------------------------------------

    def build_detector(self, spec, resuming: bool):
        import keras

        from models.ssd import build_model

        keras.utils.set_random_seed(self.config.seed)
        detector = build_model(spec)
        if self.config.from_model and not resuming:
            from models.model_file import load_model

            from .finetune import transfer_weights

            source = load_model(self.config.from_model)
            report = transfer_weights(source, detector)
            self.log(f"fine-tuning from {self.config.from_model}: {report.describe()}")
            del source
        if self.config.imagenet and not resuming:
            from models.efficientnet_lite import load_imagenet_weights
            from models.torch_weights import TorchFileError

            try:
                count = load_imagenet_weights(detector)
            except TorchFileError as exc:
                raise DataError("--imagenet", str(exc)) from exc
            self.log(f"backbone from ImageNet: {count} EfficientNet-Lite0 layers (the rest start fresh)")
        return detector

    def compile_phase(self, frozen: bool, opt_state: dict[str, np.ndarray] | None) -> None:
        """(Re)compile the step for a frozen or free backbone, carrying the optimiser state.

        The optimiser is built over the trainable variables of the phase (JAX's stateless step
        needs exactly those); slots are restored by path (trainer.optim)."""
        from .finetune import set_backbone_trainable
        from .optim import load_optimizer_state, make_optimizer

        set_backbone_trainable(self.detector, not frozen, self.config.freeze_through)
        optimizer = make_optimizer(self.config.optimizer, self.schedule, self.config.momentum)
        self.wrapper.compile(optimizer=optimizer, jit_compile="auto")
        self.wrapper.optimizer.build(self.wrapper.trainable_variables)
        if opt_state:
            load_optimizer_state(self.wrapper.optimizer, opt_state)
        self.frozen = frozen

    # validation ---------------------------------------------------------------------------

    def validate(self):
        """(mean validation loss, VOCResult) of the current weights, or (None, None)."""
        if not self.val_samples:
            return None, None
        from .evaluate import evaluate_detections
        from .inference import eval_predictor, validation_detections
        from .loss import ssd_loss

        if self.val_predictor is None:  # the runtime's keras engine: it sees the weights as they change
            self.val_predictor = eval_predictor(self.detector, engine="keras")
        losses, detections = [], []
        batches = self.val_loader.epoch(0)
        if self.config.progress_bar:
            from tqdm import tqdm

            batches = tqdm(batches, total=self.val_loader.steps_per_epoch, desc="validating", unit="batch", leave=False)
        for batch in batches:
            n = batch.count
            deltas, logits = (np.asarray(t) for t in self.detector.predict_on_batch(batch.images))
            mask = batch.class_mask[:n] if self.use_mask else None
            total, _, _ = ssd_loss(deltas[:n], logits[:n], batch.box_targets[:n], batch.class_targets[:n], mask)
            losses.append(float(np.asarray(total)))
            detections.extend(validation_detections(self.val_predictor, batch, self.val_samples))
        # with class masks, each class is measured on the images of folders that label it
        labelled = [self.masks[s.source][1:] > 0 for s in self.val_samples] if self.use_mask else None
        result = evaluate_detections(self.val_samples, detections, self.detector.spec.class_names, labelled)
        return float(np.mean(losses)), result

    # state --------------------------------------------------------------------------------

    def meta(self, epoch: int, step: int, sums: dict[str, float]) -> dict[str, Any]:
        return {
            "epoch": epoch, "step": step, "sums": sums, "history": self.history,
            "best_map": self.best_map, "best_epoch": self.best_epoch,
            "elapsed_s": self.elapsed(), "fingerprint": self.fingerprint,
        }

    def elapsed(self) -> float:
        return self.elapsed_before + (time.monotonic() - self.session_start)

    def save_checkpoint(self, epoch: int, step: int, sums: dict[str, float]) -> None:
        from .checkpoint import save_checkpoint
        from .optim import optimizer_state

        save_checkpoint(self.files.checkpoint, self.detector, optimizer_state(self.wrapper.optimizer),
                        self.meta(epoch, step, sums))

    def write_summary(self, status: str) -> None:
        last = self.history[-1] if self.history else {}
        write_yaml(self.files.summary, {
            "status": status,
            "classes": list(self.classes),
            "images": {"train": len(self.train_samples), "val": len(self.val_samples)},
            "data": list(self.config.data),
            "labelled_copies": self.labelled_copies,
            "epochs": self.config.epochs,
            "epochs_done": len(self.history),
            "time_s": round(self.elapsed(), 1),
            "final_val_map": last.get("val_map"),
            "final_val_map_voc07": last.get("val_map07"),
            "best_val_map": self.best_map,
            "best_epoch": self.best_epoch,
            "best_model": str(self.files.best_model),
            "last_model": str(self.files.last_model),
            "layout": self.detector.spec.layout,
            "input_size": list(self.detector.spec.input_size),
            "from_model": self.config.from_model,
            "class_mask": self.use_mask,
        })

    # epochs -------------------------------------------------------------------------------

    def current_lr(self) -> float:
        return float(np.asarray(self.schedule(self.wrapper.optimizer.iterations)))

    def run_epoch(self, epoch: int, start_step: int, sums: dict[str, float]) -> str | None:
        """Train one epoch from ``start_step``. Returns "stopped" when asked to stop."""
        cfg = self.config
        steps = self.train_loader.steps_per_epoch
        bar = None
        if cfg.progress_bar:
            from tqdm import tqdm

            bar = tqdm(total=steps, initial=start_step, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
        last_save = tick = time.monotonic()
        images_this_session, seconds_this_session = 0, 0.0
        try:
            for step, batch in enumerate(self.train_loader.epoch(epoch, start_step), start=start_step):
                logs = self.wrapper.train_on_batch(batch.images, batch.targets, return_dict=True)
                loss = float(logs["loss"])
                if not math.isfinite(loss):
                    kept = (f"the last good checkpoint ({self.files.checkpoint.name}) is kept"
                            if self.files.checkpoint.exists() else "no checkpoint had been written yet")
                    raise TrainingDiverged(
                        f"the loss became {loss} at epoch {epoch + 1}, step {step + 1}; {kept}. Lower the learning "
                        f"rate (--lr, now {self.base_lr:g}), lengthen the warm-up (--warmup-epochs), or check "
                        "the data report for broken boxes")
                now = time.monotonic()
                n, l2 = batch.count, float(logs["l2"])
                for key, value in (("loss", loss - l2), ("loc", float(logs["loc"])), ("conf", float(logs["conf"])),
                                   ("l2", l2), ("images", 1.0), ("seconds", (now - tick) / n)):
                    sums[key] = sums.get(key, 0.0) + value * n
                images_this_session += n
                seconds_this_session += now - tick
                tick = now
                mean = sums["loss"] / sums["images"]
                rate = images_this_session / max(seconds_this_session, 1e-9)
                figures = {"epoch": epoch + 1, "epochs": cfg.epochs, "step": step + 1, "steps": steps,
                           "loss": round(loss - l2, 5), "epoch_loss": round(mean, 5),
                           "lr": self.current_lr(), "images_per_s": round(rate, 2)}
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{mean:.3f}", img_s=f"{rate:.1f}")
                self.progress.step(**figures)
                if self.hooks.on_step:
                    self.hooks.on_step(figures)
                stop = self.hooks.should_stop()
                due = now - last_save > 60.0 * cfg.checkpoint_minutes
                if (stop or due) and step + 1 < steps:
                    self.save_checkpoint(epoch, step + 1, sums)
                    self.progress.emit(ProgressEvent.CHECKPOINT, epoch=epoch + 1, step=step + 1)
                    last_save = tick = time.monotonic()  # saving is not training time
                if stop:
                    return "stopped" if step + 1 < steps else "stop_after_epoch"
        finally:
            if bar is not None:
                bar.close()
        return None

    def end_epoch(self, epoch: int, sums: dict[str, float]) -> None:
        """Validate, then write model files, checkpoint, log, plots, summary and progress."""
        from models.model_file import save_model

        from .plots import plot_losses, plot_map

        cfg = self.config
        images = max(sums.get("images", 0.0), 1.0)
        evaluate_now = (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs
        val_loss, result = self.validate() if evaluate_now else (None, None)
        row = {
            "epoch": epoch + 1, "lr": self.current_lr(),
            "train_loss": sums.get("loss", 0.0) / images, "train_loc": sums.get("loc", 0.0) / images,
            "train_conf": sums.get("conf", 0.0) / images, "train_l2": sums.get("l2", 0.0) / images,
            "val_loss": val_loss,
            "val_map": result.map if result else None, "val_map07": result.map07 if result else None,
            "val_ap": {c.name: c.ap for c in result.classes} if result else None,
            "images": int(sums.get("images", 0)), "seconds": round(sums.get("seconds", 0.0), 2),
            "images_per_s": round(sums.get("images", 0.0) / max(sums.get("seconds", 0.0), 1e-9), 2),
            "frozen_backbone": self.frozen,
        }
        self.history.append(row)
        save_model(self.detector, self.files.last_model)
        improved = (row["val_map"] is not None and (self.best_map is None or row["val_map"] > self.best_map))
        if improved or (not self.val_samples):
            self.best_map, self.best_epoch = row["val_map"], epoch + 1
            save_model(self.detector, self.files.best_model)
        self.save_checkpoint(epoch + 1, 0, {})
        write_log_csv(self.files.log_csv, self.history)
        plot_losses(self.history, self.files.loss_png)
        plot_map(self.history, self.files.map_png)
        self.write_summary("running" if epoch + 1 < cfg.epochs else "finished")
        shown = {k: row[k] for k in ("epoch", "train_loss", "val_loss", "val_map", "val_map07", "lr",
                                     "images_per_s", "seconds")}
        self.progress.emit(ProgressEvent.EPOCH, **shown, epochs=cfg.epochs, val_ap=row["val_ap"], best_map=self.best_map,
                           best_epoch=self.best_epoch)
        val = "" if row["val_map"] is None else (f", val loss {val_loss:.4f}, val mAP {100 * row['val_map']:.2f} "
                                                f"(VOC07 {100 * row['val_map07']:.2f})")
        self.log(f"epoch {epoch + 1}/{cfg.epochs}: train loss {row['train_loss']:.4f}{val}, "
                 f"{row['images_per_s']:.1f} img/s" + (" [best]" if improved else ""))

    # the whole run ------------------------------------------------------------------------

    def split(self, resuming: bool) -> None:
        """Fix the train/val split: computed and recorded on a fresh run, read back on resume."""
        from .split import read_split, split_samples, write_split

        if resuming:
            train_idx, val_idx, notes = read_split(self.files.root, self.samples)
            for note in notes:
                self.log(f"note: {note}")
        else:
            train_idx, val_idx = split_samples(self.samples, self.config.val_split, self.config.effective_split_seed)
            write_split(self.files.root, self.samples, train_idx, val_idx)
        self.train_samples = [self.samples[i] for i in train_idx]
        self.val_samples = [self.samples[i] for i in val_idx]
        if not self.train_samples:
            raise DataError(self.files.root, "no training images left after the split; lower --val-split or add images")
        self.fingerprint = _fingerprint(self.train_samples)

    def make_loaders(self, spec) -> int:
        """Training and validation loaders and the learning-rate schedule; returns the batch size."""
        from .augment import AugmentConfig
        from .loader import BatchLoader, source_masks
        from .optim import DEFAULT_LR
        from .schedule import WarmupDecay

        cfg = self.config
        batch_size = min(cfg.batch_size, len(self.train_samples))
        if batch_size < cfg.batch_size:
            self.log(f"note: only {len(self.train_samples)} training images, so batches of {batch_size}")
        self.masks = source_masks(self.samples, self.classes, self.use_mask, self.positive_only)
        for root, names in self.positive_only.items():
            self.log(f"{cfg.positive_only_option}: {', '.join(sorted(names)) or 'no class'} of {root} learned only "
                     "where boxed (never background there)")
        if cfg.ignore_difficult:
            known = set(self.classes)
            n = sum(int(d) for s in self.train_samples for name, d in zip(s.names, s.difficult) if name in known)
            self.log(f"--ignore-difficult: {n} training objects marked difficult are neither learned nor "
                     "taught as background")
        augment = AugmentConfig(mosaic_prob=cfg.mosaic) if cfg.augment else AugmentConfig(
            photometric=False, expand_prob=0.0, crop=False, flip_prob=0.0)
        if cfg.mosaic:
            self.log(f"--mosaic: {cfg.mosaic:.0%} of training images are four pictures of their folder in one")
        repeats = None
        if self.oversample:
            from .sampling import describe, repeat_factors

            repeats = repeat_factors(self.train_samples, self.oversample, self.classes)
            self.log(describe(self.train_samples, self.oversample, repeats))
        self.train_loader = BatchLoader(self.train_samples, self.classes, spec, batch_size, cfg.seed, augment,
                                        workers=cfg.workers, masks=self.masks, repeats=repeats,
                                        match_top_k=cfg.match_top_k, ignore_difficult=cfg.ignore_difficult)
        self.val_loader = BatchLoader(self.val_samples, self.classes, spec, min(batch_size, 16), augment_config=None,
                                      workers=cfg.workers, masks=self.masks, match_top_k=cfg.match_top_k,
                                      ignore_difficult=cfg.ignore_difficult)
        steps = self.train_loader.steps_per_epoch
        self.base_lr = cfg.lr if cfg.lr is not None else DEFAULT_LR[cfg.optimizer]
        self.schedule = WarmupDecay(self.base_lr, cfg.epochs * steps, int(round(cfg.warmup_epochs * steps)),
                                    cfg.schedule)
        return batch_size

    def restore(self) -> tuple[int, int, dict[str, float], dict[str, np.ndarray]]:
        """Load the checkpoint into the detector and the run; (epoch, step, sums, optimiser state)."""
        from .checkpoint import load_checkpoint, restore_model

        weights, opt_state, meta = load_checkpoint(self.files.checkpoint)
        restore_model(self.detector, weights, meta["model_paths"], self.files.checkpoint)
        self.history, self.best_map, self.best_epoch = meta["history"], meta["best_map"], meta["best_epoch"]
        self.elapsed_before = meta["elapsed_s"]
        if meta.get("fingerprint") != self.fingerprint:
            self.log("note: the training images changed since the run started; it continues, but will not "
                     "match an uninterrupted run exactly")
        epoch, step = meta["epoch"], meta["step"]
        epochs, steps = self.config.epochs, self.train_loader.steps_per_epoch
        where = (f"epoch {epoch + 1} of {epochs}, step {step + 1} of {steps}" if step
                 else f"the start of epoch {epoch + 1} of {epochs}")
        best = "n/a" if self.best_map is None else f"{100 * self.best_map:.2f}"
        self.log(f"resuming {self.files.root} at {where} (best val mAP so far: {best})")
        return epoch, step, meta["sums"], opt_state

    def setup(self, resuming: bool) -> tuple[int, int, dict[str, float], dict[str, np.ndarray] | None]:
        """Everything before the first step; returns where to start (epoch, step, sums, optimiser state)."""
        import keras

        from models.spec import ModelSpec

        from .config import read_recorded
        from .training_model import SSDTrainer

        cfg, files = self.config, self.files
        recorded = read_recorded(files.root) if resuming else None
        keras.config.set_dtype_policy(cfg.precision)
        use_devices(cfg.devices)
        self.read_data(recorded)
        spec = ModelSpec.from_dict(recorded["resolved"]["spec"]) if recorded else build_spec(cfg, self.classes)
        if cfg.freeze_through is not None:  # a bad name is refused before the run folder is written
            from .finetune import feature_position

            feature_position(cfg.freeze_through, spec)
        # {class: factor} of --oversample, parsed once; a class the run does not train is refused here too
        from .sampling import parse_oversample, repeat_factors

        self.oversample = parse_oversample(cfg.oversample) if cfg.oversample else {}
        repeat_factors([], self.oversample, self.classes)
        self.write_data_report(spec)
        self.split(resuming)
        # a folder's positive-only classes need the masks (they are what keeps them out of its background)
        self.use_mask = _class_mask_enabled(cfg.class_mask, self.folder_classes) or any(self.positive_only.values())
        if not resuming:
            write_yaml(files.config, {
                "settings": identity(cfg),
                "resolved": {"classes": list(self.classes), "spec": spec.to_dict(), "class_mask": self.use_mask},
            })
        batch_size = self.make_loaders(spec)
        self.detector = self.build_detector(spec, resuming)
        self.val_predictor = None  # built at the first validation
        self.wrapper = SSDTrainer(self.detector, weight_decay=cfg.weight_decay, use_class_mask=self.use_mask)
        self.history: list[dict[str, Any]] = []
        self.best_map, self.best_epoch = None, None
        self.elapsed_before, self.session_start = 0.0, time.monotonic()
        self.frozen = None
        start = self.restore() if resuming else (0, 0, {}, None)
        steps = self.train_loader.steps_per_epoch
        if not resuming:
            self.log(f"starting {files.root}: {len(self.classes)} classes ({', '.join(self.classes)}), "
                     f"{len(self.train_samples)} train / {len(self.val_samples)} val images, {cfg.epochs} epochs of "
                     f"{steps} steps (batch {batch_size}), {spec.layout} layout at {spec.input_size[0]}x{spec.input_size[1]}"
                     + (", class masks on (folders label different classes)" if self.use_mask else ""))
        self.progress.emit(ProgressEvent.START, run_dir=str(files.root), resumed=resuming, epoch=start[0], step=start[1],
                           epochs=cfg.epochs, steps_per_epoch=steps, classes=list(self.classes),
                           train_images=len(self.train_samples), val_images=len(self.val_samples))
        return start

    def run(self, resuming: bool) -> TrainResult:
        """Set up, then train epoch by epoch until the end, a stop request, or divergence."""
        from .optim import optimizer_state

        cfg, files = self.config, self.files
        start_epoch, start_step, sums, opt_state = self.setup(resuming)
        if start_epoch >= cfg.epochs:
            self.log(f"{files.root} has already finished its {cfg.epochs} epochs; nothing to do")
            self.write_summary("finished")
            return self.result("finished")
        with self.train_loader, self.val_loader:
            for epoch in range(start_epoch, cfg.epochs):
                if self.hooks.should_stop():  # asked to stop while reading data or compiling
                    return self.stopped()
                frozen = epoch < cfg.freeze_backbone_epochs
                if frozen != self.frozen:
                    state = opt_state if self.frozen is None else optimizer_state(self.wrapper.optimizer)
                    self.compile_phase(frozen, state)
                    if frozen:
                        self.log(f"backbone frozen for epochs 1-{cfg.freeze_backbone_epochs}")
                status = self.run_epoch(epoch, start_step, sums)
                if status == "stopped":
                    return self.stopped()
                self.end_epoch(epoch, sums)
                start_step, sums = 0, {}
                # a stop asked for during validation is honoured here, with the epoch's checkpoint
                if (status == "stop_after_epoch" or self.hooks.should_stop()) and epoch + 1 < cfg.epochs:
                    return self.stopped()
        self.progress.emit(ProgressEvent.DONE, best_map=self.best_map, best_epoch=self.best_epoch,
                           model=str(files.best_model), time_s=round(self.elapsed(), 1))
        best = "n/a" if self.best_map is None else f"{100 * self.best_map:.2f}"
        self.log(f"finished: best val mAP {best} at epoch {self.best_epoch}; model {files.best_model}")
        return self.result("finished")

    def stopped(self) -> TrainResult:
        message = f"stopped; resume with the same command (the checkpoint is {self.files.checkpoint})"
        self.write_summary("stopped")
        self.progress.emit(ProgressEvent.STOPPED, message=message, epochs_done=len(self.history))
        self.log(message)
        return self.result("stopped", message)

    def result(self, status: str, message: str = "") -> TrainResult:
        final = self.history[-1].get("val_map") if self.history else None
        return TrainResult(status, str(self.files.root), len(self.history), self.best_map, self.best_epoch, final,
                           message, list(self.history))


def train(config: TrainConfig, resuming: bool = False, hooks: RunHooks | None = None, log: Log = print) -> TrainResult:
    """Run (or resume) a training run described by ``config``; see the module docstring.

    Raises :class:`DataError` for unusable data or run folders, and for files that cannot be
    written (a full disk: the earlier files are kept). A diverging loss returns a result with
    status "diverged" (the last good checkpoint is kept). Temporary files a killed run left
    behind are removed first.
    """
    import keras

    config.validate()
    try:
        trainer = Trainer(config, hooks or RunHooks(), log)
    except OSError as exc:  # its folders cannot be made (read-only disk, a file in the way)
        raise DataError(exc.filename or config.out, f"cannot be created ({exc.strerror or exc}); choose another "
                                                    "--out (or --progress-jsonl)") from exc
    policy = keras.config.dtype_policy()  # the run sets its precision globally; put it back after
    distribution = keras.distribution.distribution()  # and its devices (--devices)
    with run_lock(trainer.files):
        from models.model_file import ModelFileError

        from .atomic import remove_stale_temporaries

        for stale in remove_stale_temporaries(trainer.files.root):  # left by a killed run
            log(f"note: removed {stale.name}, a partial file of an interrupted run")
        try:
            return trainer.run(resuming)
        except TrainingDiverged as exc:
            trainer.progress.emit(ProgressEvent.ERROR, message=str(exc))
            trainer.log(f"training stopped: {exc}")
            if hasattr(trainer, "history"):
                trainer.write_summary("diverged")
                return trainer.result("diverged", str(exc))
            return TrainResult("diverged", str(trainer.files.root), 0, message=str(exc))
        except (DataError, ModelFileError) as exc:  # both name the file at fault (a full disk too)
            _report_error(trainer, str(exc))
            raise
        except OSError as exc:  # a write outside the atomic writers (the progress log) failed
            error = DataError(exc.filename or trainer.files.root,
                              f"could not be written ({exc.strerror or exc}; disk full?); the files written "
                              "before are kept, and the same command resumes from the last checkpoint")
            _report_error(trainer, str(error))
            raise error from exc
        finally:
            keras.config.set_dtype_policy(policy)
            keras.distribution.set_distribution(distribution)


def use_devices(count: int) -> None:
    """Data parallelism over ``count`` devices with Keras' distribution API (JAX backend):
    variables replicated, each batch split along its first axis. The step is one SPMD program
    over the global batch, so losses, gradients and batch-norm statistics are those of the
    same batch on one device (up to the order of float sums), and the learning rate needs no
    scaling. ``count`` 1 leaves Keras as it is."""
    import keras

    if count <= 1:
        return
    if keras.backend.backend() != "jax":
        raise DataError("--devices", f"data-parallel training uses Keras' distribution API on JAX; this is the "
                                     f"{keras.backend.backend()} backend (run with KERAS_BACKEND=jax)")
    devices = keras.distribution.list_devices()
    if len(devices) < count:
        raise DataError("--devices", f"{count} devices asked, {len(devices)} found ({', '.join(map(str, devices))})")
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices[:count]))


def _report_error(trainer: Trainer, message: str) -> None:
    """Tell the progress log (the GUI reads it) why the run ended; on a full disk even that
    may fail, and the command line still reports the error itself."""
    try:
        trainer.progress.emit(ProgressEvent.ERROR, message=message)
    except OSError:
        pass

"""One training run on disk: `runs/<app>/<run-id>/`.

A `Run` owns a folder with `config.json`, per-epoch `history.csv`, `metrics.json`, learning curves, TensorBoard
logs and a resumable checkpoint. `Run.fit()` wraps `model.fit` so that every app gets, for free:

* per-epoch reshuffling that depends only on (seed, epoch), so a resumed run sees the same batches;
* a checkpoint after every completed epoch, taken after ALL callbacks of that epoch ran (weights, optimizer slots
  including a learning rate a callback lowered, RNG state, history, and the state of every stateful callback:
  plateau and early-stopping counters, kept best weights), written atomically; re-running the same command resumes
  from it exactly as if it had never stopped, and a run that stopped early stays stopped;
* one writer per run folder (an OS lock: a second process gets a one-line error);
* one graph call per epoch (`steps_per_execution="epoch"`): the same weights and losses as one call per
  batch, without Keras' per-batch Python overhead;
* a NaN/Inf guard that stops at the first bad graph call (the bad batch, or the bad epoch when a call runs
  the whole epoch), keeps the last good checkpoint and raises `TrainingDiverged` with one line naming the
  epoch and the setting;
* test-set metrics per epoch (when a test split is given), a CSV history and curves.
"""

import contextlib
import csv
import hashlib
import io
import json
import math
import sys
from pathlib import Path

import keras
import numpy as np

from tfnets import atomic
from tfnets.errors import ConfigError, DiskFull
from tfnets.experiment import checkpoint, locks
from tfnets.experiment.datasets import epoch_dataset, eval_dataset
from tfnets.experiment.fit_callbacks import Checkpointer, EpochRecorder, NanGuard
from tfnets.experiment.multi_worker import evaluate, fit_multi_worker, is_multi_worker

# Keys of a run's config.json that describe it without defining it: the devices it ran on and every flag as given.
# What defines a run is the app's declared configuration (`Config.identity()`).
VOLATILE_KEYS = {"distribution", "settings"}


def stable_config(config):
    """The part of `config` that defines what a run computes (what its id and checkpoint hash cover)."""
    return {k: v for k, v in sorted(config.items()) if k not in VOLATILE_KEYS}


def config_digest(config):
    """SHA-256 (hex) of what defines a run: the run id's suffix and the checkpoint's owner check."""
    return hashlib.sha256(json.dumps(stable_config(config), sort_keys=True, default=str).encode()).hexdigest()


def run_id_for(config):
    """A stable folder name for a config: the same command always maps to the same run (and resumes it)."""
    digest = config_digest(config)[:8]
    prefix = "quick" if config.get("quick") else f"seed{config.get('seed', 0)}"
    return f"{prefix}-{digest}"


def _progress_verbosity():
    # A progress bar on a terminal; one line per epoch in logs and CI.
    return 1 if sys.stdout.isatty() else 2


class Run:
    """A folder holding everything one training produces. Sub-runs (sweep trials) nest inside."""

    def __init__(self, path, config, read_from=None, *, trial=False, cluster_id=None):
        """`read_from`: the folder whose checkpoint a resume reads, when this process must not write there (a
        non-chief worker of a multi-worker cluster resumes from the chief's run folder, writes to its own).
        `trial`: a sweep trial's folder, always one process's alone. `cluster_id`: this process's id in a
        cluster, whose processes share every other folder (see `tfnets.experiment.locks.lock_run`)."""
        self.path = Path(path)
        self.read_from = Path(read_from) if read_from is not None else self.path
        self.path.mkdir(parents=True, exist_ok=True)
        self.trial, self.cluster_id = trial, cluster_id
        locks.lock_run(self.path, None if trial else cluster_id)
        self.config = dict(config)
        self.config_hash = config_digest(self.config)
        self.planned_epochs = None  # set by `fit`; says whether a re-run would train more (see `writing`)
        with self.writing():
            atomic.write_json(self.path / "config.json", self.config)

    # -- paths -------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self):
        return self.path / "checkpoint.npz"

    @property
    def _resume_path(self):
        return self.read_from / "checkpoint.npz"

    def child(self, name, config):
        return Run(self.path / name, config, read_from=self.read_from / name, cluster_id=self.cluster_id)

    @contextlib.contextmanager
    def writing(self):
        """Around a write of this run's files: a full disk (`DiskFull`) also says what re-running the same command
        does, from the checkpoint on disk (the one being written, if any, is not there: it is written atomically)."""
        try:
            yield
        except DiskFull as err:
            state = None if err.resume else self._checkpoint_on_disk()  # an inner `writing` has said it already
            if not state or not state["epochs_done"]:
                raise
            done = state["epochs_done"]
            if state.get("stopped") or (self.planned_epochs is not None and done >= self.planned_epochs):
                raise err.resuming(
                    f"training is done (epoch {done} is checkpointed), the re-run writes the results"
                ) from err
            raise err.resuming(f"training resumes after epoch {done}") from err

    def _checkpoint_on_disk(self):
        """The state of the checkpoint a re-run would resume from (None: none, another config's, or unreadable)."""
        try:
            with np.load(self._resume_path) as saved:
                return checkpoint.usable_state(saved, self.config_hash)[0]
        except Exception:  # noqa: BLE001 - it only words a message: an unreadable checkpoint counts as none
            return None

    # -- training ----------------------------------------------------------------------------------------
    def fit(
        self,
        model,
        train,
        valid=None,
        test=None,
        *,
        epochs,
        batch_size,
        seed=0,
        shuffle=True,
        setting="",
        callbacks=(),
        eval_batch_size=1024,
        verbose=None,
        tensorboard=True,
        steps_per_execution="epoch",
    ):
        """Train a compiled `model` on `train=(x, y)`; returns the history as a list of per-epoch dicts.

        `valid`/`test` are `(x, y)` pairs evaluated after every epoch. `setting` is a short description of
        the hyperparameters (e.g. "learning_rate=0.1"), quoted if the loss diverges.

        `steps_per_execution` is how many batches one graph call trains: `"epoch"` (all of them) or a
        divisor of the epoch's batch count (1: per-batch progress, and the NaN guard names the exact batch).
        Every value gives the same weights and history; a non-divisor would let one call run into the next
        epoch and credit its losses to the wrong one, so it is refused. The model's compiled setting is
        restored afterwards, so evaluate/predict/export see the model as the app compiled it.
        """
        self.planned_epochs = epochs
        x_train, y_train = train
        n_train = len(x_train)
        if epochs < 0:
            raise ConfigError(f"--epochs must be >= 0, got {epochs}")
        if n_train == 0:
            raise ConfigError("the training set is empty")
        if batch_size > n_train:
            raise ConfigError(f"--batch-size {batch_size} is larger than the training set ({n_train} examples)")

        steps_per_epoch = math.ceil(n_train / batch_size)
        per_call = _steps_per_call(steps_per_execution, steps_per_epoch)
        if per_call > 1 and _replicas() > 1:
            # Keras' multi-step loop fails under MirroredStrategy in TF 2.21 (a placeholder inside its while/cond
            # is left unfed); one graph call per batch trains the same weights.
            per_call = 1
        self._build_for_restore(model, x_train[:1])
        saved = self._load_checkpoint(model)
        initial_epoch, history = saved.epochs_done, saved.history
        callbacks = list(callbacks)
        if initial_epoch >= epochs or saved.stopped:
            checkpoint.set_callback_states(callbacks, saved.callback_states)  # e.g. the best weights a callback kept
            how = "stopped early" if saved.stopped and initial_epoch < epochs else f"all {epochs} epochs"
            print(f"{self.path}: {how} already trained (checkpoint, {initial_epoch} epochs); evaluating only")
            return history
        if initial_epoch:
            print(f"{self.path}: resuming after epoch {initial_epoch} of {epochs}")

        dataset = epoch_dataset(
            x_train, y_train, batch_size, seed=seed, first_epoch=initial_epoch, last_epoch=epochs, shuffle=shuffle
        )
        # Arrays handed to fit/evaluate go through Keras' own pipeline, whose parallel map TF logs a spurious
        # "NodeDef mentions attribute use_unbounded_threadpool" error for under op determinism: pass datasets.
        valid, test = (None if pair is None else eval_dataset(*pair, eval_batch_size) for pair in (valid, test))
        recorder = EpochRecorder(model, history, test, setting, self)
        all_callbacks = [NanGuard(self, setting), recorder, *callbacks]
        if tensorboard:
            all_callbacks.append(
                keras.callbacks.TensorBoard(log_dir=str(self.path / "tensorboard"), write_graph=False, profile_batch=0)
            )
        # Last, so that a checkpoint holds what every other callback did to the epoch.
        all_callbacks.append(Checkpointer(self, model, recorder, callbacks, saved.callback_states))
        verbose = _progress_verbosity() if verbose is None else verbose
        if is_multi_worker():
            fit_multi_worker(
                model,
                dataset,
                valid,
                all_callbacks,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch,
                verbose=verbose,
            )
            return recorder.history
        with _steps_per_execution(model, per_call):
            model.fit(
                dataset,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch,
                validation_data=valid,
                shuffle=False,
                callbacks=all_callbacks,
                verbose=verbose,
            )
        return recorder.history

    @staticmethod
    def _build_for_restore(model, sample):
        # Variables (weights, optimizer slots, RNG state) must exist before a checkpoint can be assigned.
        if not model.built:
            model(sample)
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)

    def save_checkpoint(self, model, epochs_done, history, callbacks=(), stopped=False):
        """Write `checkpoint.npz` (see `tfnets.experiment.checkpoint`)."""
        with self.writing():
            checkpoint.save(
                self.checkpoint_path,
                model,
                epochs_done=epochs_done,
                history=history,
                config_hash=self.config_hash,
                callbacks=callbacks,
                stopped=stopped,
            )

    def stopped_early(self):
        """Whether this run's checkpoint (of these settings) says a callback stopped training early."""
        return checkpoint.stopped_early(self._resume_path, self.config_hash)

    def restore(self, model, sample=None):
        """Load the checkpoint (if any, and if it belongs to these settings) into `model`, built first on `sample`
        (one input batch) when it is not built yet.

        Returns `(epochs_done, history)`; `(0, [])` when there is nothing to restore.
        """
        if sample is not None:
            self._build_for_restore(model, sample)
        saved = self._load_checkpoint(model)
        return saved.epochs_done, saved.history

    def _load_checkpoint(self, model):
        return checkpoint.load(self._resume_path, model, self.config_hash, self.path)

    # -- results -----------------------------------------------------------------------------------------
    def evaluate(self, model, splits, batch_size=1024):
        """`{"train_loss": .., "train_accuracy": .., "valid_loss": ..}` for the `(x, y)` pairs in `splits`."""
        results = {}
        for name, (x, y) in splits.items():
            if x is None or len(x) == 0:
                continue
            values = evaluate(model, eval_dataset(x, y, batch_size))
            results.update({f"{name}_{key}": float(value) for key, value in values.items()})
        return results

    def read_history(self):
        """The rows of `history.csv` as dicts of floats (`[]` when there is none)."""
        return read_history(self.path)

    def write_history(self, history):
        if not history:
            return
        columns = list(dict.fromkeys(key for row in history for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
        with self.writing():
            atomic.write_text(self.path / "history.csv", buffer.getvalue())

    def write_metrics(self, final, history, wall_time_s, extra=None):
        """metrics.json: final and best-epoch metrics. Everything except `timing` is deterministic."""
        metrics = {
            "final": final,
            "best": best_epoch(history),
            "epochs": len(history),
            "timing": {"wall_time_s": round(wall_time_s, 3)},
        }
        if extra:
            metrics.update(extra)
        with self.writing():
            atomic.write_json(self.path / "metrics.json", metrics)
        return metrics


def read_history(folder):
    """The rows of `<folder>/history.csv` as dicts of floats (`[]` when there is none)."""
    path = Path(folder) / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]


def best_epoch(history, monitor="val_loss"):
    """The row of the epoch with the lowest `monitor` (1-based `epoch`), renamed to split-prefixed keys."""
    rows = [row for row in history if monitor in row and np.isfinite(row[monitor])]
    if not rows:
        return {}
    row = min(rows, key=lambda r: r[monitor])
    return {"epoch": row["epoch"], **{split_key(k): v for k, v in row.items() if k not in ("epoch", "time_s")}}


def split_key(log_key):
    """Keras log names -> our names: `loss`->`train_loss`, `val_accuracy`->`valid_accuracy`."""
    if log_key.startswith("val_"):
        return "valid_" + log_key[4:]
    if log_key.startswith("test_"):
        return log_key
    return "train_" + log_key


def _replicas():
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def _steps_per_call(steps_per_execution, steps_per_epoch):
    """`"epoch"` or a divisor of `steps_per_epoch` -> batches per graph call (an int)."""
    if steps_per_execution == "epoch":
        return steps_per_epoch
    if (
        isinstance(steps_per_execution, (int, np.integer))
        and not isinstance(steps_per_execution, bool)
        and steps_per_execution >= 1
        and steps_per_epoch % steps_per_execution == 0
    ):
        return int(steps_per_execution)
    raise ConfigError(
        f"steps_per_execution must be 'epoch' or a divisor of the {steps_per_epoch} batches of an "
        f"epoch, got {steps_per_execution!r}; use --steps-per-execution epoch or 1"
    )


@contextlib.contextmanager
def _steps_per_execution(model, per_call):
    """Train `model` with `per_call` batches per graph call, then put its compiled setting back."""
    compiled = model.steps_per_execution
    if per_call == compiled:
        yield
        return
    # The count is read in Python when the train/test/predict functions are traced: drop the traced ones
    # so that Keras traces them again with the new count (and again after the restore).
    model.steps_per_execution = per_call
    model.train_function = model.test_function = model.predict_function = None
    try:
        yield
    finally:
        model.steps_per_execution = compiled
        model.train_function = model.test_function = model.predict_function = None

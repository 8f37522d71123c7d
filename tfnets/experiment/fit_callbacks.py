"""The callbacks every `Run.fit` adds around the app's own: the history recorder (with test metrics), the NaN/Inf
guard and the checkpointer, which runs last so that a checkpoint holds what every other callback did to the epoch."""

import math
import time

import keras
import numpy as np

from tfnets.errors import TrainingDiverged
from tfnets.experiment.checkpoint import set_callback_states
from tfnets.experiment.multi_worker import evaluate


class EpochRecorder(keras.callbacks.Callback):
    """Adds test metrics to the epoch's logs (so later callbacks see them) and records the history row."""

    def __init__(self, model, history, test, setting, run):
        super().__init__()
        self.history, self.test, self.setting, self.run = list(history), test, setting, run
        self._target = model
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.test is not None:
            values = evaluate(self._target, self.test)
            logs.update({f"test_{key}": float(value) for key, value in values.items()})
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in logs.items() if np.ndim(v) == 0 and k != "learning_rate"})
        bad = [k for k, v in row.items() if k.endswith("loss") and not math.isfinite(v)]
        if bad:
            # The weights after this epoch's updates are already broken: do not checkpoint them.
            raise TrainingDiverged(
                f"{bad[0]} became {row[bad[0]]} after epoch {epoch + 1} ({self.setting or 'default settings'}); "
                f"{_kept(self.run, epoch)}; try a lower learning rate"
            )
        row["time_s"] = round(time.perf_counter() - self._epoch_start, 3)
        self.history.append(row)


class Checkpointer(keras.callbacks.Callback):
    """The last callback of every fit: checkpoints the epoch once every other callback has had its say."""

    def __init__(self, run, model, recorder, callbacks, saved_states):
        super().__init__()
        self.run, self.recorder, self.callbacks, self.saved_states = run, recorder, callbacks, saved_states
        self._target = model
        self._epochs_done = None

    def on_train_begin(self, logs=None):
        # Keras' own callbacks reset their counters in on_train_begin, which has run for all of them by now.
        set_callback_states(self.callbacks, self.saved_states)

    def on_epoch_end(self, epoch, logs=None):
        self._epochs_done = epoch + 1
        self._save()

    def on_train_end(self, logs=None):
        # A callback may change the weights once training ends (EarlyStopping(restore_best_weights=True)).
        if self._epochs_done is not None:
            self._save()

    def _save(self):
        self.run.save_checkpoint(
            self._target,
            self._epochs_done,
            self.recorder.history,
            self.callbacks,
            stopped=bool(self._target.stop_training),
        )
        self.run.write_history(self.recorder.history)


class NanGuard(keras.callbacks.Callback):
    """Stops at the first graph call whose loss is NaN/Inf; the previous epoch's checkpoint stays intact.

    Keras calls the batch hooks once per graph call, with the epoch's running-mean loss (NaN from the first
    bad batch on). With one call per batch that names the batch; with several it names their range.
    """

    def __init__(self, run, setting):
        super().__init__()
        self.run, self.setting = run, setting
        self._epoch = 0
        self._first_batch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._first_batch = batch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            where = (
                f"batch {batch + 1}"
                if batch == self._first_batch
                else f"within batches {self._first_batch + 1}-{batch + 1}"
            )
            raise TrainingDiverged(
                f"loss became {float(loss)} in epoch {self._epoch + 1}, {where} "
                f"({self.setting or 'default settings'}); {_kept(self.run, self._epoch)}; try a lower learning rate"
            )


def _kept(run, epochs_done):
    if epochs_done > 0 and run.checkpoint_path.exists():
        return f"the last good checkpoint (epoch {epochs_done}) is kept in {run.checkpoint_path}"
    return "no good epoch had completed, so no checkpoint was saved"

"""Keras callbacks that survive a resume.

`Run.fit` checkpoints the state of every callback that has `get_state()` / `set_state(state)` (a dict of JSON values
and lists of NumPy arrays) after each epoch, and puts it back when the run resumes, so a resumed run behaves exactly
like one that never stopped.
"""

import keras
import numpy as np


class KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the lowest `monitor`; with `patience`, stops training after that many
    epochs without improvement. `restore_best(model)` puts the kept weights into `model` and returns their epoch
    (1-based)."""

    def __init__(self, monitor="val_loss", patience=None):
        super().__init__()
        self.monitor, self.patience = monitor, patience
        self.best, self.wait, self.best_epoch, self.best_weights = np.inf, 0, 0, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor, np.inf)
        if value < self.best:
            self.best, self.wait, self.best_epoch = float(value), 0, epoch + 1
            self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.patience is not None and self.wait >= self.patience:
            print(
                f"early stop after epoch {epoch + 1}: {self.monitor} has not improved for {self.patience} epochs "
                f"(best {self.best:.4f} at epoch {self.best_epoch})"
            )
            self.model.stop_training = True

    def restore_best(self, model):
        if self.best_weights is None:
            raise ValueError("KeepBest has seen no epoch with a finite monitored value")
        model.set_weights(self.best_weights)
        return self.best_epoch

    def get_state(self):
        return {"best": self.best, "wait": self.wait, "best_epoch": self.best_epoch, "best_weights": self.best_weights}

    def set_state(self, state):
        self.best, self.wait, self.best_epoch = state["best"], state["wait"], state["best_epoch"]
        self.best_weights = state["best_weights"]

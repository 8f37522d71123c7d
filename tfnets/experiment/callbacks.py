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


# -- callback state (checkpointed by `Run.fit`) ---------------------------------------------------------------

# Keras' built-in stateful callbacks keep their counters in plain attributes (reset by on_train_begin).
_KERAS_CALLBACK_STATE = (
    (keras.callbacks.ReduceLROnPlateau, ("best", "wait", "cooldown_counter")),
    (keras.callbacks.EarlyStopping, ("best", "wait", "best_epoch", "stopped_epoch", "best_weights")),
)


def callback_state(callback):
    """What `callback` must remember across a resume: its `get_state()` (a dict of JSON values and lists of NumPy
    arrays), the counters of Keras' ReduceLROnPlateau/EarlyStopping, or `{}` for a stateless callback."""
    if hasattr(callback, "get_state"):
        return callback.get_state()
    for cls, names in _KERAS_CALLBACK_STATE:
        if isinstance(callback, cls):
            return {name: getattr(callback, name, None) for name in names}
    return {}


def set_callback_states(callbacks, states):
    """Put saved states back into `callbacks` (the same list, in the same order, as when they were saved)."""
    if len(states) != len(callbacks):
        return  # no checkpoint, or one saved with other callbacks: start them afresh
    for callback, state in zip(callbacks, states):
        if not state:
            continue
        if hasattr(callback, "set_state"):
            callback.set_state(state)
        else:
            for name, value in state.items():
                setattr(callback, name, value)


def split_state(state):
    """`(json_part, arrays_part)`: lists of arrays (weights) go into the npz, everything else into JSON."""
    scalars, weights = {}, {}
    for key, value in state.items():
        if isinstance(value, (list, tuple)) and value and all(hasattr(a, "shape") for a in value):
            weights[key] = list(value)
        elif isinstance(value, np.generic):
            scalars[key] = value.item()
        else:
            scalars[key] = value
    return scalars, weights

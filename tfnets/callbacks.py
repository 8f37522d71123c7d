"""Keras callbacks whose state lives in a run folder (`tfnets.runs.Run`), so that a resumed run continues them."""
import keras
import numpy as np

from tfnets import atomic


class KeepBest(keras.callbacks.Callback):
    """Saves the weights of the epoch with the lowest validation loss; stops after `patience` epochs without
    improvement. State lives in the run folder (the checkpoint's history, `best.weights.npz`), so a resumed run
    continues the same count instead of starting over."""

    def __init__(self, run, patience):
        super().__init__()
        self.run, self.patience = run, patience
        self.path = run.path / "best.weights.npz"

    def on_train_begin(self, logs=None):
        history = self.run.saved_history()  # the epochs trained under these settings (checkpoint)
        losses = [row["val_loss"] for row in history]
        self.best = min(losses) if losses else np.inf
        self.wait = len(losses) - 1 - int(np.argmin(losses)) if losses else 0
        # Killed between the epoch checkpoint and this callback: the restored weights ARE the best ones.
        if losses and self.wait == 0 and self.saved_epoch() != len(losses):
            self.save(len(losses))

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss", np.inf)
        if loss < self.best:
            self.best, self.wait = loss, 0
            self.save(epoch + 1)
        else:
            self.wait += 1
            if self.wait >= self.patience:
                print(f"early stop after epoch {epoch + 1}: validation cross-entropy has not improved for "
                      f"{self.patience} epochs (best {self.best:.4f})")
                self.model.stop_training = True

    def save(self, epoch):
        with atomic.atomic_path(self.path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, *self.model.get_weights(), epoch=epoch)

    def saved_epoch(self):
        if not self.path.exists():
            return None
        with np.load(self.path) as saved:
            return int(saved["epoch"])

    def restore(self, model):
        with np.load(self.path) as saved:
            weights = [saved[f"arr_{i}"] for i in range(len(model.get_weights()))]
            epoch = int(saved["epoch"])
        model.set_weights(weights)
        return epoch

"""A CS231n-style `Solver`: minibatch training of a `tfnets.nn.models` net with any `tfnets.nn.optim` update rule.

    solver = Solver(net, {"X_train": ..., "y_train": ..., "X_val": ..., "y_val": ...},
                    update_rule="adam", optim_config={"learning_rate": 1e-3}, lr_decay=0.95,
                    batch_size=100, num_epochs=10, print_every=100)
    solver.train()
    solver.loss_history, solver.train_acc_history, solver.val_acc_history, solver.best_val_acc

Each iteration (the net's manual-gradient training pass plus the pure update rule applied to every parameter)
runs inside one `tf.function`; the update rules' state (velocity, cache, m/v/t) lives in variables so the graph
is traced once. Batches: each epoch is a permutation of the training set drawn from `(seed, epoch)` only, so a
resumed run sees the same batches. After every epoch the train accuracy (on a FIXED random subsample of
`num_train_samples`) and the val accuracy are recorded, the best-val parameters are kept (and restored into the
net at the end, batch-norm running statistics included), and with `checkpoint_path` everything needed to resume
is written atomically. A NaN/Inf loss raises `TrainingDiverged` naming the epoch and the setting.
"""

import json
import math
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfnets import atomic
from tfnets.errors import ConfigError, DiskFull, TrainingDiverged
from tfnets.nn import optim


def _keras_model(model):
    return model.as_keras_model() if hasattr(model, "as_keras_model") else model


class Solver:
    """Trains `model` (a `FullyConnectedNet`/`TwoLayerNet`) on `data` with the update rule `update_rule`.

    Args:
      model: a net with `params` and `as_keras_model()` (its `training_pass` gives loss and manual gradients).
      data: dict with `X_train` (N, ...), `y_train` (N,), `X_val`, `y_val`.
      update_rule: "sgd", "sgd_momentum", "rmsprop" or "adam" (`tfnets.nn.optim`).
      optim_config: the rule's hyperparameters (`learning_rate` plus e.g. `momentum`, `beta1`).
      lr_decay: the learning rate is multiplied by this after every epoch.
      batch_size, num_epochs: minibatch size and number of passes over the training data.
      num_train_samples: size of the fixed training subsample used for train accuracy (None: all).
      num_val_samples: validation examples used for val accuracy (None: all).
      print_every: print the loss every this many iterations (0: only per-epoch lines); verbose: print at all.
      checkpoint_path: an `.npz` file written after every epoch; `train()` resumes from it when it exists.
      seed: seeds the batch order and the train subsample.
      augment: apply the net's training-time augmentation (if it has one) to every batch.
      setting: a short description of the hyperparameters, quoted if the loss diverges.
    """

    def __init__(
        self,
        model,
        data,
        update_rule="sgd",
        optim_config=None,
        lr_decay=1.0,
        batch_size=100,
        num_epochs=10,
        num_train_samples=1000,
        num_val_samples=None,
        print_every=10,
        verbose=True,
        checkpoint_path=None,
        seed=0,
        augment=False,
        setting="",
    ):
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise ConfigError(f"Solver data is missing {', '.join(missing)}")
        optim._check_rule(update_rule)
        self.net = model
        self.model = _keras_model(model)
        self.X_train, self.y_train = np.asarray(data["X_train"]), np.asarray(data["y_train"])
        self.X_val, self.y_val = np.asarray(data["X_val"]), np.asarray(data["y_val"])
        if len(self.X_train) == 0:
            raise ConfigError("Solver: the training set is empty")
        if batch_size < 1 or batch_size > len(self.X_train):
            raise ConfigError(f"batch_size {batch_size} must be in 1..{len(self.X_train)} (the training set size)")
        if num_epochs < 0:
            raise ConfigError(f"num_epochs must be >= 0, got {num_epochs}")
        self.update_rule = update_rule
        self.optim_config = dict(optim_config or {})
        self.lr_decay = float(lr_decay)
        self.batch_size, self.num_epochs = int(batch_size), int(num_epochs)
        self.num_train_samples, self.num_val_samples = num_train_samples, num_val_samples
        self.print_every, self.verbose = print_every, verbose
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.seed, self.augment, self.setting = int(seed), bool(augment), setting
        self._reset()

    # -- state -----------------------------------------------------------------------------------------
    def _reset(self):
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params = {}
        self._best_values = None
        self.loss_history, self.train_acc_history, self.val_acc_history = [], [], []
        self.epoch_times = []
        dtype = self.model.param_dtype
        config = dict(self.optim_config)
        self.learning_rate = tf.Variable(float(config.pop("learning_rate", 1e-2)), dtype=dtype, trainable=False)
        self._hparams = config
        self.optim_state = {}
        for name, param in self.model.params.items():
            zeros = optim.init_state(self.update_rule, np.zeros(param.shape, dtype.as_numpy_dtype))
            # Adam's step count t is kept as a float scalar variable: beta ** t works on tensors.
            self.optim_state[name] = {
                k: tf.Variable(np.asarray(v, dtype.as_numpy_dtype), trainable=False) for k, v in zeros.items()
            }
        self._step_fn = None
        self._iterations = 0

    def _state_variables(self):
        """Everything that changes during training, in a fixed order (for checkpoints)."""
        variables = list(self.model.variables) + [self.learning_rate]
        for name in self.model.params:
            variables += [self.optim_state[name][k] for k in sorted(self.optim_state[name])]
        return variables

    # -- one iteration ---------------------------------------------------------------------------------
    def _build_step(self):
        model, rule, hparams = self.model, self.update_rule, self._hparams
        dtype = model.param_dtype
        params, states = model.params, self.optim_state

        # autograph=False: the step has no Python control flow on tensors, and converting its code would cost
        # about 0.4 s per model traced (every solver of a sweep traces its own step).
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, model.input_dim], dtype),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([2], tf.int32),
            ],
            autograph=False,
        )
        def train_step(x, y, step_seed):
            loss, grads, _ = model.training_pass(x, y, step_seed=step_seed, augment=self.augment)
            for name, param in params.items():
                state = {k: v.read_value() for k, v in states[name].items()}
                next_w, next_state = optim.step(
                    rule,
                    tf.convert_to_tensor(param.value),
                    grads[name],
                    state,
                    learning_rate=self.learning_rate.read_value(),
                    **hparams,
                )
                param.assign(next_w)
                for key, value in next_state.items():
                    states[name][key].assign(tf.cast(value, dtype))
            return loss

        return train_step

    def _step(self, x, y):
        if self._step_fn is None:
            self._step_fn = self._build_step()
        step_seed = np.array([self.seed, self._iterations], np.int32)
        self._iterations += 1
        x = np.asarray(x).reshape(len(x), -1).astype(self.model.param_dtype.as_numpy_dtype, copy=False)
        return float(self._step_fn(x, np.asarray(y, np.int32), step_seed))

    # -- accuracy --------------------------------------------------------------------------------------
    def check_accuracy(self, X, y, num_samples=None, batch_size=1000):
        """Fraction of `X` classified as `y` by the test-time forward pass (on `num_samples` of them)."""
        X, y = np.asarray(X), np.asarray(y)
        if num_samples is not None and len(X) > num_samples:
            index = np.random.default_rng([self.seed, 1]).choice(len(X), num_samples, replace=False)
            X, y = X[index], y[index]
        predictions = [
            np.argmax(self.predict_scores(X[i : i + batch_size]), axis=1) for i in range(0, len(X), batch_size)
        ]
        return float(np.mean(np.concatenate(predictions) == y)) if len(X) else 0.0

    def predict_scores(self, X):
        """Test-time class scores (N, C) of `X` (N, ...), through one traced graph for every batch size."""
        model = self.model
        if getattr(self, "_predict_fn", None) is None:
            spec = tf.TensorSpec([None, model.input_dim], model.param_dtype)
            self._predict_fn = tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False)
        X = np.asarray(X).reshape(len(X), -1).astype(model.param_dtype.as_numpy_dtype, copy=False)
        return self._predict_fn(X).numpy()

    # -- training loop ---------------------------------------------------------------------------------
    def train(self):
        """Run the remaining epochs (resuming from `checkpoint_path` if present); returns self."""
        self._restore_checkpoint()
        n_train = len(self.X_train)
        iterations_per_epoch = max(n_train // self.batch_size, 1)
        train_subsample = self._train_subsample()
        while self.epoch < self.num_epochs:
            started = time.perf_counter()
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n_train)
            self._iterations = self.epoch * iterations_per_epoch
            for i in range(iterations_per_epoch):
                index = order[i * self.batch_size : (i + 1) * self.batch_size]
                loss = self._step(self.X_train[index], self.y_train[index].astype(np.int32))
                if not math.isfinite(loss):
                    raise TrainingDiverged(
                        f"loss became {loss} in epoch {self.epoch + 1}, iteration {i + 1} "
                        f"({self.setting or self.update_rule}); "
                        + (
                            f"the last good checkpoint is kept in {self.checkpoint_path}"
                            if self.checkpoint_path
                            else "nothing was saved"
                        )
                        + "; try a lower learning rate"
                    )
                self.loss_history.append(loss)
                if self.verbose and self.print_every and len(self.loss_history) % self.print_every == 0:
                    print(
                        f"(Iteration {len(self.loss_history)} / {iterations_per_epoch * self.num_epochs}) "
                        f"loss: {loss:.6f}"
                    )
            self.epoch += 1
            self.learning_rate.assign(self.learning_rate * self.lr_decay)
            train_acc = self.check_accuracy(*train_subsample)
            val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples)
            self.train_acc_history.append(train_acc)
            self.val_acc_history.append(val_acc)
            self.epoch_times.append(round(time.perf_counter() - started, 3))
            if self.verbose:
                print(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:.6f}; val_acc: {val_acc:.6f}")
            if val_acc > self.best_val_acc or self._best_values is None:
                self.best_val_acc = val_acc
                self._best_values = [np.array(v.numpy()) for v in self.model.variables]
            self._save_checkpoint()
        self._restore_best()
        return self

    def _train_subsample(self):
        if self.num_train_samples is None or self.num_train_samples >= len(self.X_train):
            return self.X_train, self.y_train
        index = np.random.default_rng([self.seed, 2]).choice(len(self.X_train), self.num_train_samples, replace=False)
        return self.X_train[index], self.y_train[index]

    def _restore_best(self):
        if self._best_values is None:
            return
        for variable, value in zip(self.model.variables, self._best_values):
            variable.assign(value)
        self.best_params = {name: np.array(p.numpy()) for name, p in self.model.params.items()}

    def history(self):
        """Per-epoch rows: epoch, mean training loss of the epoch, train/val accuracy, time."""
        per_epoch = len(self.loss_history) // max(len(self.train_acc_history), 1)
        rows = []
        for e, (train_acc, val_acc) in enumerate(zip(self.train_acc_history, self.val_acc_history)):
            losses = self.loss_history[e * per_epoch : (e + 1) * per_epoch]
            rows.append(
                {
                    "epoch": e + 1,
                    "loss": float(np.mean(losses)) if losses else float("nan"),
                    "train_accuracy": train_acc,
                    "val_accuracy": val_acc,
                    "time_s": self.epoch_times[e] if e < len(self.epoch_times) else None,
                }
            )
        return rows

    # -- checkpoints -----------------------------------------------------------------------------------
    def _fingerprint(self):
        return json.dumps(
            {
                "rule": self.update_rule,
                "config": self.optim_config,
                "lr_decay": self.lr_decay,
                "batch_size": self.batch_size,
                "seed": self.seed,
                "n_train": len(self.X_train),
                "variables": [list(v.shape) for v in self._state_variables()],
            },
            sort_keys=True,
            default=str,
        )

    def _save_checkpoint(self):
        if self.checkpoint_path is None:
            return
        arrays = {f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(self._state_variables())}
        for i, value in enumerate(self._best_values or []):
            arrays[f"best{i}"] = value
        state = {
            "epoch": self.epoch,
            "fingerprint": self._fingerprint(),
            "best_val_acc": self.best_val_acc,
            "loss_history": self.loss_history,
            "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history,
            "epoch_times": self.epoch_times,
        }
        arrays["state"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
        try:
            with atomic.atomic_path(self.checkpoint_path) as tmp:
                with open(tmp, "wb") as handle:
                    np.savez(handle, **arrays)
        except DiskFull as err:
            done = self.epoch - 1  # the checkpoint on disk is the previous epoch's (or none)
            if not done:
                raise
            raise err.resuming(f"training resumes after epoch {done}") from err

    def _restore_checkpoint(self):
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            return
        with np.load(self.checkpoint_path) as saved:
            state = json.loads(bytes(saved["state"]).decode())
            if state.get("fingerprint") != self._fingerprint():
                print(f"{self.checkpoint_path}: checkpoint belongs to other settings; starting afresh")
                return
            for i, variable in enumerate(self._state_variables()):
                variable.assign(saved[f"v{i}"])
            n_best = len([k for k in saved.files if k.startswith("best")])
            self._best_values = [saved[f"best{i}"] for i in range(n_best)] or None
        self.epoch = state["epoch"]
        self.best_val_acc = state["best_val_acc"]
        self.loss_history = state["loss_history"]
        self.train_acc_history = state["train_acc_history"]
        self.val_acc_history = state["val_acc_history"]
        self.epoch_times = state["epoch_times"]
        if self.epoch:  # printed even when not verbose: a resumed run should say so
            print(f"{self.checkpoint_path}: resuming after epoch {self.epoch} of {self.num_epochs}")

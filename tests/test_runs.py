"""The run framework: history/metrics/curves on disk, deterministic resume, NaN guard, atomic writes."""

import dataclasses
import json
import types

import keras
import numpy as np
import pytest

from tfnets import atomic
from tfnets.errors import ConfigError, TrainingDiverged
from tfnets.experiment import Experiment, determinism
from tfnets.experiment.config import CommonConfig, batch_size_option
from tfnets.experiment.datasets import epoch_dataset
from tfnets.experiment.runs import Run, best_epoch


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    return x, y


def _model(learning_rate=0.05):
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.3), keras.layers.Dense(2)]
    )
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


class _KillAfter(keras.callbacks.Callback):
    """Simulates a crash right after the checkpoint of epoch `n` was written."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.n:
            raise KeyboardInterrupt


def _train(path, epochs=4, callbacks=(), learning_rate=0.05, steps_per_execution="epoch"):
    determinism.configure(7)
    model = _model(learning_rate)
    run = Run(path, {"seed": 7, "epochs": epochs})
    x, y = _data()
    history = run.fit(
        model,
        (x[:64], y[:64]),
        (x[64:80], y[64:80]),
        (x[80:], y[80:]),
        epochs=epochs,
        batch_size=16,
        seed=7,
        callbacks=callbacks,
        verbose=0,
        tensorboard=False,
        steps_per_execution=steps_per_execution,
    )
    return model, run, history


class _CountCalls(keras.callbacks.Callback):
    """Counts the batch hooks per epoch: Keras calls them once per graph call."""

    def __init__(self):
        super().__init__()
        self.per_epoch = []

    def on_epoch_begin(self, epoch, logs=None):
        self.per_epoch.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.per_epoch[-1] += 1


def _without_time(history):
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history]


def test_fit_writes_history_and_checkpoint(tmp_path):
    _, run, history = _train(tmp_path / "a")
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"} <= set(history[0])
    csv_lines = (run.path / "history.csv").read_text().strip().splitlines()
    assert len(csv_lines) == 5 and csv_lines[0].startswith("epoch,")
    assert run.checkpoint_path.exists()
    assert json.loads((run.path / "config.json").read_text())["epochs"] == 4


# The default (one graph call per epoch) throughout, and a run crashed under per-batch calls resumed under the
# default: the setting is left out of the run id, so either must continue the other exactly.
@pytest.mark.parametrize("crashed_with", ["epoch", 1])
def test_resume_after_crash_matches_uninterrupted_run(tmp_path, crashed_with):
    full_model, _, full_history = _train(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "crashed", callbacks=[_KillAfter(2)], steps_per_execution=crashed_with)
    resumed_model, _, resumed_history = _train(tmp_path / "crashed")
    assert _without_time(resumed_history) == _without_time(full_history)
    for a, b in zip(full_model.get_weights(), resumed_model.get_weights()):
        np.testing.assert_array_equal(a, b)


# One call per batch names the bad batch; one call per epoch only knows the epoch's batch range.
@pytest.mark.parametrize(
    "steps_per_execution, where", [(1, "epoch 1, batch 3 "), ("epoch", "epoch 1, within batches 1-3 ")]
)
def test_nan_loss_stops_with_one_line_and_keeps_checkpoint(tmp_path, steps_per_execution, where):
    x, y = _data()
    determinism.configure(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1.0), "mse")
    x_bad = x.copy()
    x_bad[-1, 0] = np.nan  # the last of the 3 batches of epoch 1 poisons the loss
    run = Run(tmp_path / "nan", {"seed": 0})
    with pytest.raises(TrainingDiverged) as err:
        run.fit(
            model,
            (x_bad, y.astype("float32")[:, None]),
            epochs=3,
            batch_size=32,
            seed=0,
            shuffle=False,
            setting="learning_rate=1.0",
            verbose=0,
            tensorboard=False,
            steps_per_execution=steps_per_execution,
        )
    message = str(err.value)
    assert "\n" not in message and "learning_rate=1.0" in message and "try a lower learning rate" in message
    assert message.startswith("loss became nan in " + where), message
    assert "no good epoch had completed" in message
    assert not run.checkpoint_path.exists()


class _PoisonAtEpoch(keras.callbacks.Callback):
    """Sets the output bias to NaN when epoch `epoch` (0-based) begins: that epoch's loss is NaN."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            bias = self.model.layers[-1].bias  # NaN logits: no ReLU in between that could map NaN to 0
            bias.assign(np.full(bias.shape, np.nan, "float32"))


@pytest.mark.parametrize("steps_per_execution", ["epoch", 1])
def test_nan_in_a_later_epoch_keeps_the_last_good_checkpoint(tmp_path, steps_per_execution):
    with pytest.raises(TrainingDiverged) as err:
        _train(tmp_path / "nan", epochs=4, callbacks=[_PoisonAtEpoch(2)], steps_per_execution=steps_per_execution)
    message = str(err.value)
    batch = "batch 1 " if steps_per_execution == 1 else "within batches 1-4 "  # 64 examples, batch 16
    assert message.startswith("loss became nan in epoch 3, " + batch), message
    assert "the last good checkpoint (epoch 2) is kept in" in message
    with np.load(tmp_path / "nan" / "checkpoint.npz") as saved:
        state = json.loads(bytes(saved["state"]).decode())
        assert state["epochs_done"] == 2 and all(np.isfinite(saved[k]).all() for k in saved.files if k != "state")
    assert len((tmp_path / "nan" / "history.csv").read_text().strip().splitlines()) == 1 + 2


def _bn_dropout_model():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(2),
        ]
    )
    model.compile(
        keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    return model


def _fit_bn_dropout(path, steps_per_execution):
    """3 shuffled epochs of 70 examples in batches of 16 (the 5th batch is partial)."""
    determinism.configure(7)
    model = _bn_dropout_model()
    x, y = _data(110)
    calls = _CountCalls()
    history = Run(path, {"seed": 7}).fit(
        model,
        (x[:70], y[:70]),
        (x[70:90], y[70:90]),
        (x[90:], y[90:]),
        epochs=3,
        batch_size=16,
        seed=3,
        callbacks=[calls],
        verbose=0,
        tensorboard=False,
        steps_per_execution=steps_per_execution,
    )
    return model, _without_time(history), calls.per_epoch


def test_one_graph_call_per_epoch_trains_exactly_what_one_call_per_batch_trains(tmp_path):
    # Dropout masks come from a seed variable and BatchNorm/Adam update variables in order inside the
    # graph loop, so running the 5 steps in one tf.while_loop must reproduce the per-batch run bit for bit.
    per_epoch_model, per_epoch_history, per_epoch_calls = _fit_bn_dropout(tmp_path / "a", "epoch")
    per_batch_model, per_batch_history, per_batch_calls = _fit_bn_dropout(tmp_path / "b", 1)
    assert per_epoch_calls == [1, 1, 1] and per_batch_calls == [5, 5, 5]  # the setting really took effect
    assert per_epoch_history == per_batch_history
    assert {"loss", "val_loss", "test_loss"} <= set(per_epoch_history[0])
    for a, b in zip(per_epoch_model.get_weights(), per_batch_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The model comes back as compiled: evaluate/predict on other sizes use one batch per call again.
    assert per_epoch_model.steps_per_execution == 1
    x, y = _data(37, seed=1)
    test_calls = _CountCalls()
    test_calls.on_test_begin = lambda logs=None: test_calls.per_epoch.append(0)
    test_calls.on_test_batch_end = test_calls.on_train_batch_end
    evaluated = per_epoch_model.evaluate(x, y, batch_size=8, verbose=0, callbacks=[test_calls])
    assert test_calls.per_epoch == [5]  # re-traced for one batch per call, not the stale 5-step loop
    assert evaluated == per_batch_model.evaluate(x, y, batch_size=8, verbose=0)
    assert per_epoch_model.predict(x, batch_size=8, verbose=0).shape == (37, 2)


@pytest.mark.parametrize("value", [7, 3, 0, -1, "auto", True, 2.5])
def test_steps_per_execution_must_be_epoch_or_a_divisor(tmp_path, value):
    x, y = _data(80)  # 5 batches of 16
    with pytest.raises(ConfigError, match="divisor of the 5 batches"):
        Run(tmp_path, {}).fit(
            _model(), (x, y), epochs=1, batch_size=16, verbose=0, tensorboard=False, steps_per_execution=value
        )


def test_batch_size_larger_than_data_is_a_config_error(tmp_path):
    x, y = _data(10)
    with pytest.raises(ConfigError, match="larger than the training set"):
        Run(tmp_path, {}).fit(_model(), (x, y), epochs=1, batch_size=64, verbose=0, tensorboard=False)


def test_epoch_order_depends_only_on_seed_and_epoch():
    x = np.arange(20, dtype="float32")[:, None]
    y = np.arange(20)
    full = [b[1].numpy().tolist() for b in epoch_dataset(x, y, 5, seed=3, first_epoch=0, last_epoch=3)]
    tail = [b[1].numpy().tolist() for b in epoch_dataset(x, y, 5, seed=3, first_epoch=2, last_epoch=3)]
    assert full[8:] == tail
    assert sorted(sum(full[:4], [])) == list(range(20))
    assert full[:4] != full[4:8]  # reshuffled every epoch


def test_best_epoch_picks_lowest_validation_loss():
    history = [
        {"epoch": 1, "val_loss": 0.5, "loss": 0.9},
        {"epoch": 2, "val_loss": 0.3, "loss": 0.6},
        {"epoch": 3, "val_loss": 0.4, "loss": 0.2},
    ]
    assert best_epoch(history) == {"epoch": 2, "valid_loss": 0.3, "train_loss": 0.6}


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    atomic.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text('{"a": ')  # a torn write...
            raise RuntimeError("killed")  # ...that never completes
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_experiment_trains_writes_metrics_and_exports(tmp_path):
    config = DemoConfig(seed=1, out=str(tmp_path / "runs"), export_dir=str(tmp_path / "model"), epochs=2)
    x, y = _data()
    data = types.SimpleNamespace(
        x_train=x[:64], y_train=y[:64], x_valid=x[64:80], y_valid=y[64:80], x_test=x[80:], y_test=y[80:]
    )
    with Experiment(config, "demo") as exp:
        result = exp.train(_model(), data)
    metrics = json.loads((exp.run.path / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and set(metrics["best"]) >= {"epoch", "valid_loss", "test_accuracy"}
    assert 0.0 <= metrics["final"]["test_accuracy"] <= 1.0
    assert (exp.run.path / "curves.png").stat().st_size > 1000
    assert result.final == metrics["final"]


@dataclasses.dataclass(frozen=True)
class DemoConfig(CommonConfig):
    APP = "demo"
    batch_size: int = batch_size_option(16)


def test_jit_turns_op_determinism_off_and_back():
    assert determinism.configure(0, jit=True) is True
    assert not determinism.op_determinism_enabled()
    assert determinism.configure(0, jit=False) is False
    assert determinism.op_determinism_enabled()


def test_an_app_trains_under_jit(data_dir, tmp_path, monkeypatch):
    # `--jit` must really compile the train step with XLA. Keras reads `model.jit_compile` when it builds the
    # train function and silently sets it to False while op determinism is on, so record both at that moment.
    from apps import notmnist_mlp

    built, at_build = [], []

    def spying_build_model(*args, **kwargs):
        model = real_build_model(*args, **kwargs)
        make_train_function = model.make_train_function

        def recording(force=False):
            at_build.append((model.jit_compile, determinism.op_determinism_enabled()))
            return make_train_function(force)

        model.make_train_function = recording
        built.append(model)
        return model

    real_build_model = notmnist_mlp.build_model
    monkeypatch.setattr(notmnist_mlp, "build_model", spying_build_model)
    determinism.configure(0)  # as after any earlier run in this process: op determinism on
    assert determinism.op_determinism_enabled()
    try:
        notmnist_mlp.main(
            [
                "--quick",
                "--jit",
                "--hidden-units",
                "20",
                "--data-dir",
                str(data_dir),
                "--out",
                str(tmp_path),
                "--export-dir",
                str(tmp_path / "model"),
            ]
        )
    finally:
        determinism.configure(0)  # later tests in this process expect op determinism
    (metrics,) = tmp_path.glob("notmnist_mlp/*/metrics.json")
    assert json.loads(metrics.read_text())["epochs"] == 2
    assert len(built) == 1 and built[0].jit_compile is True
    assert at_build and all(state == (True, False) for state in at_build), at_build  # XLA on, determinism off


def test_checkpoint_of_a_differently_shaped_model_is_not_restored(tmp_path, capsys):
    # Same settings (same run folder) but the network changed shape, as after a code change: start afresh
    # instead of failing to assign mismatched arrays.
    _train(tmp_path / "run", epochs=2)
    wider = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.3), keras.layers.Dense(2)]
    )
    wider.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    run = Run(tmp_path / "run", {"seed": 7, "epochs": 2})
    wider(_data()[0][:1])
    wider.optimizer.build(wider.trainable_variables)
    assert run.restore(wider) == (0, [])
    assert "checkpoint does not match this model; starting afresh" in capsys.readouterr().out


def test_a_checkpoint_of_other_settings_is_not_trusted(tmp_path, capsys):
    model, run, history = _train(tmp_path / "run", epochs=2)
    assert run.restore(model) == (2, history) and len(history) == 2
    # The same folder under other settings (e.g. after a code change): history.csv is still there from the old
    # settings, but it is not this run's history.
    other = Run(tmp_path / "run", {"seed": 7, "epochs": 2, "model": "changed"})
    assert (other.path / "history.csv").exists() and other.restore(model) == (0, [])
    assert "checkpoint belongs to other settings; starting afresh" in capsys.readouterr().out
    assert Run(tmp_path / "empty", {"seed": 7}).restore(model) == (0, [])

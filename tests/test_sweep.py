"""Sweeps: grid parsing, results table, and resuming after a kill without repeating finished trials."""

import json

import keras
import numpy as np
import pytest

from tfnets.errors import ConfigError
from tfnets.experiment import TrainResult, determinism
from tfnets.experiment.runs import Run
from tfnets.experiment.space import grid, parse_sweep
from tfnets.experiment.sweep import Sweep


def test_parse_sweep_converts_values_and_rejects_unknown_names():
    allowed = {"l2": float, "layers": json.loads}
    assert parse_sweep(["l2=0.01,0.1", "layers=[50,50],[100]"], allowed) == {
        "l2": [0.01, 0.1],
        "layers": [[50, 50], [100]],
    }
    with pytest.raises(ConfigError, match="unknown sweep parameter 'lr'; choose from l2, layers"):
        parse_sweep(["lr=0.1"], allowed)
    with pytest.raises(ConfigError, match="bad value"):
        parse_sweep(["l2=abc"], allowed)


def test_grid_varies_last_name_fastest():
    assert grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]


def _trainer(calls, crash_on=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt  # killed after the first epoch's checkpoint

    def train(values, run, epochs=None, callbacks=()):
        calls.append(values["units"])
        determinism.configure(0)
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(values["units"], activation="relu"), keras.layers.Dense(2)]
        )
        model.compile(
            "adam",
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            run_eagerly=True,  # a few tiny batches: tracing would cost more than it saves
        )
        callbacks = [*callbacks, Crash()] if values["units"] == crash_on else list(callbacks)
        history = run.fit(
            model,
            (x[:48], y[:48]),
            (x[48:], y[48:]),
            epochs=epochs or 2,
            batch_size=16,
            seed=0,
            callbacks=callbacks,
            verbose=0,
            tensorboard=False,
        )
        final = run.evaluate(model, {"train": (x[:48], y[:48]), "valid": (x[48:], y[48:])})
        return TrainResult(history, run.write_metrics(final, history, 0.0), run)

    return train


def test_killed_sweep_resumes_without_repeating_completed_trials(tmp_path):
    space = {"units": [2, 4, 8]}
    calls = []
    with pytest.raises(KeyboardInterrupt):
        Sweep(Run(tmp_path, {"seed": 0}), space).search(_trainer(calls, crash_on=4))
    assert calls == [2, 4]
    interrupted = json.loads((tmp_path / "trials" / "units=4" / "config.json").read_text())
    assert interrupted["trial"] == {"units": 4}

    calls.clear()
    rows = Sweep(Run(tmp_path, {"seed": 0}), space).search(_trainer(calls))
    assert calls == [4, 8]  # units=2 was not repeated; units=4 was finished, then units=8 ran
    assert [row["units"] for row in rows] == [2, 4, 8]
    # the interrupted trial resumed from its epoch-1 checkpoint rather than restarting
    history = (tmp_path / "trials" / "units=4" / "history.csv").read_text().strip().splitlines()
    assert len(history) == 3


def test_results_table_and_figure(tmp_path):
    sweep = Sweep(Run(tmp_path, {"seed": 0}), {"units": [2, 3]})
    sweep.search(_trainer([]))
    rows = sweep.write_outputs()
    assert {"final_valid_accuracy", "best_epoch", "best_valid_loss", "status"} <= set(rows[0])
    assert (tmp_path / "sweep_results.csv").read_text().count("\n") == 3
    assert (tmp_path / "sweep_curves.png").stat().st_size > 1000
    assert sweep.best()["trial"] in {"units=2", "units=3"}

"""KerasTuner searches: range syntax, the tuner flags, early stopping, and resuming every tuner after a kill.

Each resume test runs a search on a toy problem (a one-hidden-layer net on 48 random points), kills it in the middle
of a trial (a KeyboardInterrupt after the trial's first checkpointed epoch), runs it again, and compares with the
same search run without a kill: the same trials with the same scores, no completed trial trained again, and the
interrupted one continued from its checkpoint.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from tfnets.errors import ConfigError
from tfnets.experiment import TrainResult, determinism, tuner
from tfnets.experiment.config import SweepConfig
from tfnets.experiment.runs import Run
from tfnets.experiment.space import Range, parse_sweep
from tfnets.experiment.sweep import Sweep

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {"learning_rate": float, "units": int, "layers": json.loads}


# -- syntax --------------------------------------------------------------------------------------------------------


def test_ranges_next_to_lists():
    space = parse_sweep(["learning_rate=1e-4:1e-1:log", "units=64:1024:log2", "layers=[4],[4,4]"], ALLOWED)
    assert space == {
        "learning_rate": Range(1e-4, 0.1, "log"),
        "units": Range(64, 1024, "log", True, 2.0),
        "layers": [[4], [4, 4]],
    }
    assert parse_sweep(["learning_rate=0.3:1.0"], ALLOWED) == {"learning_rate": Range(0.3, 1.0, "linear")}
    assert parse_sweep(["learning_rate=1:8:log:int"], ALLOWED)["learning_rate"] == Range(1, 8, "log", True)
    assert isinstance(parse_sweep(["units=8:64"], ALLOWED)["units"].low, int)  # an int parameter samples ints


@pytest.mark.parametrize(
    "spec, message",
    [
        ("learning_rate=0.1:0.01", "LOW must be below HIGH"),
        ("learning_rate=0:1:log", "a log range needs LOW > 0"),
        ("learning_rate=1:2:cubic", r"expected LOW:HIGH\[:linear\|log\|logN\]\[:int\]"),
        ("learning_rate=1:2:3:4", "expected LOW:HIGH"),
        ("learning_rate=a:2", "bad range"),
        ("units=1.5:8", "an integer range needs integer ends"),
        ("units=2:8:log1", "the factor of logN must be > 1"),
        ("layers=1:2", "layers takes a list of values"),
    ],
)
def test_bad_ranges_are_one_line_errors(spec, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_sweep([spec], ALLOWED)
    assert "\n" not in str(caught.value)


@dataclasses.dataclass(frozen=True)
class ToyConfig(SweepConfig):
    APP = "toy"
    SWEEPABLE = ALLOWED


def _config(*argv):
    return ToyConfig.from_argv(list(argv))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sweep", "learning_rate=1e-4:1e-1:log"], "a grid needs lists of values, but --sweep learning_rate="),
        (["--tuner", "bayesian", "--sweep", "units=1,2"], "--tuner bayesian needs --max-trials N"),
        (["--tuner", "random", "--sweep", "units=1:4"], "--tuner random over a range needs --max-trials N"),
        (["--tuner", "hyperband", "--max-trials", "3", "--sweep", "units=1:4"], "--max-trials does not apply"),
        (["--tuner", "random", "--max-trials", "0", "--sweep", "units=1,2"], "--max-trials must be >= 1"),
        (["--trial-patience", "0", "--sweep", "units=1,2"], "--trial-patience must be >= 1"),
        (["--tuner", "hyperband", "--hyperband-factor", "1", "--sweep", "units=1:4"], "--hyperband-factor must be"),
        (["--objective", "val loss", "--sweep", "units=1,2"], "--objective expects a metric name"),
    ],
)
def test_tuner_flags_check_the_space(argv, message):
    with pytest.raises(ConfigError, match=message):
        _config(*argv)


def test_the_search_flags_are_part_of_the_run_and_give_the_sweep_its_options(tmp_path):
    assert _config().tuner == "grid" and _config().space == {}
    config = _config("--tuner", "random", "--max-trials", "2", "--sweep", "units=1,2")
    assert {"sweep": ["units=1,2"], "tuner": "random", "max_trials": 2}.items() <= config.identity().items()
    assert config.space == {"units": [1, 2]}
    options = _config("--objective", "val_accuracy").sweep_options()
    assert Sweep(Run(tmp_path, {"seed": 0}), {"units": [1]}, **options).direction == "max"


def test_ranges_become_keras_tuner_hyperparameters():
    from tfnets.experiment.tuner import hyperparameters

    hp = hyperparameters(
        parse_sweep(["learning_rate=1e-4:1e-1:log", "units=64:1024:log2", "layers=[4],[4,4]"], ALLOWED)
    )
    lr, units, layers = hp.space
    assert (type(lr).__name__, lr.min_value, lr.max_value, lr.sampling) == ("Float", 1e-4, 0.1, "log")
    assert (type(units).__name__, units.min_value, units.max_value, units.step, units.sampling) == (
        "Int",
        64,
        1024,
        2,
        "log",
    )
    assert type(layers).__name__ == "Choice" and layers.values == ["[4]", "[4, 4]"]


# -- the toy trainer -----------------------------------------------------------------------------------------------


class _Kill(keras.callbacks.Callback):
    """A kill after this call's first checkpointed epoch (or at its end when it trains only one)."""

    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1

    def on_epoch_begin(self, epoch, logs=None):
        if self.epochs:
            raise KeyboardInterrupt

    def on_train_end(self, logs=None):
        raise KeyboardInterrupt


class _Count(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


def _trainer(calls, kill_at=None, default_epochs=3):
    """`calls` gets `(trial folder, epochs trained by this call)`; the call number `kill_at` is killed."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")

    def train(values, run, epochs=None, callbacks=()):
        determinism.configure(0)
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(values.get("units", 4), activation="relu"), keras.layers.Dense(2)]
        )
        model.compile(
            keras.optimizers.SGD(values.get("learning_rate", 0.1)),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            run_eagerly=True,  # a few tiny batches: tracing would cost more than it saves
        )
        count = _Count()
        extra = [_Kill()] if len(calls) == kill_at else []
        try:
            history = run.fit(
                model,
                (x[:48], y[:48]),
                (x[48:], y[48:]),
                epochs=epochs or default_epochs,
                batch_size=16,
                seed=0,
                callbacks=[*callbacks, count, *extra],
                verbose=0,
                tensorboard=False,
            )
        finally:
            calls.append((run.path.name, count.epochs))
        final = run.evaluate(model, {"train": (x[:48], y[:48]), "valid": (x[48:], y[48:])})
        return TrainResult(history, run.write_metrics(final, history, 0.0), run)

    return train


def _table(sweep):
    return [{k: v for k, v in row.items() if k != "wall_time_s"} for row in sweep.results()]


def _trace(sweep):
    return [(number, score, values) for number, score, values in sweep.search_trace()]


def _killed_and_resumed(tmp_path, space, kill_at, **options):
    """(uninterrupted sweep, its calls, resumed sweep, calls before the kill, calls after)."""
    whole_calls, first, second = [], [], []
    whole = Sweep(Run(tmp_path / "whole", {"seed": 0}), space, **options)
    whole.search(_trainer(whole_calls))
    with pytest.raises(KeyboardInterrupt):
        Sweep(Run(tmp_path / "killed", {"seed": 0}), space, **options).search(_trainer(first, kill_at=kill_at))
    resumed = Sweep(Run(tmp_path / "killed", {"seed": 0}), space, **options)
    resumed.search(_trainer(second))
    return whole, whole_calls, resumed, first, second


def _check_resume(whole, whole_calls, resumed, first, second):
    killed_trial, killed_epochs = first[-1]
    assert killed_epochs >= 1
    assert second[0][0] == killed_trial  # the interrupted trial came back first ...
    total = {}
    for name, epochs in first + second:
        total[name] = total.get(name, 0) + epochs
    expected = {}
    for name, epochs in whole_calls:
        expected[name] = expected.get(name, 0) + epochs
    assert total == expected  # ... no epoch of any trial was trained twice, none was skipped
    assert _trace(resumed) == _trace(whole)  # the same KerasTuner trials, values and scores
    assert _table(resumed) == _table(whole)


def test_random_search_over_ranges_resumes(tmp_path):
    # Not in alphabetical order: the trial folders are named in the order of the space, whatever KerasTuner's.
    space = {"units": Range(2, 16, "log", True), "learning_rate": Range(1e-2, 1.0, "log")}
    whole, *rest = _killed_and_resumed(tmp_path, space, kill_at=2, tuner="random", max_trials=4)
    _check_resume(whole, *rest)
    assert len(whole.results()) == 4
    rates = [row["learning_rate"] for row in whole.results()]
    assert len(set(rates)) == 4 and all(1e-2 <= r <= 1.0 for r in rates)
    assert all(isinstance(row["units"], int) and 2 <= row["units"] <= 16 for row in whole.results())
    assert sorted(p.name for p in (tmp_path / "whole" / "trials").iterdir()) == sorted(
        row["trial"] for row in whole.results()
    )  # one folder per trial, each named units=..._learning_rate=...


def test_a_kill_between_a_new_trial_file_and_the_oracle_file_leaves_no_extra_trial(tmp_path, monkeypatch):
    # KerasTuner writes a new trial's trial.json, then oracle.json; a kill in between must not add a trial.
    space = {"learning_rate": Range(1e-2, 1.0, "log")}
    options = dict(tuner="random", max_trials=3, epochs=1)
    whole = Sweep(Run(tmp_path / "whole", {"seed": 0}), space, **options)
    whole.search(_trainer([]))
    save_trial = tuner.RandomOracle._save_trial

    def save_trial_then_die(self, trial):
        save_trial(self, trial)
        if trial.trial_id == "2" and trial.status == "RUNNING":
            raise KeyboardInterrupt

    monkeypatch.setattr(tuner.RandomOracle, "_save_trial", save_trial_then_die)
    with pytest.raises(KeyboardInterrupt):
        Sweep(Run(tmp_path / "killed", {"seed": 0}), space, **options).search(_trainer([]))
    monkeypatch.undo()
    resumed = Sweep(Run(tmp_path / "killed", {"seed": 0}), space, **options)
    resumed.search(_trainer([]))
    assert _trace(resumed) == _trace(whole)
    assert _table(resumed) == _table(whole)


def test_bayesian_search_resumes_after_its_gaussian_process_started(tmp_path):
    # One parameter: 3 random trials, then the Gaussian process proposes the rest; the kill hits trial 4.
    space = {"learning_rate": Range(1e-2, 1.0, "log")}
    whole, *rest = _killed_and_resumed(tmp_path, space, kill_at=3, tuner="bayesian", max_trials=5)
    _check_resume(whole, *rest)
    assert len(whole.search_trace()) == 5


def test_hyperband_continues_promoted_trials_and_resumes(tmp_path):
    # --epochs 3, factor 3: a bracket of 3 one-epoch trials whose best goes on to 3 epochs, then 2 three-epoch trials.
    space = {"learning_rate": Range(1e-2, 1.0, "log"), "units": Range(2, 16, "log", True)}
    whole, whole_calls, resumed, first, second = _killed_and_resumed(
        tmp_path, space, kill_at=3, tuner="hyperband", epochs=3, factor=3
    )
    _check_resume(whole, whole_calls, resumed, first, second)
    assert len(whole.search_trace()) == 6
    rows = whole.results()
    assert sorted(row["epochs"] for row in rows) == [1, 1, 3, 3, 3]  # the continuation trained the same folder
    assert sorted(row["stopped"] for row in rows) == ["", "", "", "hyperband", "hyperband"]
    promoted = [name for name, epochs in whole_calls if epochs == 2]
    assert len(promoted) == 1  # it went on from epoch 1 to 3, not from scratch
    assert sum(epochs for _, epochs in whole_calls) == 3 + 2 + 6


def test_grid_trials_stop_early_and_the_table_is_ranked_by_the_objective(tmp_path):
    # Learning rate 0 never improves: with patience 1 it stops after 2 of its 6 epochs.
    sweep = Sweep(
        Run(tmp_path, {"seed": 0}), {"learning_rate": [0.0, 0.5]}, epochs=6, patience=1, objective="val_accuracy"
    )
    sweep.search(_trainer([]))
    rows = sweep.write_outputs()
    frozen = next(row for row in rows if row["learning_rate"] == 0.0)
    assert (frozen["epochs"], frozen["stopped"]) == (2, "early stopping")
    ranked = (tmp_path / "sweep_results.csv").read_text().splitlines()
    objectives = [float(line.split(",")[ranked[0].split(",").index("objective")]) for line in ranked[1:]]
    assert objectives == sorted(objectives, reverse=True)  # val_accuracy: best (largest) first
    assert (tmp_path / "sweep_search.png").stat().st_size > 1000
    assert "objective: val_accuracy (maximised" in (tmp_path / "sweep_results.md").read_text()


def test_an_objective_the_trials_do_not_record_is_one_line(tmp_path):
    sweep = Sweep(Run(tmp_path, {"seed": 0}), {"units": [2]}, epochs=1, objective="val_auc")
    with pytest.raises(
        ConfigError,
        match="--objective val_auc: the trials record no such per-epoch metric; "
        "they record accuracy, loss, val_accuracy, val_loss",
    ):
        sweep.search(_trainer([]))


# -- a real kill -------------------------------------------------------------------------------------------------

_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[2])
from tests.test_search import _trainer
from tfnets.experiment.runs import Run
from tfnets.experiment.space import Range
from tfnets.experiment.sweep import Sweep
calls = []
space = {"learning_rate": Range(1e-2, 1.0, "log"), "units": Range(2, 16, "log", True)}
Sweep(Run(sys.argv[1], {"seed": 0}), space, tuner="hyperband", epochs=3).search(_trainer(calls))
"""


@pytest.mark.slow
def test_hyperband_survives_sigkill(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("KERASTUNER_")}
    command = [sys.executable, "-c", _SCRIPT, str(tmp_path / "run"), str(ROOT)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    store = tmp_path / "run" / "tuner" / "sweep"
    # Killed once KerasTuner has ended two trials (the third is then being created or trained).
    while time.monotonic() < deadline and proc.poll() is None:
        ended = [p for p in store.glob("trial_*/trial.json") if json.loads(p.read_text())["status"] == "COMPLETED"]
        if len(ended) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the search ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The same search again, in this process: it resumes from what the killed one left on disk.
    calls = []
    space = {"learning_rate": Range(1e-2, 1.0, "log"), "units": Range(2, 16, "log", True)}
    sweep = Sweep(Run(tmp_path / "run", {"seed": 0}), space, tuner="hyperband", epochs=3)
    sweep.search(_trainer(calls))
    assert len(sweep.search_trace()) == 6 and all(score is not None for _, score, _ in sweep.search_trace())
    assert sorted(row["epochs"] for row in sweep.results()) == [1, 1, 3, 3, 3]  # 11 epochs in all
    # The two trials that had ended before the kill (at least one epoch each) were not trained again.
    assert sum(epochs for _, epochs in calls) <= 11 - 2


def test_keras_tuner_clears_output_only_in_a_real_notebook(monkeypatch):
    # KerasTuner took any process that can import IPython for a notebook, and wrote escape codes into plain logs.
    import types

    from keras_tuner.src import utils

    for shell, notebook in ((None, False), (type("TerminalInteractiveShell", (), {})(), False)):
        monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda shell=shell: shell))
        tuner._clear_only_in_a_notebook()
        assert utils.IS_NOTEBOOK is notebook
    fake_display = types.ModuleType("IPython.display")
    kernel = types.SimpleNamespace(get_ipython=lambda: type("ZMQInteractiveShell", (), {})(), display=fake_display)
    monkeypatch.setitem(sys.modules, "IPython", kernel)
    monkeypatch.setitem(sys.modules, "IPython.display", fake_display)
    tuner._clear_only_in_a_notebook()
    assert utils.IS_NOTEBOOK is True
    monkeypatch.delitem(sys.modules, "IPython")
    tuner._clear_only_in_a_notebook()
    assert utils.IS_NOTEBOOK is False

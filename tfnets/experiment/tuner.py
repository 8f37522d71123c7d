"""The KerasTuner side of `tfnets.experiment.sweep`: the oracles, and a tuner that trains a function per trial.

`--tuner grid` uses `OrderedGridOracle` (KerasTuner's own `GridSearch` does not resume, keras-tuner#1055; see
`tfnets.experiment.sweep`); random, bayesian and hyperband use KerasTuner's own oracles. This module imports KerasTuner (and
with it TensorFlow), so `tfnets.experiment.sweep` imports it only when a search starts.
"""

import json
import math
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np

from tfnets import atomic
from tfnets.errors import ConfigError, TrainingDiverged
from tfnets.experiment import locks, sweep_cluster
from tfnets.experiment.space import Range
from tfnets.experiment.trials import TRIAL_FILE, objective_value


def _clear_only_in_a_notebook():
    """KerasTuner takes any process that can import IPython for a notebook (outside one `get_ipython()` is None, and
    "Terminal" is not in "NoneType"), and then "clears the notebook" at every trial's end: escape codes in a plain
    terminal or log. Decide it from the running shell instead."""
    from keras_tuner.src import utils

    try:
        import IPython

        shell = IPython.get_ipython()
    except ImportError:
        shell = None
    utils.IS_NOTEBOOK = shell is not None and "Terminal" not in type(shell).__name__
    if utils.IS_NOTEBOOK:
        from IPython import display

        utils.display = display


_clear_only_in_a_notebook()

# A diverged trial is a FAILED trial (Bayesian optimisation leaves it out of its model, Hyperband never promotes
# it); KerasTuner would end the whole search after 3 of them in a row, which a sweep of learning rates may well see.
_NO_FAILURE_LIMIT = 10**9
TUNER_KEYS = "tuner/"  # Hyperband's own hyperparameters: tuner/epochs, tuner/initial_epoch, tuner/trial_id, ...


def _write_state(path, state):
    # KerasTuner writes its JSON files in place: a kill in the middle leaves an empty oracle.json or trial.json, and
    # the next run cannot reload the search ("Expecting value: line 1 column 1"). Ours are written atomically.
    atomic.write_text(path, json.dumps(state))


class _Resumable:
    """What every oracle of a sweep adds to KerasTuner's: its files are written atomically, and it is saved once a
    trial has ended.

    KerasTuner saves the oracle BEFORE it drops the trial from the running ones; a worker never saves it again
    (only the chief owns the oracle), so oracle.json would list the last trial of every worker as running, and a
    reload would retry it."""

    @kt.synchronized
    def end_trial(self, trial):
        super().end_trial(trial)
        self.save()

    def save(self):
        _write_state(self._get_oracle_fname(), self.get_state())

    def reload(self):
        super().reload()
        # KerasTuner writes a new trial's trial.json before oracle.json: a kill in between leaves a trial the oracle
        # never recorded, and never trained. Reloaded from its file it would keep its number, so the search would go
        # on with one trial more than an uninterrupted one; dropped, the next trial takes its number (and folder).
        for trial_id in [t for t in self.trials if t not in self.start_order]:
            del self.trials[trial_id]
            (Path(self._get_trial_dir(trial_id)) / "trial.json").unlink(missing_ok=True)

    def _save_trial(self, trial):
        _write_state(Path(self._get_trial_dir(trial.trial_id)) / "trial.json", trial.get_state())


class OrderedGridOracle(_Resumable, kt.Oracle):
    """Proposes the first not-yet-tried combination of a fixed list; resumable because it keeps no cursor."""

    def __init__(self, combinations, **kwargs):
        super().__init__(max_trials=len(combinations), **kwargs)
        self.combinations = [{k: json.dumps(v) for k, v in c.items()} for c in combinations]
        for name in self.combinations[0] if self.combinations else []:
            self.hyperparameters.Choice(name, list(dict.fromkeys(c[name] for c in self.combinations)))

    def populate_space(self, trial_id):
        for values in self.combinations:
            if self._compute_values_hash(values) not in self._tried_so_far:
                return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": values}
        return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}


class RandomOracle(_Resumable, kt.oracles.RandomSearchOracle):
    pass


class BayesianOracle(_Resumable, kt.oracles.BayesianOptimizationOracle):
    """KerasTuner's Bayesian optimisation, with the random state it draws its optimiser's starting points from
    saved in oracle.json: KerasTuner re-seeds it on reload, so a resumed search would propose other values than
    one never interrupted."""

    def get_state(self):
        state = super().get_state()
        name, keys, pos, has_gauss, cached = self._random_state.get_state()
        state["random_state"] = [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]
        return state

    def set_state(self, state):
        super().set_state(state)
        if "random_state" in state:
            name, keys, pos, has_gauss, cached = state["random_state"]
            self._random_state.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


class HyperbandOracle(_Resumable, kt.oracles.HyperbandOracle):
    pass


def _plain(values):
    # KerasTuner's Choice takes one type of int, float, str or bool; anything else travels as JSON text.
    kinds = {type(v) for v in values}
    return len(kinds) == 1 and kinds <= {int, float, str, bool}


def hyperparameters(space):
    """`space` (name -> list or `Range`) as KerasTuner hyperparameters: Choice, Float or Int."""
    hp = kt.HyperParameters()
    for name, spec in space.items():
        if isinstance(spec, Range):
            kind = hp.Int if spec.integer else hp.Float
            step = None if spec.step is None else (int(spec.step) if spec.integer else spec.step)
            kind(name, spec.low, spec.high, step=step, sampling=spec.sampling)
        else:
            hp.Choice(name, list(spec) if _plain(spec) else [json.dumps(v) for v in spec])
    return hp


def make_oracle(sweep):
    objective = kt.Objective(sweep.objective, sweep.direction)
    # KerasTuner takes seed 0 for "no seed" and draws one at random: shift ours so that --seed 0 is a seed too.
    common = {"objective": objective, "seed": sweep.seed + 1, "max_consecutive_failed_trials": _NO_FAILURE_LIMIT}
    if sweep.combinations is not None:
        return OrderedGridOracle(sweep.combinations, **common)
    hp = hyperparameters(sweep.space)
    if sweep.tuner == "random":
        return RandomOracle(max_trials=sweep.max_trials, hyperparameters=hp, **common)
    if sweep.tuner == "bayesian":
        return BayesianOracle(max_trials=sweep.max_trials, hyperparameters=hp, **common)
    return HyperbandOracle(max_epochs=sweep.epochs, factor=sweep.factor, hyperparameters=hp, **common)


class _FunctionTuner(kt.engine.base_tuner.BaseTuner):
    """Runs `train_fn(values, run, epochs=..., callbacks=...)` per trial (`train_trial`); reports the objective to the
    oracle."""

    def __init__(self, oracle, sweep, train_fn, **kwargs):
        self._reloaded = False
        super().__init__(oracle, **kwargs)
        self.sweep, self.train_fn = sweep, train_fn
        self.error = None
        # KerasTuner reloads the oracle only when THIS tuner id saved a file before; a sweep started by one process
        # and continued by another (plain -> a cluster's chief, or back) must still see every trial on disk.
        oracle_file = Path(self.project_dir) / "oracle.json"
        if not self._reloaded and not self._is_worker() and oracle_file.exists():
            self.oracle.reload()

    def reload(self):
        self._reloaded = True
        super().reload()

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        _write_state(self._get_tuner_fname(), self.get_state())

    def run_trial(self, trial, *args, **kwargs):
        try:
            score = train_trial(self.sweep, self.train_fn, trial.trial_id, trial.hyperparameters.values)
        except kt.errors.FailedTrialError:
            raise
        except Exception as err:  # KerasTuner would swallow it and mark the trial invalid; we stop instead.
            self.error = err
            raise kt.errors.FatalError(str(err)) from err
        return {self.sweep.objective: score}


def decode(sweep, values):
    """A trial's hyperparameter values as the app's values: JSON-encoded choices decoded, tuner/* dropped."""
    out = {}
    for name, value in values.items():
        if name.startswith(TUNER_KEYS):
            continue
        spec = sweep.space.get(name)
        encoded = sweep.combinations is not None or (isinstance(spec, list) and not _plain(spec))
        out[name] = json.loads(value) if encoded else value
    return sweep.in_space_order(out)


def train_trial(sweep, train_fn, trial_id, raw_values):
    """Train the KerasTuner trial `trial_id` of `sweep` (its hyperparameter values `raw_values`) into its folder with
    `train_fn`; returns its objective. A diverged trial raises `FailedTrialError` (a result of the search, recorded
    in its folder); any other error propagates."""
    values = decode(sweep, raw_values)
    # Hyperband: train (or go on training) to tuner/epochs; its earlier rounds of these values trained the
    # same folder, whose checkpoint the Run resumes.
    epochs = raw_values.get("tuner/epochs", sweep.epochs)
    lock = sweep.trial_path(values) / ".lock"
    try:
        locks.acquire(lock, f"trial {lock.parent.name} is being trained by", "waiting for it")
    except ConfigError as busy:
        # Another process trains this very trial (a worker the chief gave up on, or a plain run next to a
        # cluster). Wait instead of failing: afterwards its checkpoint is complete and this only evaluates it.
        print(f"{busy}", flush=True)
        locks.acquire(lock, "", "", wait=True)
    print(f"trial {lock.parent.name}", flush=True)  # in a cluster: which worker trains what
    try:
        return _train_locked(sweep, train_fn, trial_id, values, epochs)
    finally:
        locks.release(lock)  # a trial is one process's only while it trains


def _callbacks(sweep):
    if sweep.patience is None:
        return []
    return [keras.callbacks.EarlyStopping(monitor=sweep.objective, mode=sweep.direction, patience=sweep.patience)]


def _train_locked(sweep, train_fn, trial_id, values, epochs):
    run = sweep.trial_run(values)
    try:
        result = train_fn(values, run, epochs=epochs, callbacks=_callbacks(sweep))
    except TrainingDiverged as err:
        # A diverging setting is a result of the sweep, not a reason to abort it.
        run.write_metrics({}, [], 0.0, extra={"status": "diverged", "message": str(err)})
        _record(run, trial_id, values, epochs, [], None)
        print(f"trial {run.path.name} diverged: {err}")
        raise kt.errors.FailedTrialError(str(err)) from None
    # Only the epochs this trial asked for count (a folder may hold more: the same values trained further).
    history = [row for row in result.history if epochs is None or row["epoch"] <= epochs]
    score = objective_value(history, sweep.objective, sweep.direction)
    if score is None:
        names = sorted({k for row in history for k in row} - {"epoch", "time_s"})
        raise ConfigError(
            f"--objective {sweep.objective}: the trials record no such per-epoch "
            f"metric; they record {', '.join(names) or 'none'}"
        )
    _record(run, trial_id, values, epochs, history, score)
    return score


def _record(run, trial_id, values, epochs, history, score):
    """`<trial>/sweep_trial.json`: the values, the KerasTuner trials that trained this folder, the epochs asked
    for and run, whether training stopped early, and the objective."""
    path = run.path / TRIAL_FILE
    before = json.loads(path.read_text()) if path.exists() else {}
    trial_ids = sorted(set(before.get("trial_ids", [])) | {trial_id})
    atomic.write_json(
        path,
        {
            "values": values,
            "trial_ids": trial_ids,
            "epochs_asked": epochs,
            "epochs": len(history),
            "stopped_early": run.stopped_early(),
            "objective": score if score is None or math.isfinite(score) else None,
        },
    )


def _tuner(sweep, train_fn):
    return _FunctionTuner(
        make_oracle(sweep),
        sweep,
        train_fn,
        directory=str(sweep.run.path / "tuner"),
        project_name=sweep.name,
        overwrite=False,
    )


def run_search(sweep, train_fn):
    """Run every trial of `sweep` (a `tfnets.experiment.sweep.Sweep`) not completed on disk, in this process;
    re-raises a trial's error."""
    if sweep_cluster.tuner_id() is not None:
        raise ConfigError(
            f"{sweep_cluster.tuner_id()}: a cluster shares the searches its command declares in a Plan "
            "(tfnets.experiment.plan); this one was started outside it"
        )
    tuner = _tuner(sweep, train_fn)
    try:
        tuner.search()
    except kt.errors.FatalError:
        if tuner.error is not None:
            raise tuner.error from None
        raise


def chief_oracle(sweep):
    """`sweep`'s oracle for a cluster's chief: reloaded from `<run>/tuner/<name>/` (trials a plain run or an earlier
    launch ended stay ended, interrupted ones are handed out again) and saved there as trials end."""
    tuner = _tuner(sweep, None)
    tuner.save()
    return tuner.oracle

"""The KerasTuner side of `tfnets.experiment.sweep`: an oracle that resumes exhaustive grids, and a tuner that trains a function.

KerasTuner's own `GridSearch` does not resume (keras-tuner#1055); see `tfnets.experiment.sweep` for the design. This module
imports KerasTuner (and with it TensorFlow), so `tfnets.experiment.sweep` imports it only when a search starts.
"""
import json
from pathlib import Path

import keras_tuner as kt

from tfnets.experiment import locks, sweep_cluster
from tfnets.errors import ConfigError, TfnetsError, TrainingDiverged
from tfnets.experiment.runs import best_epoch


class OrderedGridOracle(kt.Oracle):
    """Proposes the first not-yet-tried combination of a fixed list; resumable because it keeps no cursor."""

    def __init__(self, combinations, **kwargs):
        super().__init__(objective=kt.Objective("val_loss", "min"), max_trials=len(combinations), **kwargs)
        self.combinations = [{k: json.dumps(v) for k, v in c.items()} for c in combinations]
        for name in self.combinations[0] if self.combinations else []:
            self.hyperparameters.Choice(name, list(dict.fromkeys(c[name] for c in self.combinations)))

    @kt.synchronized
    def end_trial(self, trial):
        super().end_trial(trial)
        # KerasTuner saves the oracle BEFORE it drops the trial from the running ones; a worker never saves it
        # again (only the chief owns the oracle), so oracle.json would list the last trial of every worker as
        # running, and a reload would retry it.
        self.save()

    def populate_space(self, trial_id):
        for values in self.combinations:
            if self._compute_values_hash(values) not in self._tried_so_far:
                return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": values}
        return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}


class _FunctionTuner(kt.engine.base_tuner.BaseTuner):
    """Runs `train_fn(values, run)` per trial; reports the best validation loss to the oracle."""

    def __init__(self, oracle, sweep, train_fn, **kwargs):
        self._reloaded = False
        super().__init__(oracle, **kwargs)
        self.sweep, self.train_fn = sweep, train_fn
        self.error = None
        # KerasTuner reloads the oracle only when THIS tuner id saved a file before; a sweep started by one process
        # and continued by another (plain -> distributed chief, or back) must still see every trial on disk.
        oracle_file = Path(self.project_dir) / "oracle.json"
        if not self._reloaded and not self._is_worker() and oracle_file.exists():
            self.oracle.reload()

    def reload(self):
        self._reloaded = True
        super().reload()

    def run_trial(self, trial, *args, **kwargs):
        values = {k: json.loads(v) for k, v in trial.hyperparameters.values.items()}
        lock = self.sweep.trial_path(values) / ".lock"
        try:
            locks.acquire(lock, f"trial {lock.parent.name} is being trained by", "waiting for it")
        except ConfigError as busy:
            # Another process trains this very trial (a worker the chief gave up on, or a plain run next to a
            # cluster). Wait instead of failing: afterwards its checkpoint is complete and this only evaluates it.
            print(f"{busy}", flush=True)
            locks.acquire(lock, "", "", wait=True)
        print(f"trial {lock.parent.name}", flush=True)  # in a distributed sweep: which worker trains what
        try:
            return self._run_locked(values)
        finally:
            locks.release(lock)  # a trial is one process's only while it trains

    def _run_locked(self, values):
        run = self.sweep.trial_run(values)
        try:
            result = self.train_fn(values, run)
        except TrainingDiverged as err:
            # A diverging setting is a result of the sweep, not a reason to abort it.
            run.write_metrics({}, [], 0.0, extra={"status": "diverged", "message": str(err)})
            print(f"trial {run.path.name} diverged: {err}")
            return {"val_loss": float("inf")}
        except TfnetsError as err:
            self.error = err
            raise kt.errors.FatalError(str(err)) from err
        except Exception as err:  # KerasTuner would swallow it and mark the trial invalid; we stop instead.
            self.error = err
            raise kt.errors.FatalError(str(err)) from err
        best = best_epoch(result.history)
        return {"val_loss": float(best.get("valid_loss", result.final.get("valid_loss", float("inf"))))}


def run_search(sweep, train_fn):
    """Run every trial of `sweep` (a `tfnets.experiment.sweep.Sweep`) not completed on disk; re-raises a trial's error.

    In a distributed sweep (`tfnets.experiment.sweep_cluster`) this process is the chief or one worker: it serves the oracle
    or trains the trials it is given, then prints one line and EXITS (status 0) when none is left.
    """
    name = sweep_cluster.tuner_id()
    oracle = OrderedGridOracle(sweep.combinations, seed=sweep.seed)
    tuner = _FunctionTuner(oracle, sweep, train_fn, directory=str(sweep.run.path / "tuner"),
                           project_name=sweep.name, overwrite=False)
    if name is not None and sweep_cluster.is_chief():
        tuner.save()
        sweep_cluster.serve(tuner.oracle)
    else:
        if name is not None:
            sweep_cluster.bound_client_timeout()
        _search(tuner)
    if name is not None:
        print(f"{name}: no trials left", flush=True)
        raise SystemExit(0)


def _search(tuner):
    try:
        tuner.search()
    except kt.errors.FatalError:
        if tuner.error is not None:
            raise tuner.error from None
        raise
    except Exception as err:
        if sweep_cluster.tuner_id() is None:
            raise
        import grpc  # a worker's requests to its chief fail as gRPC errors

        if not isinstance(err, grpc.RpcError):
            raise
        raise sweep_cluster.unreachable(err) from None

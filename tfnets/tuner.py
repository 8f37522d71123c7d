"""The KerasTuner side of `tfnets.sweep`: an oracle that resumes exhaustive grids, and a tuner that trains a function.

KerasTuner's own `GridSearch` does not resume (keras-tuner#1055); see `tfnets.sweep` for the design. This module
imports KerasTuner (and with it TensorFlow), so `tfnets.sweep` imports it only when a search starts.
"""
import json

import keras_tuner as kt

from tfnets.errors import TfnetsError, TrainingDiverged
from tfnets.runs import best_epoch


class OrderedGridOracle(kt.Oracle):
    """Proposes the first not-yet-tried combination of a fixed list; resumable because it keeps no cursor."""

    def __init__(self, combinations, **kwargs):
        super().__init__(objective=kt.Objective("val_loss", "min"), max_trials=len(combinations), **kwargs)
        self.combinations = [{k: json.dumps(v) for k, v in c.items()} for c in combinations]
        for name in self.combinations[0] if self.combinations else []:
            self.hyperparameters.Choice(name, list(dict.fromkeys(c[name] for c in self.combinations)))

    def populate_space(self, trial_id):
        for values in self.combinations:
            if self._compute_values_hash(values) not in self._tried_so_far:
                return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": values}
        return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}


class _FunctionTuner(kt.engine.base_tuner.BaseTuner):
    """Runs `train_fn(values, run)` per trial; reports the best validation loss to the oracle."""

    def __init__(self, oracle, sweep, train_fn, **kwargs):
        super().__init__(oracle, **kwargs)
        self.sweep, self.train_fn = sweep, train_fn
        self.error = None

    def run_trial(self, trial, *args, **kwargs):
        values = {k: json.loads(v) for k, v in trial.hyperparameters.values.items()}
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
    """Run every trial of `sweep` (a `tfnets.sweep.Sweep`) not completed on disk; re-raises a trial's error."""
    oracle = OrderedGridOracle(sweep.combinations, seed=sweep.seed)
    tuner = _FunctionTuner(oracle, sweep, train_fn, directory=str(sweep.run.path / "tuner"),
                           project_name=sweep.name, overwrite=False)
    try:
        tuner.search()
    except kt.errors.FatalError:
        if tuner.error is not None:
            raise tuner.error from None
        raise

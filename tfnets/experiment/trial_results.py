"""A finished search's trials as `TrainResult`s: what an app's `run` hands back for a study's parts.

A trial trained by this process comes back as its train function returned it (with the model); a trial a resumed
command found finished is read from its folder (history.csv, metrics.json; no model).
"""

from tfnets.experiment import TrainResult
from tfnets.experiment.headline import read_json
from tfnets.experiment.space import trial_name


def finished_trials(sweep, trained=None):
    """`{trial folder name: TrainResult}` of every completed trial of `sweep`, in the order the search tried them.

    `trained`: `{trial folder name: TrainResult}` of the trials this process trained (they keep their models).
    """
    from tfnets.experiment.runs import read_history

    trained = trained or {}
    results = {}
    for values in sweep.tried():
        name = trial_name(values)
        metrics = read_json(sweep.trial_path(values) / "metrics.json")
        if metrics is None or metrics.get("status", "completed") != "completed":
            continue
        results[name] = trained.get(name) or TrainResult(
            read_history(sweep.trial_path(values)), metrics, sweep.trial_run(values)
        )
    return results

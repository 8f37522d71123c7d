"""What a sweep's trial leaves on disk beside its run folder, shared by the writer (`tfnets.experiment.tuner`) and the
reader (`tfnets.experiment.sweep`'s tables), so that neither imports the other's side."""

import math

# Written by the tuner into each trial folder once the trial has trained: its KerasTuner trial ids, values, the
# epochs asked and whether a callback stopped it early.
TRIAL_FILE = "sweep_trial.json"


def objective_value(history, objective, direction):
    """The best value of `objective` over the epochs of `history` (list of rows); None when it has none."""
    values = [row[objective] for row in history if objective in row and math.isfinite(row[objective])]
    if not values:
        return None
    return max(values) if direction == "max" else min(values)

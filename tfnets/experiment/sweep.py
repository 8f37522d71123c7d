"""Hyperparameter sweeps on KerasTuner, resumable after a kill.

    --sweep l2=0.01,0.1,0.5 --sweep keep_prob=0.9,0.5      (grid: every combination, last name fastest)
    --sweep-mode random --max-trials 4                      (a seeded random subset of the grid)

KerasTuner's own `GridSearch` does not resume (keras-tuner#1055): its oracle keeps ordering state that a
reload loses. `OrderedGridOracle` (in `tfnets.experiment.tuner`) instead derives the next trial from the trials already on disk: it proposes
the first combination (in a fixed, seeded order) that has not been tried. On reload KerasTuner re-queues the
trial that was running when the process died, and that trial's own `Run` checkpoint resumes it mid-training,
so completed trials are never repeated and the interrupted one loses at most one epoch.

Every trial is a `Run` in `<run>/trials/<name>/` (config, history, metrics, curves, checkpoint); the sweep's
results table (markdown + CSV) and one overlay figure are built from those folders.

The same sweep runs over several processes in KerasTuner's distributed mode (`tfnets.experiment.sweep_cluster`, launched by
`python -m tfnets.experiment.launch --workers N -- <command>`): the chief serves the oracle, workers train trials.

Apps build their parsers with this module, so it imports no KerasTuner, Keras or TensorFlow itself: the
KerasTuner classes live in `tfnets.experiment.tuner`, imported when a search starts.
"""
import json
import re

import numpy as np

from tfnets.errors import ConfigError
from tfnets.experiment.plots import plot_overlay
from tfnets.experiment.report import markdown_table, write_csv


def add_sweep_arguments(parser, allowed):
    """`--sweep NAME=V1,V2,...` (repeatable), `--sweep-mode`, `--max-trials`; `allowed` maps name -> type."""
    group = parser.add_argument_group("sweeps")
    group.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2",
                       help=f"sweep a hyperparameter over values; names: {', '.join(sorted(allowed))}")
    group.add_argument("--sweep-mode", choices=("grid", "random"), default="grid")
    group.add_argument("--max-trials", type=int, default=None, help="cap the number of trials (random mode)")
    return group


def parse_sweep(specs, allowed):
    """`["l2=0.01,0.1"]` -> `{"l2": [0.01, 0.1]}`; unknown names and bad values raise one-line `ConfigError`s."""
    space = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ConfigError(f"--sweep expects NAME=V1,V2,..., got {spec!r}")
        if name not in allowed:
            raise ConfigError(f"unknown sweep parameter {name!r}; choose from {', '.join(sorted(allowed))}")
        convert = allowed[name]
        try:
            space[name] = [convert(v.strip()) for v in _split_values(values)]
        except (ValueError, TypeError) as err:
            raise ConfigError(f"bad value in --sweep {spec!r}: {err}") from None
    return space


def _split_values(text):
    # Commas inside brackets belong to one value: "layers=[50,50],[100]".
    return [part for part in re.split(r",(?![^\[]*\])", text) if part.strip()]


def trial_name(values):
    text = ",".join(f"{k}={json.dumps(v, separators=(',', ''))}" for k, v in values.items())
    return re.sub(r"[^A-Za-z0-9=,._+-]", "", text.replace(",", "_").replace(":", "-")) or "default"


def grid(space):
    """All combinations of `space` (dict name -> values), last name varying fastest."""
    combos = [{}]
    for name, values in space.items():
        combos = [{**c, name: v} for c in combos for v in values]
    return combos


class Sweep:
    """A grid or random search over `space`, stored under `<run>/trials/` and `<run>/tuner/`."""

    def __init__(self, run, space, *, mode="grid", max_trials=None, seed=0, name="sweep"):
        if not space:
            raise ConfigError("the sweep has no parameters; pass --sweep NAME=V1,V2")
        self.run, self.space, self.name = run, dict(space), name
        combos = grid(self.space)
        if mode == "random":
            order = np.random.default_rng(seed).permutation(len(combos))
            combos = [combos[i] for i in order]
        elif mode != "grid":
            raise ConfigError(f"unknown sweep mode {mode!r}; use grid or random")
        if max_trials is not None:
            if max_trials < 1:
                raise ConfigError(f"--max-trials must be >= 1, got {max_trials}")
            combos = combos[:max_trials]
        self.combinations = combos
        self.seed = seed

    def trial_path(self, values):
        return self.run.path / "trials" / trial_name(values)

    def trial_run(self, values):
        from tfnets.experiment.runs import Run

        return Run(self.trial_path(values), {**self.run.config, "trial": values}, trial=True)

    def search(self, train_fn):
        """Run every remaining trial; `train_fn(values, run) -> TrainResult`. Returns `self.results()`.

        In a distributed sweep (`tfnets.experiment.sweep_cluster`) this process is the chief or one worker: it serves the
        oracle or trains the trials it is given, then prints one line and EXITS (status 0) when none is left.
        """
        from tfnets.experiment.tuner import run_search

        run_search(self, train_fn)
        return self.results()

    def results(self):
        """One row per combination whose trial finished: its values, final and best metrics, status."""
        rows = []
        for values in self.combinations:
            path = self.trial_path(values) / "metrics.json"
            if not path.exists():
                continue
            metrics = json.loads(path.read_text())
            row = {"trial": trial_name(values), **values, "status": metrics.get("status", "completed")}
            row.update({f"final_{k}": v for k, v in metrics.get("final", {}).items()})
            row.update({f"best_{k}": v for k, v in metrics.get("best", {}).items()
                        if k == "epoch" or k.startswith(("valid_", "test_"))})
            row["wall_time_s"] = metrics.get("timing", {}).get("wall_time_s")
            rows.append(row)
        return rows

    def histories(self):
        out = {}
        for values in self.combinations:
            path = self.trial_path(values) / "history.csv"
            if path.exists():
                import csv

                with open(path) as handle:
                    out[", ".join(f"{k}={v}" for k, v in values.items())] = [
                        {k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]
        return out

    def write_outputs(self, report=None, heading=None, metrics=("val_loss", "val_accuracy")):
        """results.md + results.csv + curves overlay under `<run>/<name>_*`; adds them to `report`."""
        rows = self.results()
        write_csv(self.run.path / f"{self.name}_results.csv", rows)
        table = markdown_table(rows)
        figure = plot_overlay(self.histories(), self.run.path / f"{self.name}_curves.png", metrics=metrics,
                              title=heading or self.name)
        if report is not None:
            report.add(heading or f"Sweep {self.name}", table)
            report.add_image(f"{heading or self.name}: curves", figure)
        return rows

    def best(self, key="best_valid_loss"):
        rows = [r for r in self.results() if r.get("status") == "completed" and key in r]
        return min(rows, key=lambda r: r[key]) if rows else None

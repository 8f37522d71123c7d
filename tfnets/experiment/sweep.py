"""Hyperparameter searches on KerasTuner, resumable after a kill.

    --sweep l2=0.01,0.1,0.5 --sweep keep_prob=0.9,0.5      (lists: a grid, every combination, last name fastest)
    --tuner random --max-trials 4                           (a seeded random subset of the grid)
    --tuner bayesian --max-trials 12 --sweep learning_rate=1e-4:1e-1:log --sweep keep_prob=0.3:1.0
    --tuner hyperband --sweep units=64:1024:log2:int        (KerasTuner's Hyperband, --epochs at most per trial)

The grammar is `tfnets.experiment.space`'s, the flags `tfnets.experiment.config.SweepConfig`'s. A value list becomes a
`hp.Choice`; a range `LOW:HIGH[:SCALE][:int]` becomes `hp.Float` (or `hp.Int` for an integer
parameter or with `:int`), sampled uniformly (`linear`, the default) or log-uniformly (`log`); `logN` (e.g. `log2`)
samples only LOW * N^k (`step=N` in KerasTuner). Ranges need a tuner that samples: `random`, `bayesian` or
`hyperband`; a grid needs lists.

`--tuner grid` (the default) uses `OrderedGridOracle` (in `tfnets.experiment.tuner`): KerasTuner's own `GridSearch` does not
resume (keras-tuner#1055), so this oracle derives the next trial from the trials already on disk. The other tuners
are KerasTuner's own oracles (`RandomSearchOracle`, `BayesianOptimizationOracle`, `HyperbandOracle`), which reload
their state from `<run>/tuner/<name>/`. After a kill KerasTuner re-queues the trial that was running, and that
trial's own `Run` checkpoint resumes it mid-training, so completed trials are never repeated and the interrupted
one loses at most one epoch. `--tuner random` over lists only walks the grid in a seeded random order (no repeats).

Every trial is a `Run` in `<run>/trials/<name>/`, named by its hyperparameter values (config, history, metrics,
curves, checkpoint). Hyperband continues a promising trial for more epochs as a new KerasTuner trial with the same
values: it lands in the same folder, and the `Run` resumes from that folder's checkpoint. `--trial-patience N` stops a
trial whose objective has not improved for N epochs (Keras' `EarlyStopping`; a stopped trial stays stopped).

The sweep's results table (markdown + CSV, sorted by the objective) and its figures are built from those folders
and from KerasTuner's trial store.

An app declares its sweeps in its command's `tfnets.experiment.plan.Plan`; a cluster (`tfnets-launch --workers N --
<command>`, `tfnets.experiment.plan_cluster`) then serves each sweep's oracle, whatever its kind, from its chief, and
its workers train the trials.

This module imports no KerasTuner, Keras or TensorFlow itself: the KerasTuner classes live in
`tfnets.experiment.tuner`, imported when a search starts.
"""

import json
import math

import numpy as np

from tfnets import atomic
from tfnets.errors import ConfigError, ModelError
from tfnets.experiment.plots import plot_overlay, plot_search
from tfnets.experiment.report import markdown_table, write_csv
from tfnets.experiment.space import (
    DEFAULT_FACTOR,
    DEFAULT_OBJECTIVE,
    Range,
    check_search,
    grid,
    parse_objective,
    trial_name,
)
from tfnets.experiment.trials import TRIAL_FILE, objective_value


class Sweep:
    """A search over `space` (name -> list or `Range`), stored under `<run>/trials/` and `<run>/tuner/`.

    `epochs`: the epochs of one trial (Hyperband's most); None lets the train function use its own default.
    `objective`: a per-epoch metric name (Keras log names: `val_loss`, `val_accuracy`), `NAME:max` to maximise.
    `patience`: stop a trial when the objective has not improved for that many epochs.
    """

    def __init__(
        self,
        run,
        space,
        *,
        epochs=None,
        tuner="grid",
        max_trials=None,
        seed=0,
        name="sweep",
        objective=DEFAULT_OBJECTIVE,
        patience=None,
        factor=DEFAULT_FACTOR,
    ):
        if not space:
            raise ConfigError("the sweep has no parameters; pass --sweep NAME=V1,V2")
        check_search(space, tuner, max_trials, patience, factor)
        if tuner == "hyperband" and not epochs:
            raise ConfigError("--tuner hyperband needs the epochs of a trial (its most) to be >= 1")
        self.run, self.space, self.name = run, dict(space), name
        self.tuner, self.max_trials, self.seed, self.epochs = tuner, max_trials, seed, epochs
        self.objective, self.direction = parse_objective(objective)
        self.patience, self.factor = patience, factor
        self.combinations = None  # the fixed list of trials of a grid (or of a random walk over lists)
        if tuner == "grid" or (tuner == "random" and not self.ranges()):
            combos = grid(self.space)
            if tuner == "random":
                order = np.random.default_rng(seed).permutation(len(combos))
                combos = [combos[i] for i in order]
            self.combinations = combos[:max_trials] if max_trials is not None else combos

    def in_space_order(self, values):
        """`values` with its names in the order of the space (it names the trial's folder); JSON files and
        KerasTuner's trials may hold them sorted."""
        return {**{k: values[k] for k in self.space if k in values}, **values}

    def ranges(self):
        return {k: v for k, v in self.space.items() if isinstance(v, Range)}

    def trial_path(self, values):
        return self.run.path / "trials" / trial_name(values)

    def trial_run(self, values):
        from tfnets.experiment.runs import Run

        return Run(self.trial_path(values), {**self.run.config, "trial": values}, trial=True)

    def restore_trial(self, values, model, sample):
        """Load the finished trial `values`' last checkpoint (weights and optimizer state) into a freshly built
        `model` (built on `sample`, one input batch); a one-line `ModelError` when it has none."""
        run = self.trial_run(values)
        epochs_done, _ = run.restore(model, sample)
        if epochs_done == 0:
            raise ModelError(f"no usable checkpoint in {run.path}; delete that folder and re-run the command")
        return model

    def search(self, train_fn):
        """Run every remaining trial; returns `self.results()`.

        `train_fn(values, run, epochs=None, callbacks=()) -> TrainResult` trains `run` to `epochs` epochs in all
        (None: the app's own number; Hyperband asks for more epochs of a trial it continues, and `run` resumes from
        its checkpoint) and passes `callbacks` (early stopping) to `Run.fit`.

        In this process; inside a cluster a search is its plan's (`tfnets.experiment.plan`), and this raises.
        """
        from tfnets.experiment.tuner import run_search

        run_search(self, train_fn)
        return self.results()

    # -- results -------------------------------------------------------------------------------------------------
    def tried(self):
        """The values of every trial that has a folder, in the order the search first tried them."""
        if self.combinations is not None:
            return [values for values in self.combinations if self.trial_path(values).exists()]
        found = []
        for path in (self.run.path / "trials").glob(f"*/{TRIAL_FILE}"):
            record = json.loads(path.read_text())
            found.append((min(record["trial_ids"]), self.in_space_order(record["values"])))
        return [values for _, values in sorted(found, key=lambda item: item[0])]

    def table_order(self):
        """`tried()` in the order an app's own table lists them: a grid's order for a grid, else best first."""
        if self.tuner == "grid":
            return self.tried()
        ranked = [row["trial"] for row in self.ranked()]
        position = {name: i for i, name in enumerate(ranked)}
        return sorted(self.tried(), key=lambda v: position.get(trial_name(v), len(ranked)))

    def results(self):
        """One row per trial that finished, in trial order: its values, epochs, whether it was stopped before its
        epochs, the objective (best epoch), final and best metrics, status."""
        rows = []
        for values in self.tried():
            path = self.trial_path(values)
            if not (path / "metrics.json").exists():
                continue
            metrics = json.loads((path / "metrics.json").read_text())
            record = json.loads((path / TRIAL_FILE).read_text()) if (path / TRIAL_FILE).exists() else {}
            row = {
                "trial": trial_name(values),
                **values,
                "status": None,
                "epochs": None,
                "stopped": self._stopped(record, metrics),
                "objective": objective_value(_read_history(path), self.objective, self.direction),
            }
            row.update(flat_metrics(metrics))  # (status and epochs keep their places)
            rows.append(row)
        return rows

    def _stopped(self, record, metrics):
        asked = record.get("epochs_asked") or self.epochs
        if record.get("stopped_early") and (asked is None or (metrics.get("epochs") or 0) < asked):
            return "early stopping"  # (a trial stopped in its last epoch still ran all of them)
        if (
            self.tuner == "hyperband"
            and metrics.get("status", "completed") == "completed"
            and (metrics.get("epochs") or 0) < self.epochs
        ):
            return "hyperband"
        return ""

    def ranked(self, rows=None):
        """`rows` (default `results()`) sorted by the objective, best first; trials without one last."""
        rows = self.results() if rows is None else rows
        sign = -1 if self.direction == "max" else 1

        def key(row):
            value = row.get("objective")
            return (0, sign * value) if value is not None and math.isfinite(value) else (1, 0)

        return sorted(rows, key=key)

    def search_trace(self):
        """KerasTuner's trials in creation order: `[(number, score or None, values)]` (a Hyperband continuation
        is a trial of its own)."""
        trials = []
        for path in (self.run.path / "tuner" / self.name).glob("trial_*/trial.json"):
            trial = json.loads(path.read_text())
            score = trial.get("score") if trial.get("status") == "COMPLETED" else None
            values = {k: v for k, v in trial["hyperparameters"]["values"].items() if not k.startswith("tuner/")}
            trials.append((int(trial["trial_id"]), score, values))
        return sorted(trials, key=lambda t: t[0])

    def histories(self):
        """`{"name=value, ...": per-epoch rows}` of every trial that has trained an epoch."""
        return {label: history for label, history in self._histories_by_trial().values()}

    def _histories_by_trial(self):
        """`{trial folder name: (label, history)}`, each trial's history.csv read once."""
        return {
            trial_name(values): (
                ", ".join(f"{k}={v}" for k, v in values.items()),
                _read_history(self.trial_path(values)),
            )
            for values in self.tried()
            if (self.trial_path(values) / "history.csv").exists()
        }

    def write_outputs(
        self,
        report=None,
        heading=None,
        metrics=("val_loss", "val_accuracy"),
        *,
        row=None,
        baseline=None,
        note=None,
        ranked=True,
    ):
        """`<name>_results.md|csv` (sorted by the objective; `ranked=False`: in `table_order()`, a grid's own order),
        a curves overlay and a search figure under `<run>/`; adds them to `report`. Returns the table's trial rows
        in trial order.

        row: `row(result, history) -> dict`, a study's own columns for one trial (`result`: a `results()` row,
            `history`: the trial's per-epoch rows); default the `results()` row itself.
        baseline: `(label, result, history)` of a run trained outside the search (a study's reference setting):
            the table's first row (through `row`, with `result` shaped like a `results()` row, see
            `flat_metrics`) and a curve in the overlay.
        note: the table's note (default: how the trials were searched and sorted).
        """
        rows = self.results()
        row = row or (lambda result, history: result)
        by_trial = self._histories_by_trial()
        made = {r["trial"]: row(r, by_trial.get(r["trial"], ("", []))[1]) for r in rows}
        if ranked:
            table = [made[r["trial"]] for r in self.ranked(rows)]
        else:
            table = [made[trial_name(values)] for values in self.table_order() if trial_name(values) in made]
        curves = dict(by_trial.values())
        if baseline is not None:
            label, result, history = baseline
            table.insert(0, row(result, history))
            curves = {label: history, **curves}
        write_csv(self.run.path / f"{self.name}_results.csv", table)
        note = note or (
            f"{self.tuner} search; objective: {self.objective} "
            f"({'max' if self.direction == 'max' else 'min'}imised, best epoch); sorted best first; "
            "stopped: trained fewer epochs than asked (early stopping or Hyperband's schedule)"
        )
        text = note + "\n\n" + markdown_table(table)
        atomic.write_text(self.run.path / f"{self.name}_results.md", text)
        title = heading or self.name
        figure = plot_overlay(curves, self.run.path / f"{self.name}_curves.png", metrics=metrics, title=title)
        search = self.plot_search(rows, title)
        if report is not None:
            report.add(heading or f"Sweep {self.name}", text)
            report.add_image(f"{title}: curves", figure)
            if search is not None:
                report.add_image(f"{title}: objective per trial", search)
        return [made[r["trial"]] for r in rows]

    def plot_search(self, rows, title=""):
        """Objective vs trial number (with the best so far) and, for up to two numeric hyperparameters, objective
        vs value (log axis for log ranges). None when no trial has finished."""
        trace = [(number, score) for number, score, _ in self.search_trace()]
        numeric = {}
        for name, spec in self.space.items():
            if len(numeric) == 2:
                break
            if isinstance(spec, Range) or (
                len(set(map(str, spec))) > 1
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec)
            ):
                points = [(row[name], row["objective"]) for row in rows if row.get("objective") is not None]
                log = (
                    spec.sampling == "log" if isinstance(spec, Range) else min(spec) > 0 and max(spec) / min(spec) >= 20
                )
                numeric[name] = (points, log)
        if not trace and not rows:
            return None
        return plot_search(
            trace,
            numeric,
            self.run.path / f"{self.name}_search.png",
            objective=self.objective,
            maximise=self.direction == "max",
            title=title,
        )

    def best(self, key=None):
        """The completed trial with the best objective (or the lowest `key`, e.g. `"best_valid_loss"`)."""
        rows = [r for r in self.results() if r.get("status") == "completed"]
        if key is not None:
            rows = [r for r in rows if key in r]
            return min(rows, key=lambda r: r[key]) if rows else None
        ranked = [r for r in self.ranked(rows) if r.get("objective") is not None]
        return ranked[0] if ranked else None


def flat_metrics(metrics):
    """A run's `metrics.json` as one flat table row: status, epochs, `final_<metric>`, `best_epoch` and the best
    epoch's `best_valid_*`/`best_test_*`, wall time."""
    row = {"status": metrics.get("status", "completed"), "epochs": metrics.get("epochs")}
    row.update({f"final_{k}": v for k, v in metrics.get("final", {}).items()})
    row.update(
        {
            f"best_{k}": v
            for k, v in metrics.get("best", {}).items()
            if k == "epoch" or k.startswith(("valid_", "test_"))
        }
    )
    row["wall_time_s"] = metrics.get("timing", {}).get("wall_time_s")
    return row


def _read_history(folder):
    from tfnets.experiment.runs import read_history  # runs imports Keras: only once results are read

    return read_history(folder)

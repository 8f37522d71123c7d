"""Every training one command does, declared once: a `Plan`.

An app declares each training of its command (a baseline, a study's search, a part's final network) by name, with
the names of the trainings whose results it needs, and then reads the results by name::

    plan = Plan(exp.run.path)
    plan.training("baseline", lambda: train(exp, data, config, hparams))
    plan.sweep("l2", Sweep(exp.run, {"l2": [0.01, 0.1]}, ...), train_trial)
    plan.training("final", lambda sweep: train_best(exp, data, sweep.best()), needs=("l2",))
    plan.run()                       # a plain process: trains (or resumes) everything, in this order
    baseline = plan.result("baseline")

The same declaration is what a cluster shares (`tfnets.experiment.plan_cluster`): started by the launcher's
`--workers` (`tfnets.experiment.launch`), `plan.run()` makes the chief serve the plan's trainings as KerasTuner
trials, each as soon as what it needs has finished, while the workers train whatever they are given; both exit when
nothing is left, and the launcher's final plain run finds every training finished on disk and writes the tables, figures and exports.

A training's function must train into its own run folder and resume from it: a plain process re-running it after
a cluster (or a worker that needs its result) then only evaluates the finished checkpoint.

Importing this module loads no TensorFlow or KerasTuner.
"""

import dataclasses
import typing

from tfnets.errors import ConfigError
from tfnets.experiment import sweep_cluster


@dataclasses.dataclass(frozen=True)
class Training:
    """One training: `train(*results of needs)` trains or resumes it and returns its `TrainResult`."""

    name: str
    train: typing.Callable
    needs: tuple = ()


@dataclasses.dataclass(frozen=True)
class Search:
    """A search (a `tfnets.experiment.sweep.Sweep`): each of its trials is a training of its own; its result is the
    sweep once every trial has ended. `train_trial(values, run, epochs=None, callbacks=())` as for `Sweep.search`."""

    name: str
    sweep: object
    train_trial: typing.Callable
    needs: tuple = ()


class Plan:
    """The trainings of one command, in the order a plain process runs them (every training after what it needs)."""

    def __init__(self, folder):
        """`folder`: the command's run folder (a cluster's chief keeps its record of finished trainings there)."""
        self.folder = folder
        self.steps = {}  # name -> Training or Search, in declaration order
        self._results = {}

    def _add(self, step):
        if not step.name or ":" in step.name:
            raise ConfigError(f"a plan's training needs a name without ':', got {step.name!r}")
        if step.name in self.steps:
            raise ConfigError(f"the plan already has a training named {step.name!r}")
        unknown = [name for name in step.needs if name not in self.steps]
        if unknown:
            raise ConfigError(f"{step.name!r} needs {', '.join(map(repr, unknown))}, not declared before it")
        self.steps[step.name] = step
        return step.name

    def training(self, name, train, *, needs=()):
        """Declare one training; `train(*[result(n) for n in needs])` returns its `TrainResult`. Returns `name`."""
        return self._add(Training(name, train, tuple(needs)))

    def sweep(self, name, sweep, train_trial):
        """Declare a search; its result is `sweep` once every trial has ended. Returns `name`."""
        return self._add(Search(name, sweep, train_trial))

    def searches(self):
        """`{name: Search}` of the plan's searches, in declaration order."""
        return {name: step for name, step in self.steps.items() if isinstance(step, Search)}

    def __contains__(self, name):
        return name in self.steps

    def result(self, name):
        """The result of training `name` in this process: a `TrainResult`, or the `Sweep` of a search. The first call
        trains it (or, when its folder holds it finished, only evaluates it), after what it needs."""
        if name not in self._results:
            step = self.steps[name]
            if isinstance(step, Search):
                # Inside a cluster a search's trials are the chief's to hand out: a worker that needs a finished
                # search reads it from disk.
                if sweep_cluster.tuner_id() is None:
                    step.sweep.search(step.train_trial)
                self._results[name] = step.sweep
            else:
                self._results[name] = step.train(*[self.result(need) for need in step.needs])
        return self._results[name]

    def run(self):
        """Train everything. A plain process trains every step in order and returns the plan; a process of a cluster
        (`KERASTUNER_TUNER_ID` set) serves the plan or trains its share, then prints one line and EXITS (status 0)."""
        if sweep_cluster.tuner_id() is None:
            for name in self.steps:
                self.result(name)
            return self
        from tfnets.experiment import plan_cluster

        plan_cluster.take_part(self)
        raise AssertionError("unreachable: a cluster's process exits")  # pragma: no cover

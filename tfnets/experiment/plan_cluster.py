"""A `Plan` shared by a cluster: KerasTuner's chief serves the plan's trainings as trials, workers train them.

Every process of a cluster runs the same command (see `tfnets.experiment.sweep_cluster` for the three
`KERASTUNER_*` variables; the launcher's `--workers`, `tfnets.experiment.launch`, sets them). At `plan.run()`:

* the chief serves a `PlanOracle` with KerasTuner's own gRPC servicer and trains nothing. Each request gets the
  first training of the plan, in declaration order, whose needs have finished and that nobody trains: a training
  of its own, or the next trial of a search (the search's own oracle, any tuner, proposes it). While what is left
  waits for trainings still running, a worker is told to wait (KerasTuner's IDLE); when nothing is left, to stop.
* a worker asks, trains what it is given into that training's own run folder (a training it needs is read from its
  finished folder), reports back, and asks again.

Both then print one line and exit with status 0; the launcher's final plain run writes the tables, figures and
exports from the finished folders. The chief records the finished trainings in `<run>/plan.json` and each search's
oracle in its own `tuner/` folder, and every training resumes from its checkpoint: after a kill, the same launch
repeats no finished training. A training that fails (its NaN guard) fails its trial; the chief goes on with what
does not need it and then exits with one line naming it.
"""

import time

import keras_tuner as kt

from tfnets import atomic
from tfnets.errors import TfnetsError, TrainingDiverged
from tfnets.experiment import sweep_cluster, tuner
from tfnets.experiment.headline import read_json

PLAN_KEY = "plan/training"  # the trial's hyperparameter that names its training
STATE_FILE = "plan.json"
_Status = kt.engine.trial.TrialStatus


def take_part(plan):
    """This process's part in the cluster that shares `plan` (the chief keeps its record in the plan's run folder).
    Exits (status 0) when nothing is left; raises a one-line error when a training failed."""
    name = sweep_cluster.tuner_id()
    if sweep_cluster.is_chief():
        oracle = PlanOracle(plan, plan.folder / STATE_FILE)
        sweep_cluster.serve(oracle, f"the plan's {len(plan.steps)} training(s)")
        if oracle.failed:
            raise TfnetsError(
                f"{name}: "
                + "; ".join(f"training {step} failed: {message}" for step, message in oracle.failed.items())
                + (f"; not trained, as they need it: {', '.join(oracle.blocked())}" if oracle.blocked() else "")
            )
    else:
        work(plan, name)
    print(f"{name}: no trainings left", flush=True)
    raise SystemExit(0)


class PlanOracle:
    """Serves a plan's trainings to KerasTuner's `OracleServicer` (the methods its workers call).

    A training of its own travels as a trial named after it (`PLAN_KEY`); a search's trial is its own oracle's, with
    `PLAN_KEY` added and the trial id `<search>:<id>`, and goes back to that oracle when it ends.
    """

    def __init__(self, plan, state_file):
        self.plan, self.state_file = plan, state_file
        self.searches = {name: tuner.chief_oracle(step.sweep) for name, step in plan.searches().items()}
        self.done = set(read_json(state_file) or [])  # trainings of their own that have ended
        self.failed = {}  # training -> its error
        self.running = {}  # tuner id -> the training of its own it trains
        self.exhausted = set()  # searches whose oracle has nothing more to hand out
        self.tuner_ids = set()  # who asked and was not told to stop yet (KerasTuner's `exit_chief` reads it)
        self.stopped = set()  # who was told to stop

    @property
    def ongoing_trials(self):
        ongoing = dict(self.running)
        for oracle in self.searches.values():
            ongoing.update(oracle.ongoing_trials)
        return ongoing

    # -- the plan's state ----------------------------------------------------------------------------------------
    def finished(self, name):
        if name in self.searches:
            oracle = self.searches[name]
            return name in self.exhausted and not oracle.ongoing_trials and not oracle._retry_queue
        return name in self.done

    def _stuck(self, name):
        """Whether `name` can never run: it, or something it needs, failed."""
        return name in self.failed or any(self._stuck(need) for need in self.plan.steps[name].needs)

    def blocked(self):
        return [name for name in self.plan.steps if name not in self.failed and self._stuck(name)]

    # -- what the servicer calls ---------------------------------------------------------------------------------
    @kt.synchronized
    def create_trial(self, tuner_id):
        self.tuner_ids.add(tuner_id)
        # A worker started again with the same id gets back the trial it was training.
        if tuner_id in self.running:
            return self._own_trial(self.running[tuner_id])
        for name, oracle in self.searches.items():
            if tuner_id in oracle.ongoing_trials:
                return self._search_trial(name, oracle.ongoing_trials[tuner_id])
        waiting = False
        for name, step in self.plan.steps.items():
            if self.finished(name) or self._stuck(name):
                continue
            if not all(self.finished(need) for need in step.needs) or name in self.running.values():
                waiting = True
                continue
            if name not in self.searches:
                self.running[tuner_id] = name
                return self._own_trial(name)
            trial = self.searches[name].create_trial(tuner_id)
            if trial.status == _Status.RUNNING:
                return self._search_trial(name, trial)
            if trial.status == _Status.STOPPED:
                self.exhausted.add(name)
            waiting = waiting or not self.finished(name)  # its last trials (or a Hyperband round) still run
        if waiting:
            return kt.engine.trial.Trial(kt.HyperParameters(), trial_id="wait", status=_Status.IDLE)
        self.tuner_ids.discard(tuner_id)
        self.stopped.add(tuner_id)
        return kt.engine.trial.Trial(kt.HyperParameters(), trial_id="stop", status=_Status.STOPPED)

    @kt.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        name, _, search_id = trial_id.partition(":")
        if name in self.searches:
            return self._search_trial(name, self.searches[name].update_trial(search_id, metrics, step=step))
        return self._own_trial(name)

    @kt.synchronized
    def end_trial(self, trial):
        name, _, search_id = trial.trial_id.partition(":")
        if name in self.searches:
            ended = self.searches[name].trials[search_id]
            ended.status, ended.message = trial.status, trial.message
            self.searches[name].end_trial(ended)
            return
        trained_by = "its worker"
        for tuner_id, training in list(self.running.items()):
            if training == name:
                del self.running[tuner_id]
                trained_by = tuner_id
        if trial.status == _Status.COMPLETED:
            self.done.add(name)
            atomic.write_json(self.state_file, sorted(self.done))
            print(f"chief: training {name} finished", flush=True)
        else:
            # KerasTuner's wire format carries no message: the worker printed it.
            self.failed[name] = trial.message or f"see {trained_by}'s output"
            print(f"chief: training {name} failed: {self.failed[name]}", flush=True)

    def get_space(self):
        return kt.HyperParameters()

    def update_space(self, hyperparameters):
        pass

    def get_trial(self, trial_id):
        name, _, search_id = trial_id.partition(":")
        if name in self.searches:
            return self._search_trial(name, self.searches[name].get_trial(search_id))
        return self._own_trial(name)

    def get_best_trials(self, num_trials=1):
        return []

    # -- trials on the wire --------------------------------------------------------------------------------------
    @staticmethod
    def _own_trial(name):
        hp = kt.HyperParameters()
        hp.Fixed(PLAN_KEY, name)
        return kt.engine.trial.Trial(hp, trial_id=name, status=_Status.RUNNING)

    @staticmethod
    def _search_trial(name, trial):
        hp = trial.hyperparameters.copy()
        hp.Fixed(PLAN_KEY, name)
        return kt.engine.trial.Trial(hp, trial_id=f"{name}:{trial.trial_id}", status=trial.status)


def work(plan, name):
    """A worker's loop: ask the chief, train what it hands out, report, until it says stop."""
    from keras_tuner.src.distribute import oracle_client

    sweep_cluster.bound_client_timeout()
    client = oracle_client.OracleClient(None)
    try:
        while True:
            trial = client.create_trial(name)
            if trial.status == _Status.STOPPED:
                return
            if trial.status == _Status.IDLE:
                time.sleep(sweep_cluster.POLL_S)
                continue
            _train(plan, client, trial)
            client.end_trial(trial)
    except Exception as err:
        import grpc  # a worker's requests to its chief fail as gRPC errors

        if isinstance(err, grpc.RpcError):
            raise sweep_cluster.unreachable(err) from None
        raise


def _train(plan, client, trial):
    """Train `trial`'s training; sets its status (and message) for the chief."""
    values = dict(trial.hyperparameters.values)
    step = plan.steps[values.pop(PLAN_KEY)]
    search = step.name in plan.searches()
    try:
        with sweep_cluster.assigned(trial.trial_id):
            _train_step(plan, client, trial, step, values, search)
        trial.status = _Status.COMPLETED
    except (kt.errors.FailedTrialError, TrainingDiverged) as err:
        trial.status, trial.message = _Status.FAILED, str(err)
        if not search:  # (a search's trial said so itself)
            print(f"training {step.name} failed: {err}", flush=True)


def _train_step(plan, client, trial, step, values, search):
    if search:
        search_id = trial.trial_id.partition(":")[2]
        score = tuner.train_trial(step.sweep, step.train_trial, search_id, values)
        client.update_trial(trial.trial_id, {step.sweep.objective: score})
    else:
        print(f"training {step.name}", flush=True)
        plan.result(step.name)

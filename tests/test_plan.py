"""A command's `Plan` of trainings: its declaration, a plain process's order, and the chief's `PlanOracle`, which
hands out every training as soon as what it needs has finished (in-process: the oracle's calls are what KerasTuner's
servicer makes for the workers)."""

import keras_tuner as kt
import pytest

from tfnets.errors import ConfigError
from tfnets.experiment import plan_cluster
from tfnets.experiment.plan import Plan
from tfnets.experiment.runs import Run
from tfnets.experiment.sweep import Sweep

RUNNING, IDLE, STOPPED = "RUNNING", "IDLE", "STOPPED"


def test_a_plain_process_trains_every_step_in_order_each_once_with_what_it_needs(tmp_path):
    order = []
    plan = Plan(tmp_path)
    plan.training("a", lambda: order.append("a") or "A")
    plan.training("b", lambda a: order.append(f"b({a})") or "B", needs=("a",))
    plan.training("c", lambda a, b: order.append(f"c({a},{b})") or "C", needs=("a", "b"))
    assert plan.run() is plan
    assert order == ["a", "b(A)", "c(A,B)"]
    assert [plan.result(name) for name in "abc"] == ["A", "B", "C"]
    assert order == ["a", "b(A)", "c(A,B)"]  # results are kept, never trained twice


@pytest.mark.parametrize(
    "declare, message",
    [
        (lambda plan: plan.training("b", lambda a: a, needs=("a",)), "'b' needs 'a', not declared before it"),
        (
            lambda plan: plan.training("x", lambda: 0) and plan.training("x", lambda: 0),
            "already has a training named 'x'",
        ),
        (lambda plan: plan.training("a:b", lambda: 0), "without ':'"),
        (lambda plan: plan.training("", lambda: 0), "without ':'"),
    ],
)
def test_a_bad_declaration_is_a_one_line_error(tmp_path, declare, message):
    with pytest.raises(ConfigError, match=message):
        declare(Plan(tmp_path))


def _plan(tmp_path, values=(1, 2)):
    """a; a two-trial grid search s; b needs s; c needs a."""
    run = Run(tmp_path / "run", {"app": "test"})
    plan = Plan(run.path)
    plan.training("a", lambda: "A")
    plan.sweep("s", Sweep(run, {"x": list(values)}, epochs=1, name="s"), lambda *args, **kwargs: None)
    plan.training("b", lambda s: "B", needs=("s",))
    plan.training("c", lambda a: "C", needs=("a",))
    return plan, run


def _ask(oracle, tuner_id):
    trial = oracle.create_trial(tuner_id)
    name = trial.hyperparameters.values.get(plan_cluster.PLAN_KEY)
    return trial.status, name, trial


def _end(oracle, trial, status="COMPLETED", message=None):
    name, _, search_id = trial.trial_id.partition(":")
    if search_id:
        oracle.update_trial(trial.trial_id, {"val_loss": 0.5})
    ended = kt.engine.trial.Trial(trial.hyperparameters, trial_id=trial.trial_id, status=status, message=message)
    oracle.end_trial(ended)


def test_the_chief_hands_out_each_training_once_its_needs_have_finished_and_says_wait_and_stop(tmp_path):
    plan, run = _plan(tmp_path)
    oracle = plan_cluster.PlanOracle(plan, run.path / plan_cluster.STATE_FILE)
    status, name, a = _ask(oracle, "tuner0")
    assert (status, name, a.trial_id) == (RUNNING, "a", "a")
    status, name, s0 = _ask(oracle, "tuner1")
    assert (status, name, s0.hyperparameters.values["x"]) == (RUNNING, "s", "1")
    assert s0.trial_id.startswith("s:")
    status, name, s1 = _ask(oracle, "tuner2")
    assert (status, name, s1.hyperparameters.values["x"]) == (RUNNING, "s", "2")
    # b waits for the search, c for a: a fourth worker is told to wait, not to stop.
    assert _ask(oracle, "tuner3")[0] == IDLE
    # A worker asking again (restarted with the same id) gets its own training back.
    assert _ask(oracle, "tuner0")[2].trial_id == "a"
    _end(oracle, a)
    assert _ask(oracle, "tuner0")[:2] == (RUNNING, "c")
    _end(oracle, s0)
    assert _ask(oracle, "tuner3")[0] == IDLE  # the search's last trial still runs
    _end(oracle, s1)
    status, name, b = _ask(oracle, "tuner3")
    assert (status, name) == (RUNNING, "b")
    _end(oracle, b)
    assert _ask(oracle, "tuner1")[0] == IDLE  # c still runs
    _end(oracle, oracle._own_trial("c"))
    assert [_ask(oracle, t)[0] for t in ("tuner0", "tuner1", "tuner2", "tuner3")] == [STOPPED] * 4
    assert not oracle.ongoing_trials and not oracle.tuner_ids and not oracle.failed


def test_a_relaunched_chief_hands_out_no_finished_training_and_the_interrupted_one_again(tmp_path):
    plan, run = _plan(tmp_path)
    oracle = plan_cluster.PlanOracle(plan, run.path / plan_cluster.STATE_FILE)
    a = _ask(oracle, "tuner0")[2]
    s0 = _ask(oracle, "tuner1")[2]
    _end(oracle, a)
    _end(oracle, s0)
    s1 = _ask(oracle, "tuner1")[2]
    assert s1.hyperparameters.values["x"] == "2"
    c = _ask(oracle, "tuner0")[2]
    assert c.trial_id == "c"
    # Killed here (s1 and c running). A new chief on the same folder:
    again = plan_cluster.PlanOracle(plan, run.path / plan_cluster.STATE_FILE)
    handed = [_ask(again, "tuner5")[2], _ask(again, "tuner6")[2]]
    assert sorted(t.trial_id for t in handed) == sorted([s1.trial_id, "c"])
    assert _ask(again, "tuner7")[0] == IDLE


def test_a_failed_training_blocks_what_needs_it_and_the_rest_goes_on(tmp_path):
    plan, run = _plan(tmp_path)
    oracle = plan_cluster.PlanOracle(plan, run.path / plan_cluster.STATE_FILE)
    a = _ask(oracle, "tuner0")[2]
    _end(oracle, a, status="FAILED", message="training diverged at epoch 3")
    trials = [_ask(oracle, "tuner0")[2], _ask(oracle, "tuner1")[2]]
    assert {t.hyperparameters.values[plan_cluster.PLAN_KEY] for t in trials} == {"s"}
    for trial in trials:
        _end(oracle, trial)
    assert _ask(oracle, "tuner0")[:2] == (RUNNING, "b")  # b needs only the search
    _end(oracle, oracle._own_trial("b"))
    assert _ask(oracle, "tuner0")[0] == STOPPED and _ask(oracle, "tuner1")[0] == STOPPED
    assert oracle.failed == {"a": "training diverged at epoch 3"} and oracle.blocked() == ["c"]


def test_the_chief_waits_for_every_launched_worker_even_one_that_asks_after_the_plan_is_done(tmp_path, monkeypatch):
    # One training and two workers: tuner0 trains it and is told to stop before tuner1 first asks. KerasTuner's own
    # exit rule counts only workers that have asked, so the chief would be gone when tuner1 asks.
    import socket
    import threading
    import time

    from keras_tuner.src.distribute import oracle_client

    from tfnets.experiment import sweep_cluster

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    monkeypatch.setenv(sweep_cluster.WORKERS_VARIABLE, "2")
    monkeypatch.setattr(oracle_client, "TIMEOUT", 10)
    plan = Plan(tmp_path)
    plan.training("a", lambda: "A")
    oracle = plan_cluster.PlanOracle(plan, tmp_path / plan_cluster.STATE_FILE)
    chief = threading.Thread(target=sweep_cluster.serve, args=(oracle, "the plan"), daemon=True)
    chief.start()
    client = oracle_client.OracleClient(None)
    trial = client.create_trial("tuner0")
    assert trial.trial_id == "a"
    trial.status = "COMPLETED"
    client.end_trial(trial)
    assert client.create_trial("tuner0").status == STOPPED
    time.sleep(4 * sweep_cluster.POLL_S)
    assert chief.is_alive()  # tuner1 has not been told yet
    assert client.create_trial("tuner1").status == STOPPED
    chief.join(timeout=10)
    assert not chief.is_alive()


@pytest.mark.parametrize("value", ["0", "two", "-1", ""])
def test_a_bad_worker_count_is_a_one_line_error(monkeypatch, value):
    from tfnets.experiment import sweep_cluster

    monkeypatch.setenv(sweep_cluster.WORKERS_VARIABLE, value)
    with pytest.raises(ConfigError, match="TFNETS_WORKERS must be a positive whole number"):
        sweep_cluster.expected_workers()

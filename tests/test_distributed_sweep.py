"""Distributed sweeps (KerasTuner's chief + workers) and `python -m tfnets.experiment.launch`.

The end-to-end test runs a real 4-trial `apps.notmnist_mlp` random search (--quick, 20 epochs per trial) as one
plain process, and through the launcher with 2 workers, one of them killed mid-trial, then the launch repeated.
Every process gets one TensorFlow thread, so all of them compute the same way and the tables can be compared exactly.
"""

import csv
import importlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.cluster_helpers import env as _env
from tests.cluster_helpers import kill_a_worker_mid_training
from tfnets.errors import ConfigError, TfnetsError
from tfnets.experiment import TrainResult, launch, locks, sweep_cluster
from tfnets.experiment.plan import Plan
from tfnets.experiment.runs import Run
from tfnets.experiment.space import trial_name
from tfnets.experiment.sweep import Sweep

ROOT = Path(__file__).resolve().parents[1]
MAX_TRIALS = 4


def _app(out):
    """A KerasTuner random search over a range (not a grid): 4 trials of 20 epochs, long enough to be killed in."""
    return [
        sys.executable,
        "-m",
        "apps.notmnist_mlp",
        "--quick",
        "--epochs",
        "20",
        "--hidden-units",
        "100",
        "--sweep",
        "learning_rate=0.01:0.5:log",
        "--tuner",
        "random",
        "--max-trials",
        str(MAX_TRIALS),
        "--out",
        str(out / "runs"),
        "--export-dir",
        str(out / "export"),
    ]


def _launch(out, workers=2):
    return [sys.executable, "-m", "tfnets.experiment.launch", "--workers", str(workers), "--", *_app(out)]


def _table(out):
    """The sweep's results table without the wall-time column (the only one that may differ)."""
    [path] = (out / "runs" / "notmnist_mlp").glob("*/learning_rate_results.csv")
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in row.items() if k != "wall_time_s"} for row in rows]


def _run_dir(out):
    [path] = (out / "runs" / "notmnist_mlp").glob("*/")
    return path


def _trained_by(output):
    """{worker: [trial names it trained]} from the launcher's prefixed output."""
    found = {}
    for worker, trial in re.findall(r"^\[(tuner\d+)\] trial (\S+)$", output, flags=re.M):
        found.setdefault(worker, []).append(trial)
    return found


@pytest.fixture(scope="module")
def single_table(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    done = subprocess.run(_app(out), cwd=ROOT, env=_env(data_dir), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    table = _table(out)
    assert len(table) == MAX_TRIALS and all(row["status"] == "completed" for row in table)
    rates = [float(row["learning_rate"]) for row in table]
    assert len(set(rates)) == MAX_TRIALS and all(0.01 <= rate <= 0.5 for rate in rates)
    return table


def _completed_trials(run_dir):
    """Trial folder names the chief's oracle recorded as COMPLETED."""
    names = []
    for path in (run_dir / "tuner" / "learning_rate").glob("trial_*/trial.json"):
        trial = json.loads(path.read_text())
        if trial["status"] == "COMPLETED":
            names.append(trial_name(trial["hyperparameters"]["values"]))
    return names


@pytest.mark.slow
def test_two_workers_killed_mid_trial_then_relaunched_give_the_single_process_table(single_table, data_dir, tmp_path):
    # One launch (chief + 2 workers) until a trial has completed and a worker is in the middle of another one;
    # that worker is killed. The same launch again must finish the sweep without repeating a completed trial, resume
    # the killed trial from its checkpoint, and end with exactly the table of one plain process: the chief's seeded
    # oracle proposes the same learning rates, and each trial trains the same way wherever it runs.
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    killed, seen, stderr, returncode = kill_a_worker_mid_training(
        _launch(tmp_path), data_dir, r"^\[chief\] Trial .* Complete ", r"^\[(tuner\d)\] Epoch 2/20", tmpdir
    )
    assert returncode != 0
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {killed} was killed by SIGKILL; stopped the others. Completed trials and epochs are "
        "checkpointed: re-run the same launch to resume"
    ]
    assert "Traceback" not in stderr

    run_dir = _run_dir(tmp_path)
    finished = _completed_trials(run_dir)
    assert finished and len(finished) < MAX_TRIALS
    before = {name: (run_dir / "trials" / name / "metrics.json").stat().st_mtime_ns for name in finished}
    first = _trained_by("".join(seen))

    again = subprocess.run(
        _launch(tmp_path), cwd=ROOT, env=_env(data_dir, tmpdir), capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    second = _trained_by(again.stdout)
    retrained = [t for trials in second.values() for t in trials]
    assert not set(retrained) & set(finished)  # completed trials were not handed out again...
    after = {name: (run_dir / "trials" / name / "metrics.json").stat().st_mtime_ns for name in finished}
    assert after == before  # ...nor touched
    expected = sorted(trial_name({"learning_rate": float(row["learning_rate"])}) for row in single_table)
    assert sorted(retrained + finished) == expected  # each trial finished once
    assert "resuming after epoch" in again.stdout  # the killed worker's trial went on from its checkpoint
    assert {*first, *second} == {"tuner0", "tuner1"}, (first, second)  # both workers trained
    for name in ("chief", "tuner0", "tuner1"):
        assert f"[{name}] {name}: no trainings left" in again.stdout
    # The tables, figures and export are written once, by the plain run at the end, which found every trial finished.
    assert not re.search(r"^\[final\] trial ", again.stdout, flags=re.M)
    assert (run_dir / "learning_rate_curves.png").exists()
    assert _table(tmp_path) == single_table  # the interrupted trial resumed exactly
    assert [name for name in os.listdir(tmpdir) if "tfnets" in name] == []  # no process left anything of tfnets


# -- a worker on its own, and the folder locks --------------------------------------------------------------------


def _fake_train(values, run, epochs=None, callbacks=()):
    history = [{"epoch": 1, "loss": 1.0, "val_loss": float(values["units"])}]
    return TrainResult(history, run.write_metrics({"valid_loss": float(values["units"])}, history, 0.0), run)


def test_worker_without_a_chief_gives_one_line_after_a_bounded_wait(tmp_path, monkeypatch):
    port = launch.free_ports(1)[0]  # nobody listens there
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    monkeypatch.setenv(sweep_cluster.TIMEOUT_VARIABLE, "2")
    plan = Plan(tmp_path)
    plan.sweep("units", Sweep(Run(tmp_path, {"seed": 0}), {"units": [1, 2]}), _fake_train)
    with pytest.raises(TfnetsError) as caught:
        plan.run()
    assert str(caught.value) == (
        f"tuner0: no answer from the cluster's chief at 127.0.0.1:{port} within 2 s; start it "
        "(KERASTUNER_TUNER_ID=chief, same command) or check KERASTUNER_ORACLE_IP/PORT "
        "(TFNETS_ORACLE_TIMEOUT sets the wait)"
    )


def test_half_set_variables_and_a_bad_timeout_are_one_line_errors(monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT", raising=False)
    monkeypatch.delenv("KERASTUNER_TUNER_ID", raising=False)
    with pytest.raises(ConfigError, match="KERASTUNER_ORACLE_PORT and KERASTUNER_TUNER_ID is not"):
        sweep_cluster.tuner_id()
    monkeypatch.setenv(sweep_cluster.TIMEOUT_VARIABLE, "soon")
    with pytest.raises(ConfigError, match="TFNETS_ORACLE_TIMEOUT must be a positive number of seconds, got 'soon'"):
        sweep_cluster.oracle_timeout()


_HOLD = """
import sys
from tfnets.experiment import locks, sweep_cluster
from pathlib import Path
if sys.argv[2] == "trial":
    locks.acquire(Path(sys.argv[1]) / ".lock", "busy", "hint")
else:
    locks.lock_run(sys.argv[1], sweep_cluster.tuner_id())
print("locked", flush=True)
sys.stdin.readline()
"""


def _holder(path, kind, env):
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path), kind],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_chief_and_workers_share_the_run_folder_but_not_a_tuner_id(tmp_path, monkeypatch):
    env = {
        **os.environ,
        "KERASTUNER_TUNER_ID": "tuner0",
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": "1",
    }
    holder = _holder(tmp_path, "run", env)
    try:
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
        monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
        with pytest.raises(
            ConfigError,
            match=r"KERASTUNER_TUNER_ID=tuner0 on .* is already used by process \d+; "
            "give every worker its own id",
        ):
            Run(tmp_path, {"seed": 0}, cluster_id="tuner0")
        locks.release_all()
        Run(tmp_path, {"seed": 0}, cluster_id="chief")  # another member of the same sweep
        locks.release_all()
        for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
            monkeypatch.delenv(name)
        with pytest.raises(ConfigError, match="is in use by the processes of a cluster; wait for it"):
            Run(tmp_path, {"seed": 0})  # a plain process is kept out
    finally:
        holder.stdin.close()
        holder.wait()


def test_a_cluster_process_trains_only_what_the_chief_handed_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner1")
    run = Run(tmp_path, {"seed": 0}, cluster_id="tuner1")
    # What Experiment.train asks before any training: outside an assigned training, every process would train it.
    with pytest.raises(ConfigError, match="tuner1: this command trains .* outside its plan"):
        sweep_cluster.refuse_training_outside_plan(run)
    with sweep_cluster.assigned("baseline"):
        sweep_cluster.refuse_training_outside_plan(run)
    # A search started outside a plan is refused the same way.
    with pytest.raises(ConfigError, match="tuner1: a cluster shares the searches its command declares in a Plan"):
        Sweep(run, {"units": [1, 2]}).search(_fake_train)


def test_a_trial_locked_by_another_process_is_waited_for_not_a_crash(tmp_path, capsys):
    sweep = Sweep(Run(tmp_path, {"seed": 0}), {"units": [1, 2]})
    holder = _holder(sweep.trial_path({"units": 1}), "trial", dict(os.environ))
    results = []
    searching = threading.Thread(target=lambda: results.append(sweep.search(_fake_train)))
    searching.start()
    printed, deadline = "", time.monotonic() + 60
    while "waiting for it" not in printed and time.monotonic() < deadline:
        time.sleep(0.05)
        printed += capsys.readouterr().out
    assert searching.is_alive()  # blocked on the lock, not failed
    holder.stdin.close()
    holder.wait()
    searching.join(60)
    assert f"trial units=1 is being trained by process {holder.pid}; waiting for it" in printed
    assert [row["units"] for row in results[0]] == [1, 2]


# -- the launcher's own input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--workers", "0", "--", "python"], "error: argument --workers: expected a positive integer, got 0"),
        (["--workers", "two", "--", "python"], "error: argument --workers: expected a positive integer, got 'two'"),
        (["--workers", "2"], "error: give the command to run after --"),
        (["--workers", "2", "--"], "error: the command after -- is empty"),
        (["--", "python"], "error: one of the arguments --workers --multi-worker is required"),
        (["--workers", "1", "--multi-worker", "2", "--", "x"], "error: argument --multi-worker: not allowed with"),
    ],
)
def test_malformed_launcher_arguments_are_one_line(argv, message, capsys):
    try:
        code = launch.main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1, err


def test_a_command_that_cannot_start_is_one_line(tmp_path, capsys):
    code = launch.main(["--workers", "1", "--", str(tmp_path / "no-such-program")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: cannot start ") and "No such file or directory" in err


def test_multi_worker_processes_get_one_cluster_and_their_own_index():
    specs = launch.multi_worker_processes(2, [4001, 4002], threads=1)
    configs = [json.loads(env["TF_CONFIG"]) for _, env in specs]
    assert [name for name, _ in specs] == ["worker0", "worker1"]
    assert all(c["cluster"] == {"worker": ["127.0.0.1:4001", "127.0.0.1:4002"]} for c in configs)
    assert [c["task"] for c in configs] == [{"type": "worker", "index": 0}, {"type": "worker", "index": 1}]


def _entry_point(name):
    """The `module:function` of a `[project.scripts]` entry in pyproject.toml, imported (as pip's script does)."""
    text = (ROOT / "pyproject.toml").read_text()
    scripts = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    [target] = re.findall(rf'^{re.escape(name)}\s*=\s*"([\w.]+:\w+)"', scripts, flags=re.M)
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["-h"], ["--workers", "2", "--help"], ["--help", "--", "python", "-m", "apps.notmnist_mlp"]],
)
def test_launcher_help_prints_usage_and_exits_0(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        launch.main(argv)
    out, err = capsys.readouterr()
    assert stop.value.code == 0 and err == ""
    assert out.startswith("usage: python -m tfnets.experiment.launch (--workers N | --multi-worker N)")
    assert "-- command [arguments ...]" in out and "--multi-worker N" in out


def test_the_tfnets_launch_script_and_python_m_both_show_help(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/somewhere/bin/tfnets-launch", "--help"])
    main = _entry_point("tfnets-launch")
    assert main is launch.main
    with pytest.raises(SystemExit) as stop:
        main()  # what the installed script runs: sys.exit(main())
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("usage: tfnets-launch (--workers N | --multi-worker N)")
    done = subprocess.run(
        [sys.executable, "-m", "tfnets.experiment.launch", "-h"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: python -m tfnets.experiment.launch ")

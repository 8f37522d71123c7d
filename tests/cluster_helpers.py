"""What the tests of whole app commands over a cluster (`tfnets-launch --workers N`) share: the processes'
environment, the commands, and what must come out the same as from one plain process.

Every process gets one TensorFlow thread, so a plain process and the cluster's workers compute the same way and
their numbers can be compared exactly.
"""

import csv
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 900


def env(data_dir, tmpdir=None):
    """The processes' environment; `tmpdir`: their temporary directory (a test's own, checked afterwards)."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    if tmpdir is not None:
        out["TMPDIR"] = str(tmpdir)
    out.update(
        TFNETS_DATA_DIR=str(data_dir),
        TF_NUM_INTRAOP_THREADS="1",
        OMP_NUM_THREADS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
    )
    return out


def app_command(app, flags, out):
    """`python -m apps.<app> <flags>` writing under `out`."""
    return [
        sys.executable,
        "-m",
        f"apps.{app}",
        *flags,
        "--out",
        str(out / "runs"),
        "--export-dir",
        str(out / "export" / app),
    ]


def launch_command(app, flags, out, workers=2):
    return [
        sys.executable,
        "-m",
        "tfnets.experiment.launch",
        "--workers",
        str(workers),
        "--",
        *app_command(app, flags, out),
    ]


def run(command, data_dir, tmpdir=None):
    """Run `command` to its end; returns the CompletedProcess (stdout and stderr as text)."""
    return subprocess.run(
        command, cwd=ROOT, env=env(data_dir, tmpdir), capture_output=True, text=True, timeout=TIMEOUT_S
    )


def ran(how, app, flags, data_dir, tmp_path_factory):
    """`(out, CompletedProcess)` of the app's command run to its end in a new folder `out`: as one plain process
    (`how="plain"`) or through the launcher with 2 workers (`how="launched"`)."""
    out = tmp_path_factory.mktemp(how)
    command = {"plain": app_command, "launched": launch_command}[how]
    return out, run(command(app, flags, out), data_dir)


def kill_a_worker_mid_training(command, data_dir, finished, mid_training, tmpdir=None, within_s=300):
    """Start the launch `command` and SIGKILL one worker once a line of its output matches `finished` and then a
    worker's line matches `mid_training` (its group 1: the worker's name); wait for the launch to end.

    Returns `(killed worker, the output lines read until the kill, stderr, the launcher's exit status)`."""
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env(data_dir, tmpdir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines, seen = queue.Queue(), []
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    pids, done, killed = {}, 0, None
    deadline = time.monotonic() + within_s
    try:
        while killed is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert proc.poll() is None, "the launch ended before a worker could be killed"
                continue
            seen.append(line)
            if line.startswith("[launch] chief pid"):
                pids = {name: int(pid) for name, pid in re.findall(r"(\w+) pid (\d+)", line)}
            done += bool(re.match(finished, line))
            busy = re.match(mid_training, line)
            if done and busy:  # a training has finished and this worker is in the middle of another one
                killed = busy.group(1)
                os.kill(pids[killed], signal.SIGKILL)
        assert killed, "no worker was seen mid-training after a finished training"
        stderr = proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    return killed, seen, stderr, proc.returncode


def run_folder(out, app):
    [path] = (out / "runs" / app).glob("*/")
    return path


def outcome(out, app):
    """What a command computed, without what may differ between processes (wall and epoch times, paths):
    `{relative path: rows}` of every CSV table but the per-epoch histories, and `{relative path: final and best
    metrics}` of every run folder's metrics.json."""
    root = run_folder(out, app)
    found = {}
    for path in sorted(root.rglob("*.csv")):
        if path.name == "history.csv":
            continue
        with open(path) as handle:
            rows = [{k: v for k, v in row.items() if "time" not in k} for row in csv.DictReader(handle)]
        found[str(path.relative_to(root))] = rows
    for path in sorted(root.rglob("metrics.json")):
        metrics = json.loads(path.read_text())
        found[str(path.relative_to(root))] = {k: metrics.get(k) for k in ("final", "best", "epochs", "status")}
    return found


def trained_by(output):
    """`{process: [what it trained]}` from the launcher's prefixed output: "training <name>" for a training of its
    own, "trial <folder>" for a search's trial."""
    found = {}
    for worker, _, name in re.findall(r"^\[(tuner\d+)\] (training|trial) (\S+)$", output, flags=re.M):
        found.setdefault(worker, []).append(name)
    return found


def trained_epochs(output):
    """How many epochs each process trained: Keras prints "Epoch i/n" once per epoch it runs."""
    counts = {}
    for worker in re.findall(r"^\[(\w+)\] Epoch \d+/\d+$", output, flags=re.M):
        counts[worker] = counts.get(worker, 0) + 1
    return counts

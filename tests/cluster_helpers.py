"""What the tests of whole app commands over a cluster (`tfnets-launch --workers N`) share: the processes'
environment, the commands, and what must come out the same as from one plain process.

Every process gets one TensorFlow thread, so a plain process and the cluster's workers compute the same way and
their numbers can be compared exactly.
"""

import csv
import json
import os
import re
import subprocess
import sys
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

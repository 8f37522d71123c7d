"""A non-chief worker's scratch folder (multi-worker training): where the other workers of a cluster write what the
chief writes into the run folder (their copy of the run files and the export), so that the run folder and the export
have one writer.

The folder is `$TMPDIR/tfnets-worker<i>-<digest of the user and the run folder>`: the same run and worker always get
the same folder, so a worker killed with SIGKILL (which no clean-up survives) leaves one folder, and the next start of
that worker on that run clears and reuses it. It is removed when the command ends, errors and Ctrl-C included
(`remove_all`, called by `tfnets.experiment.cli.run_main`, and at interpreter exit for other callers). An OS lock
inside keeps a second process with the same worker index and run from clearing a folder in use.
"""

import atexit
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from tfnets.experiment import locks

PREFIX = "tfnets-worker"
_made = []  # this process's scratch folders, removed by remove_all


def worker_folder(run_path, task_index):
    """This worker's scratch folder for the run at `run_path`, empty and locked by this process."""
    key = f"{os.getuid()}:{Path(run_path).resolve()}".encode()
    path = Path(tempfile.gettempdir()) / f"{PREFIX}{task_index}-{hashlib.sha256(key).hexdigest()[:12]}"
    path.mkdir(exist_ok=True)
    locks.acquire(
        path / ".lock",
        f"worker {task_index} of run {run_path} (scratch folder {path}) is already running as",
        "give each worker of a cluster its own TF_CONFIG index",
    )
    for entry in path.iterdir():  # what a worker killed with SIGKILL left behind
        if entry.name != ".lock":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    if not _made:
        atexit.register(remove_all)
    _made.append(path)
    return path


def remove_all():
    """Remove this process's scratch folders (when its command ends)."""
    while _made:
        path = _made.pop()
        locks.release(path / ".lock")
        shutil.rmtree(path, ignore_errors=True)

"""One writer per folder: an OS lock (`fcntl.flock`) held while a command writes a run or export folder.

The kernel drops a `flock` when its process dies, `kill -9` included, so a lock never goes stale the way a pid file
can. The lock file also records the holder's pid, only to name it in the error. Locks are per process: taking the
same lock twice in one process is a no-op, and `release_all()` (called when a command ends) lets go of them.

A shared lock (`shared=True`) lets several cooperating processes hold a folder together (the chief and workers of one
cluster share its run folder) while still keeping out an exclusive holder, and vice versa.
"""

import fcntl
import os
from pathlib import Path

from tfnets.errors import ConfigError

SHARED_HOLDER = "the processes of a cluster"
_held = {}  # resolved lock-file path -> open file object of this process


def acquire(lock_file, busy, hint, *, shared=False, wait=False):
    """Take the lock at `lock_file` for this process, or raise a one-line `ConfigError`:
    `"{busy} process N; {hint}"`, e.g. busy="run folder runs/x/y is in use by", hint="wait for it or ...".

    `shared`: a shared lock (any number of shared holders, no exclusive one). `wait`: block until the lock is free
    instead of raising.
    """
    key = Path(lock_file).resolve()
    if key in _held:
        return
    key.parent.mkdir(parents=True, exist_ok=True)
    handle = open(key, "a+")
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        fcntl.flock(handle, mode if wait else mode | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(f"{busy} {_describe(holder)}; {hint}") from None
    # The holder's name for another process's error: a pid, or (shared) what the holders are together.
    holder = SHARED_HOLDER if shared else str(os.getpid())
    handle.seek(0)
    if handle.read().strip() != holder:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{holder}\n")
        handle.flush()
    _held[key] = handle


def release(lock_file):
    handle = _held.pop(Path(lock_file).resolve(), None)
    if handle is not None:
        handle.close()  # closing the file drops the flock


def held():
    """The lock files this process holds now (for `release_all(keep=...)`)."""
    return frozenset(_held)


def release_all(keep=()):
    """Let go of every lock this process holds, except those in `keep` (taken before, by someone else)."""
    for key in list(_held):
        if key not in keep:
            release(key)


def _describe(holder):
    return f"process {holder}" if holder.isdigit() else holder


def lock_run(path, cluster_id=None):
    """Take the lock of the run folder `path` for this process.

    Alone (`<run>/.lock`, exclusive) unless `cluster_id` names this process in a cluster
    (`tfnets.experiment.sweep_cluster`), whose chief and workers share the app's run folder: they hold `.lock` shared
    (so a plain process still cannot start on it, nor they while a plain one runs) and each holds `.lock.<cluster_id>`
    alone, so that two processes started with the same id are refused. A sweep trial's folder is always one process's alone (`cluster_id=None`).
    """
    path = Path(path)
    if cluster_id is None:
        acquire(path / ".lock", f"run folder {path} is in use by", "wait for it or pass --run-id")
        return
    acquire(path / ".lock", f"run folder {path} is in use by", "wait for it or pass --run-id", shared=True)
    acquire(
        path / f".lock.{cluster_id}",
        f"KERASTUNER_TUNER_ID={cluster_id} on {path} is already used by",
        "give every worker its own id",
    )

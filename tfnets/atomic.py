"""Atomic file output: a kill at any moment leaves the previous complete file (or none), never a torn one.

Every writer goes to a temporary sibling first and is moved into place with `os.replace`, which is atomic on
POSIX when source and target are on the same filesystem (siblings always are).

`tempfile.mkstemp`/`mkdtemp` create their file 0600 and their folder 0700 whatever the umask, and a rename keeps
the mode: the temporaries are given the mode the umask gives an ordinary `open()` / `mkdir()` (0644 / 0755 under
umask 022), so a teammate, a web server or a serving container can read what tfnets wrote.

A full disk (or quota) while writing raises `DiskFull`, a one-line user error naming the file; the temporary is
removed and the previous file (if any) stays as it was.
"""

import contextlib
import errno
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

from tfnets.errors import DiskFull

_umask_lock = threading.Lock()
# errno values of "the filesystem is full": no space left, or the user's quota is used up.
_FULL = {errno.ENOSPC, errno.EDQUOT}


def umask():
    """The process's umask, read without changing it where Linux reports it (`/proc/self/status`, since 4.7);
    elsewhere set and put back under a lock (the umask is process-wide)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o077)  # for the instant it is set, another thread's new file is private, not open
        os.umask(mask)
    return mask


def _as_if_created(path, folder=False):
    """Give a temporary from `tempfile` the mode `open()` (0o666) or `mkdir()` (0o777) would have given it."""
    os.chmod(path, (0o777 if folder else 0o666) & ~umask())


def is_disk_full(err):
    """Whether `err` says the filesystem (or the quota) is full: an `OSError` with ENOSPC/EDQUOT, or a library's
    own error type carrying the same C library message (TensorFlow's file writers raise their own)."""
    if isinstance(err, OSError) and err.errno in _FULL:
        return True
    return any(os.strerror(code) in str(err) for code in _FULL)


@contextlib.contextmanager
def _disk_full_as(path, inside=False):
    """A full disk while writing `path` -> `DiskFull(path)`; `inside`: also one raised for a file inside the
    temporary folder that becomes `path` (the user knows `path`, not the temporary's name)."""
    try:
        yield
    except Exception as err:
        if isinstance(err, DiskFull) and inside and err.path != path:
            raise DiskFull(path) from err
        if is_disk_full(err) and not isinstance(err, DiskFull):
            raise DiskFull(path) from err
        raise


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary file path next to `path`; on success move it onto `path`.

    Use it for writers that insist on a file name (matplotlib, np.savez, h5py). On an exception the
    temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    with _disk_full_as(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        _as_if_created(tmp)
        with _disk_full_as(path):
            yield Path(tmp)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value):
    # NumPy scalars and arrays show up in metrics; JSON has no float32.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@contextlib.contextmanager
def atomic_directory(path):
    """Yield a temporary directory next to `path`; on success it replaces `path` as a whole.

    The old directory (if any) is moved aside and deleted only after the new one is in place, so readers
    see either the complete old tree or the complete new one.
    """
    path = Path(path)
    with _disk_full_as(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        _as_if_created(tmp, folder=True)
        with _disk_full_as(path, inside=True):
            yield tmp
            old = None
            if path.exists():
                old = path.parent / f".{path.name}.old-{os.getpid()}"
                os.replace(path, old)
            os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

"""Where datasets live, and how a missing file is fetched.

Lookup order for the data directory: the `data_dir` argument (the apps' `--data-dir`), else the
environment variable `TFNETS_DATA_DIR`, else a per-user cache directory
(`$XDG_CACHE_HOME/tfnets/data`, by default `~/.cache/tfnets/data`).

A loader first looks for every accepted on-disk layout of its dataset in that directory; only when
none is present does it call `fetch`, which downloads the canonical file (`tfnets.data.download`: progress
bar, checksum when one is known, an interrupted download resumes). Archives are NOT extracted: the loaders
read `notMNIST_small.tar.gz` and `cifar-10-python.tar.gz` in place, which avoids a second copy on disk. When the download is impossible (no network, no canonical URL,
or `TFNETS_OFFLINE=1`, which the tests set so they never wait on the network) `fetch` raises `DataError`
with one line naming the exact file to place, its full path and its canonical source.
"""

import os
from pathlib import Path

from tfnets.data.download import DownloadError, download
from tfnets.errors import DataError

ENV_DATA_DIR = "TFNETS_DATA_DIR"
ENV_OFFLINE = "TFNETS_OFFLINE"


def default_cache_dir():
    """Per-user cache directory: `$XDG_CACHE_HOME/tfnets/data` or `~/.cache/tfnets/data`."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache_home) / "tfnets" / "data"


def resolve_data_dir(data_dir=None):
    """Return the data directory as an absolute `Path` (argument, else env, else cache dir)."""
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(ENV_DATA_DIR) or default_cache_dir()
    return Path(data_dir).expanduser().resolve()


def offline():
    """True when `TFNETS_OFFLINE` is set to a true value: never try to download."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in {"1", "true", "yes", "on"}


def one_line(text):
    """Collapse an exception message to one line (user-facing errors are one line)."""
    return " ".join(str(text).split())


def missing_message(what, paths, url=None, reason=None):
    """One-line 'file is missing' message: what to place, where (full paths), and the source."""
    places = " or ".join(str(p) for p in paths)
    msg = f"{what} not found: place it at {places}"
    msg += f" (canonical source: {url})" if url else " (no public download: copy it there by hand)"
    if reason:
        msg += f"; {one_line(reason)}"
    return msg


def fetch(relative_path, data_dir, url=None, sha256=None, what=None, alternatives=()):
    """Return the local path of `data_dir/relative_path`, downloading it first if it is absent.

    Args:
        relative_path: file path inside the data directory, e.g. "fashion_mnist/t10k-labels-idx1-ubyte.gz".
        data_dir: the resolved data directory (`resolve_data_dir`).
        url: canonical download URL, or None when the dataset has no public source.
        sha256: expected SHA-256 (or MD5, 32 hex digits) of the download; None skips the check.
        what: human name of the dataset for the error message.
        alternatives: other accepted local paths, only listed in the error message.
    Raises:
        DataError: one line naming the full path to place the file at, when it cannot be downloaded.
    """
    data_dir = Path(data_dir)
    target = data_dir / relative_path
    if target.exists():
        return target
    what = what or Path(relative_path).name
    places = [target, *alternatives]
    if url is None:
        raise DataError(missing_message(what, places))
    if offline():
        raise DataError(missing_message(what, places, url, f"download skipped because {ENV_OFFLINE}=1"))
    # Check the nearest existing folder without creating any: a failed download leaves nothing behind.
    existing = next(folder for folder in (target.parent, *target.parent.parents) if folder.exists())
    if not (existing.is_dir() and os.access(existing, os.W_OK)):
        raise DataError(missing_message(what, places, url, f"cannot download: {target.parent} is not writable"))
    try:
        return download(url, target, sha256)
    except KeyboardInterrupt as err:
        raise DataError(missing_message(what, places, url, "download interrupted; run again to resume it")) from err
    except DownloadError as err:
        raise DataError(missing_message(what, places, url, f"download failed: {err}")) from err

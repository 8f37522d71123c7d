"""Validation shared by the loaders: every problem becomes a one-line `DataError` naming the file."""

import lzma
import tarfile
import zlib
from pathlib import PurePosixPath

import numpy as np

from tfnets.errors import DataError

# What reading a damaged or crafted (optionally compressed) tarball raises.
TAR_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError, UnicodeError)


def check_tar_member(archive, member):
    """Refuse a tarball member whose name is absolute or climbs out with '..'.

    The loaders never extract (they read members in place), so such a name could not write anywhere; but no
    official tarball has one, and a tarball that does was made to attack an extractor: better refused whole.
    """
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise DataError(
            f"{archive}: member {member.name!r} has an absolute or '..' path; not an official tarball "
            "(nothing was extracted)"
        )


def corrupt_file_error(path, err, kind="file"):
    """The one-line `DataError` for a file that exists but cannot be parsed (truncated, corrupt, wrong format)."""
    detail = " ".join(str(err).split()) or type(err).__name__
    return DataError(f"{path}: cannot read the {kind} ({detail}); it is truncated or corrupt: replace it")


def check_images(x, source, name, item_shape):
    """Raise unless `x` has shape (N, *item_shape) with N > 0; `None` in item_shape matches any size."""
    x = np.asarray(x)
    ok = x.ndim == 1 + len(item_shape) and all(
        want is None or got == want for got, want in zip(x.shape[1:], item_shape)
    )
    if not ok:
        want = "(N, " + ", ".join("?" if s is None else str(s) for s in item_shape) + ")"
        raise DataError(f"{source}: '{name}' has shape {x.shape}, expected {want}; not the expected layout")
    if x.shape[0] == 0:
        raise DataError(f"{source}: '{name}' is empty; the dataset has no examples")
    return x


def check_labels(y, source, name, num_classes, count=None):
    """Return `y` as int64 of shape (N,), raising if it is not integral or not in 0..num_classes-1."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{source}: '{name}' has shape {y.shape}, expected (N,) integer labels")
    if count is not None and len(y) != count:
        raise DataError(f"{source}: '{name}' has {len(y)} labels but there are {count} images")
    if not np.issubdtype(y.dtype, np.number):
        raise DataError(f"{source}: '{name}' has dtype {y.dtype}, expected numeric labels")
    as_float = y.astype(np.float64)
    if not (np.all(np.isfinite(as_float)) and np.all(as_float == np.round(as_float))):
        raise DataError(f"{source}: '{name}' contains non-integer labels")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{source}: '{name}' has labels in [{y.min()}, {y.max()}], expected 0..{num_classes - 1}")
    return y


def require_keys(container, keys, source):
    """Raise unless every key is present in a dict/npz/h5 `container`."""
    missing = [k for k in keys if k not in container]
    if missing:
        present = sorted(str(k) for k in container.keys())
        raise DataError(f"{source}: missing key(s) {missing} (found {present}); not the expected file layout")

"""CIFAR-10 (32x32 colour images, 10 classes) with the CS231n train/validation split.

Accepted layouts inside the data directory: the official "python version" folder `cifar-10-batches-py/`
(pickled dicts `data_batch_1..5`, `test_batch`, `batches.meta`, bytes keys `b'data'` (10000, 3072) uint8
channel-major and `b'labels'`), else its tarball `cifar-10-python.tar.gz` read in place (downloaded from
the canonical Toronto URL when neither is present).

Split (CS231n `get_CIFAR10_data`): validation = the LAST `num_validation` (default 1,000) of the 50,000
training images, training = the rest (49,000), test = the 10,000 test images. Pixels stay float32 in 0..255
as in CS231n; `subtract_mean=True` subtracts the mean image of the (reduced) training split from every split,
and that mean is returned in `Splits.extras["mean_image"]`.
"""

import pickle
import struct
import sys
import tarfile
import zlib
from pathlib import Path

import numpy as np

from tfnets.data.arrays import open_regular, read_regular_file
from tfnets.data.checks import (
    TAR_ERRORS,
    check_images,
    check_labels,
    check_tar_member,
    corrupt_file_error,
    require_keys,
)
from tfnets.data.cifar_pickle import RefusedGlobal, load_batch, refused_message
from tfnets.data.paths import fetch, resolve_data_dir
from tfnets.data.splits import Splits
from tfnets.errors import DataError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# SHA-256 of the official tarball, as pinned by keras/src/datasets/cifar10.py.
TARBALL_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
FOLDER_NAME = "cifar-10-batches-py"
TARBALL_NAME = "cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
# An official batch is 30.9 MB (10,000 x 3,072 bytes plus labels and file names); a file over this is not one.
MAX_BATCH_BYTES = 64 << 20
# What unpickling a damaged file raises (a truncated opcode, a bad memo index, a wrong state tuple, ...).
UNPICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    OverflowError,
    struct.error,
    zlib.error,
)
DEFAULT_CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_cifar10(data_dir=None, num_validation=1000, subtract_mean=False):
    """Load CIFAR-10 split as in CS231n.

    Returns:
        Splits with x_* float32 (N, 32, 32, 3) (HWC, values 0..255, or mean-subtracted) and y_* int64 in 0..9;
        sizes 50000 - num_validation / num_validation / 10000 for the full dataset.
    """
    data_dir = resolve_data_dir(data_dir)
    folder = data_dir / FOLDER_NAME
    if folder.exists():
        source = folder
        batches = {name: _read_pickle_file(folder / name) for name in (*TRAIN_BATCHES, TEST_BATCH)}
        meta = _read_pickle_file(folder / META) if (folder / META).exists() else None
    else:
        source = fetch(TARBALL_NAME, data_dir, url=URL, sha256=TARBALL_SHA256, what="CIFAR-10", alternatives=(folder,))
        batches, meta = _read_tarball(source)

    x_parts, y_parts = [], []
    for name in TRAIN_BATCHES:
        x, y = _batch_arrays(batches[name], source, name)
        x_parts.append(x)
        y_parts.append(y)
    x_train, y_train = np.concatenate(x_parts), np.concatenate(y_parts)
    x_test, y_test = _batch_arrays(batches[TEST_BATCH], source, TEST_BATCH)
    class_names = _class_names(meta, source)

    if not 0 <= num_validation < len(x_train):
        raise DataError(f"num_validation={num_validation} must be in 0..{len(x_train) - 1} for {source}")
    n_train = len(x_train) - num_validation
    x_valid, y_valid = x_train[n_train:], y_train[n_train:]
    x_train, y_train = x_train[:n_train], y_train[:n_train]
    extras = {}
    if subtract_mean:
        mean_image = x_train.mean(axis=0, dtype=np.float64).astype(np.float32)  # float64 sum: 49,000 rows
        x_train, x_valid, x_test = x_train - mean_image, x_valid - mean_image, x_test - mean_image
        extras["mean_image"] = mean_image
    return Splits(
        x_train,
        y_train,
        x_valid,
        y_valid,
        x_test,
        y_test,
        class_names=class_names,
        source=str(source),
        extras=extras,
        note=f"validation = last {num_validation} training images"
        + ("; train mean image subtracted" if subtract_mean else ""),
    )


def _unpickle(data, where):
    """One batch's bytes -> its dict, with the restricted unpickler (`tfnets.data.cifar_pickle`)."""
    try:
        return load_batch(data, where)
    except RefusedGlobal as err:
        raise DataError(refused_message(where, err)) from err
    except UNPICKLE_ERRORS as err:
        raise corrupt_file_error(where, err, "pickle (cannot unpickle)") from err


def _read_pickle_file(path):
    try:
        data = read_regular_file(path, MAX_BATCH_BYTES, "CIFAR-10 batch")
    except FileNotFoundError as err:
        raise DataError(f"{path} not found: the CIFAR-10 folder is incomplete (canonical source: {URL})") from err
    except IsADirectoryError as err:
        raise DataError(f"{path} is a folder; expected a CIFAR-10 batch file") from err
    return _unpickle(data, path)


def _read_tarball(path):
    """Unpickle the batches straight from the tarball: ({batch name: dict}, meta dict or None).

    Nothing is extracted; a member with an absolute or '..' path refuses the tarball, and a batch member that
    is not a regular file or is over `MAX_BATCH_BYTES` is refused before it is read.
    """
    wanted = {*TRAIN_BATCHES, TEST_BATCH, META}
    found = {}
    try:
        with open_regular(path, sys.maxsize, "tarball") as (stream, _), tarfile.open(fileobj=stream) as archive:
            for member in archive:
                check_tar_member(path, member)
                name = Path(member.name).name
                if name not in wanted or member.isdir():
                    continue
                where = f"{path}:{member.name}"
                if not member.isfile():
                    raise DataError(f"{where}: not a regular file (a link or device); not the official tarball")
                if member.size > MAX_BATCH_BYTES:
                    raise DataError(f"{where}: {member.size} bytes, more than a CIFAR-10 batch ({MAX_BATCH_BYTES})")
                found[name] = _unpickle(archive.extractfile(member).read(), where)
    except TAR_ERRORS as err:
        raise corrupt_file_error(path, err, "tarball") from err
    missing = sorted(wanted - set(found) - {META})
    if missing:
        raise DataError(f"{path}: the tarball lacks {missing}; not the CIFAR-10 python version")
    return found, found.get(META)


def _batch_arrays(batch, source, name):
    """One pickled batch -> images float32 (N, 32, 32, 3) and labels int64 (N,)."""
    where = f"{source}/{name}"
    if not isinstance(batch, dict):
        raise DataError(f"{where}: expected a pickled dict, found {type(batch).__name__}")
    require_keys(batch, [b"data", b"labels"], where)
    data = batch[b"data"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8):
        found = data.dtype if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{where}: 'data' is {found}, expected a uint8 array; not the CIFAR-10 python version")
    data = check_images(data, where, "data", (3072,))
    labels = check_labels(_label_array(batch[b"labels"], where), where, "labels", 10, count=len(data))
    # Each row is 1024 red, then 1024 green, then 1024 blue values (channel-major): reshape to CHW, then HWC.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32)
    return images, labels


def _label_array(labels, where):
    """The official batches hold labels as a list of ints: anything else (nested lists, strings, huge ints,
    which NumPy would expand, reject or overflow on) is refused here, with the file named."""
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "iu":
        return labels
    if not (isinstance(labels, list) and all(type(v) is int and -(2**63) <= v < 2**63 for v in labels)):
        raise DataError(f"{where}: 'labels' is not a list of integers; not the CIFAR-10 python version")
    return np.asarray(labels, np.int64)


def _class_names(meta, source):
    if meta is None:
        return DEFAULT_CLASS_NAMES
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    wrong = DataError(f"{source}/{META}: no 10 'label_names'; not the CIFAR-10 python version")
    if not (isinstance(names, list) and len(names) == 10 and all(isinstance(n, (bytes, str)) for n in names)):
        raise wrong
    try:
        return tuple(n.decode() if isinstance(n, bytes) else n for n in names)
    except UnicodeDecodeError as err:
        raise wrong from err

"""Cat-vs-car images of the Bilkent EEE443 homework 2, question 1 (`assign2_data1.h5`).

Layout: HDF5 datasets `trainims` (1900, 32, 32) uint8, `trainlbls` (1900,) float 0/1, `testims` (1000, 32, 32),
`testlbls` (1000,). The file stores every image transposed (it was written from MATLAB's column-major
arrays), so the loader transposes each 32x32 image back: cats and cars come out upright.

The file has no public download: place it at `<data dir>/assign2_data1.h5`. The assignment has no
validation split; `num_validation` > 0 takes the last training images as one.
Labels are returned as int 0/1 (0 = cat, 1 = car); `to_signed_labels` maps them to the -1/+1 targets
used with tanh outputs in the assignment.
"""

import numpy as np

from tfnets.data.checks import check_images, check_labels
from tfnets.data.h5 import read_h5
from tfnets.data.paths import fetch, resolve_data_dir
from tfnets.data.splits import Splits
from tfnets.errors import DataError

FILE_NAME = "assign2_data1.h5"
CLASS_NAMES = ("cat", "car")
KEYS = ("trainims", "trainlbls", "testims", "testlbls")


def load_catcar(data_dir=None, num_validation=0):
    """Load cat-vs-car. Returns Splits with x_* float32 (N, 32, 32) in [0, 1], upright, and y_* int64 0/1."""
    data_dir = resolve_data_dir(data_dir)
    path = fetch(FILE_NAME, data_dir, url=None, what="cat-vs-car file (EEE443 assign2_data1.h5)")
    arrays = read_h5(path, KEYS)
    x_train = check_images(arrays["trainims"], path, "trainims", (32, 32))
    x_test = check_images(arrays["testims"], path, "testims", (32, 32))
    y_train = check_labels(arrays["trainlbls"], path, "trainlbls", 2, count=len(x_train))
    y_test = check_labels(arrays["testlbls"], path, "testlbls", 2, count=len(x_test))
    if not 0 <= num_validation < len(x_train):
        raise DataError(f"num_validation={num_validation} must be in 0..{len(x_train) - 1} for {path}")
    x_train, x_test = upright(x_train), upright(x_test)
    n_train = len(x_train) - num_validation
    validation = (
        f"validation = last {num_validation} training images"
        if num_validation
        else "no validation split (as in the assignment)"
    )
    return Splits(
        x_train[:n_train],
        y_train[:n_train],
        x_train[n_train:],
        y_train[n_train:],
        x_test,
        y_test,
        class_names=CLASS_NAMES,
        source=str(path),
        note="images transposed back to upright; " + validation,
    )


def upright(stored):
    """(N, 32, 32) images as stored in the file -> float32 in [0, 1], each 32x32 image transposed upright."""
    return np.ascontiguousarray(stored.transpose(0, 2, 1), dtype=np.float32) / 255.0


def to_signed_labels(y):
    """Map 0/1 labels to the -1/+1 targets of a tanh output unit (0 -> -1, 1 -> +1), as float32."""
    return 2.0 * np.asarray(y, np.float32) - 1.0

"""MNIST and Fashion-MNIST (28x28 greyscale, 10 classes).

Accepted layouts inside the data directory:
  * MNIST: `mnist.npz` in the Keras layout (`x_train` (60000, 28, 28) uint8, `y_train`, `x_test`, `y_test`),
    else the four idx files `mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`.
  * Fashion-MNIST: the four idx files in `fashion_mnist/`, else `fashion_mnist.npz` in the Keras MNIST layout.
When nothing is present, the Keras `mnist.npz` / the Fashion-MNIST idx files are downloaded from Google storage.

Validation split: the LAST `num_validation` training images (default 10,000, i.e. 50,000 / 10,000 / 10,000
as in Nielsen's and many course loaders); `num_validation=0` gives empty validation arrays.
"""

import gzip
import math
import zlib

import numpy as np

from tfnets.data.arrays import MAX_ARRAY_BYTES, open_regular, read_at_most, read_npz
from tfnets.data.checks import check_images, check_labels, corrupt_file_error
from tfnets.data.paths import fetch, resolve_data_dir
from tfnets.data.splits import Splits
from tfnets.errors import DataError

KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
# SHA-256 of the Keras-hosted mnist.npz (from keras/src/datasets/mnist.py). The rebuilt mnist.npz in the shared
# data folder has different bytes; hashes are only checked on download, never on a file already present.
MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension


def load_mnist(data_dir=None, num_validation=10000):
    """Load MNIST. Returns Splits with x_* float32 (N, 28, 28) in [0, 1] and y_* int64 in 0..9."""
    data_dir = resolve_data_dir(data_dir)
    if (data_dir / "mnist.npz").exists() or not _has_idx(data_dir / "mnist"):
        path = fetch(
            "mnist.npz",
            data_dir,
            url=KERAS_ORIGIN + "mnist.npz",
            sha256=MNIST_NPZ_SHA256,
            what="MNIST",
            alternatives=(data_dir / "mnist" / IDX_FILES["x_train"],),
        )
        arrays = read_mnist_npz(path)
    else:
        path = data_dir / "mnist"
        arrays = read_idx_set(path)
    return _to_splits(arrays, path, MNIST_CLASSES, num_validation)


def load_fashion_mnist(data_dir=None, num_validation=10000):
    """Load Fashion-MNIST. Returns Splits like `load_mnist`, with the 10 clothing class names."""
    data_dir = resolve_data_dir(data_dir)
    folder = data_dir / "fashion_mnist"
    if (data_dir / "fashion_mnist.npz").exists() and not _has_idx(folder):
        path = data_dir / "fashion_mnist.npz"
        arrays = read_mnist_npz(path)
    else:
        needs = f"Fashion-MNIST (all of {', '.join(IDX_FILES.values())} in {folder})"
        for name in IDX_FILES.values():
            fetch(
                f"fashion_mnist/{name}",
                data_dir,
                url=KERAS_ORIGIN + name,
                what=needs,
                alternatives=(data_dir / "fashion_mnist.npz",),
            )
        path = folder
        arrays = read_idx_set(folder)
    return _to_splits(arrays, path, FASHION_CLASSES, num_validation)


def _has_idx(folder):
    return all((folder / name).exists() for name in IDX_FILES.values())


def read_mnist_npz(path):
    """Read a Keras-layout npz: dict of x_train/y_train/x_test/y_test arrays (headers checked before reading)."""
    return read_npz(path, list(IDX_FILES))


def read_idx(path, magic):
    """Read one gzipped idx file (images (N, rows, cols) or labels (N,)) as uint8.

    The header's declared shape is checked (at most `MAX_ARRAY_BYTES`) before the data is inflated, and no more
    than the declared bytes (+1, to tell a longer file) are ever inflated: a gzip bomb stops there.
    """
    ndim = 3 if magic == IDX_IMAGES_MAGIC else 1
    header = 4 * (1 + ndim)
    try:
        with open_regular(path, MAX_ARRAY_BYTES, "gzip file") as (raw_stream, _):
            with gzip.GzipFile(fileobj=raw_stream, mode="rb") as stream:
                head = stream.read(header)
                if len(head) < header or int.from_bytes(head[:4], "big") != magic:
                    kind = "images" if ndim == 3 else "labels"
                    raise DataError(f"{path}: not an idx file of {kind} (bad magic number)")
                shape = tuple(int.from_bytes(head[4 * (i + 1) : 4 * (i + 2)], "big") for i in range(ndim))
                declared = math.prod(shape)
                if declared > MAX_ARRAY_BYTES:
                    raise DataError(
                        f"{path}: its header declares shape {shape} ({declared} bytes), "
                        f"over the limit of {MAX_ARRAY_BYTES} bytes; not an MNIST idx file"
                    )
                raw = read_at_most(stream, declared + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise corrupt_file_error(path, err, "gzip file") from err
    if len(raw) != declared:
        more = "more" if len(raw) > declared else len(raw)
        raise DataError(f"{path}: holds {more} data bytes but its header says shape {shape}; truncated or corrupt")
    return np.frombuffer(raw, np.uint8).reshape(shape)


def read_idx_set(folder):
    """Read the four idx files of one dataset folder."""
    return {
        key: read_idx(folder / name, IDX_IMAGES_MAGIC if key.startswith("x") else IDX_LABELS_MAGIC)
        for key, name in IDX_FILES.items()
    }


def _to_splits(arrays, source, class_names, num_validation):
    x_train = check_images(arrays["x_train"], source, "x_train", (28, 28))
    x_test = check_images(arrays["x_test"], source, "x_test", (28, 28))
    y_train = check_labels(arrays["y_train"], source, "y_train", 10, count=len(x_train))
    y_test = check_labels(arrays["y_test"], source, "y_test", 10, count=len(x_test))
    if not 0 <= num_validation < len(x_train):
        raise DataError(f"num_validation={num_validation} must be in 0..{len(x_train) - 1} for {source}")
    n_train = len(x_train) - num_validation
    scale = lambda x: np.asarray(x, np.float32) / 255.0  # noqa: E731
    return Splits(
        scale(x_train[:n_train]),
        y_train[:n_train],
        scale(x_train[n_train:]),
        y_train[n_train:],
        scale(x_test),
        y_test,
        class_names=class_names,
        source=str(source),
        note=f"validation = last {num_validation} training images",
    )

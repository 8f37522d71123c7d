"""tfnets.data: every dataset the apps use, loaded from local files in their download formats.

Loaders (each returns a `Splits`: x/y arrays for train, valid and test, class names, source, provenance):
  * `load_notmnist(data_dir)`: notMNIST A-J from the ECE421 `notMNIST.npz`, a `notMNIST_small/` PNG folder or
    `notMNIST_small.tar.gz`; seed-521 shuffle, 10000/6000/rest (same fractions for other sizes).
  * `load_mnist(data_dir, num_validation=10000)`, `load_fashion_mnist(...)`: Keras `mnist.npz` layout or idx `.gz`.
  * `load_cifar10(data_dir, num_validation=1000, subtract_mean=False)`: `cifar-10-batches-py/` or its tarball,
    CS231n split (last 1,000 training images validate), HWC float32 0..255.
  * `load_catcar(data_dir)`: EEE443 `assign2_data1.h5`, images turned upright; `to_signed_labels` for -1/+1.
  * `load_trigrams(data_dir, seed=443)`: EEE443 `assign2_data2.h5` layout (or its surrogate), else 4-grams built
    from `raw_sentences.txt`; 0-based indices.
  * `make_toy_dataset(name, n, noise, seed)` + `train_test_split`: TensorFlow Playground circle/xor/gaussian/spiral.
Helpers: `Splits.subset` (the apps' --quick mode), `resolve_data_dir` (argument, else $TFNETS_DATA_DIR, else
~/.cache/tfnets/data) and `fetch` (a download with `tfnets.data.download`: resumable, checksummed; or a one-line
`DataError` saying which file to place where; `TFNETS_OFFLINE=1` never downloads). Any unreadable, truncated or mis-shaped file raises `tfnets.errors.DataError` naming the file.
"""

from tfnets.data.catcar import load_catcar, to_signed_labels
from tfnets.data.cifar10 import load_cifar10
from tfnets.data.mnist import load_fashion_mnist, load_mnist
from tfnets.data.notmnist import load_notmnist
from tfnets.data.paths import fetch, resolve_data_dir
from tfnets.data.splits import Splits
from tfnets.data.toy2d import make_toy_dataset, train_test_split
from tfnets.data.trigrams import load_trigrams

__all__ = [
    "Splits",
    "fetch",
    "load_catcar",
    "load_cifar10",
    "load_fashion_mnist",
    "load_mnist",
    "load_notmnist",
    "load_trigrams",
    "make_toy_dataset",
    "resolve_data_dir",
    "to_signed_labels",
    "train_test_split",
]

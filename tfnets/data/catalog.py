"""Every dataset the apps read, where its files go in the data directory, and where they come from.

`python -m tfnets.data` (`make data`) walks this catalogue: it downloads what has a public source and is not
yet present, and lists what a user must copy in by hand.
"""

import dataclasses

from tfnets.data import catcar, cifar10, mnist, notmnist, trigrams


@dataclasses.dataclass(frozen=True)
class Download:
    path: str  # relative to the data directory
    url: str
    sha256: str | None = None


@dataclasses.dataclass(frozen=True)
class Dataset:
    """`present`: relative paths, any one of which means the dataset is in place (a tuple inside the tuple:
    all of those files). `downloads`: what fetching it means; empty when there is no public source."""

    name: str
    used_by: str
    present: tuple
    downloads: tuple = ()

    def is_present(self, data_dir):
        def there(entry):
            return (
                all((data_dir / p).exists() for p in entry) if isinstance(entry, tuple) else (data_dir / entry).exists()
            )

        return any(there(entry) for entry in self.present)


_FASHION_IDX = tuple(f"fashion_mnist/{name}" for name in mnist.IDX_FILES.values())
_MNIST_IDX = tuple(f"mnist/{name}" for name in mnist.IDX_FILES.values())

DATASETS = (
    Dataset(
        "notMNIST",
        "notmnist_mlp, notmnist_cnn",
        (notmnist.NPZ_NAME, notmnist.FOLDER_NAME, notmnist.TARBALL_NAME),
        (Download(notmnist.TARBALL_NAME, notmnist.URL),),
    ),
    Dataset(
        "MNIST",
        "mnist_cnn, mnist_depth_width",
        ("mnist.npz", _MNIST_IDX),
        (Download("mnist.npz", mnist.KERAS_ORIGIN + "mnist.npz", mnist.MNIST_NPZ_SHA256),),
    ),
    Dataset(
        "Fashion-MNIST",
        "mnist_depth_width --dataset fashion",
        ("fashion_mnist.npz", _FASHION_IDX),
        tuple(Download(path, mnist.KERAS_ORIGIN + path.split("/")[1]) for path in _FASHION_IDX),
    ),
    Dataset(
        "CIFAR-10",
        "cifar_fc_net",
        (cifar10.FOLDER_NAME, cifar10.TARBALL_NAME),
        (Download(cifar10.TARBALL_NAME, cifar10.URL, cifar10.TARBALL_SHA256),),
    ),
    Dataset("cat-vs-car (EEE443 assign2_data1.h5)", "catcar_mlp", (catcar.FILE_NAME,)),
    Dataset(
        "trigrams (EEE443 assign2_data2.h5, or raw_sentences.txt of Hinton's course)",
        "trigram_embedding",
        tuple(f"{trigrams.SUBDIR}/{name}" for name in (trigrams.ORIGINAL, trigrams.SURROGATE, trigrams.RAW)),
    ),
)

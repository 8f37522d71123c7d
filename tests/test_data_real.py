"""Every loader on the real files of TFNETS_DATA_DIR (../shared/data): split sizes, class counts, dtypes, ranges.

Expected numbers come from the data folder's README and from the datasets' published statistics, not from
running the loaders.
"""

import re

import numpy as np
import pytest

from tests.conftest import require_file
from tfnets.data import load_catcar, load_cifar10, load_mnist, load_notmnist, load_trigrams, to_signed_labels
from tfnets.data.trigrams import build_from_sentences


@pytest.fixture(autouse=True)
def _never_download(monkeypatch):
    monkeypatch.setenv("TFNETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def notmnist(data_dir):
    require_file(data_dir, "notMNIST_small")
    return load_notmnist(data_dir)


@pytest.fixture(scope="session")
def cifar(data_dir):
    require_file(data_dir, "cifar-10-batches-py")
    return load_cifar10(data_dir)


def _all_labels(splits):
    return np.concatenate([splits.y_train, splits.y_valid, splits.y_test])


def test_notmnist_counts_and_split(notmnist, data_dir):
    # README: A 997, B 998, C 997, D 991, E 991, F 992, G 996, H 993, I 856, J 993 (9,804 PNGs).
    readme_counts = [997, 998, 997, 991, 991, 992, 996, 993, 856, 993]
    assert np.bincount(_all_labels(notmnist), minlength=10).tolist() == readme_counts
    n = sum(readme_counts)
    # Same fractions as 10000/6000/2724 of the 18,724-image ECE421 file, rounded to the nearest integer.
    assert notmnist.sizes() == {
        "train": round(n * 10000 / 18724),
        "valid": round(n * 6000 / 18724),
        "test": n - round(n * 10000 / 18724) - round(n * 6000 / 18724),
    }
    assert notmnist.skipped == 0
    assert notmnist.class_names == tuple("ABCDEFGHIJ")
    for x in (notmnist.x_train, notmnist.x_valid, notmnist.x_test):
        assert x.dtype == np.float32 and x.shape[1:] == (28, 28)
        assert x.min() == 0.0 and x.max() == 1.0
    assert notmnist.y_train.dtype == np.int64


def test_notmnist_split_is_the_assignments_shuffle(notmnist, data_dir):
    """Re-read the PNGs independently and apply the assignment's literal loadData code."""
    from PIL import Image

    paths = [p for letter in "ABCDEFGHIJ" for p in sorted((data_dir / "notMNIST_small" / letter).glob("*.png"))]
    labels = np.array(["ABCDEFGHIJ".index(p.parent.name) for p in paths])
    state = np.random.get_state()
    try:
        np.random.seed(521)
        rand_indx = np.arange(len(paths))
        np.random.shuffle(rand_indx)
    finally:
        np.random.set_state(state)
    expected_first = rand_indx[:20]
    np.testing.assert_array_equal(notmnist.y_train[:20], labels[expected_first])
    for row, index in enumerate(expected_first[:5]):
        pixels = np.asarray(Image.open(paths[index]).convert("L"), np.float32) / 255.0
        np.testing.assert_array_equal(notmnist.x_train[row], pixels)
    test_start = len(notmnist.y_train) + len(notmnist.y_valid)
    np.testing.assert_array_equal(notmnist.y_test, labels[rand_indx[test_start:]])


def test_notmnist_is_deterministic(notmnist, data_dir):
    again = load_notmnist(data_dir)
    np.testing.assert_array_equal(again.y_train, notmnist.y_train)
    np.testing.assert_array_equal(again.x_test, notmnist.x_test)


def test_mnist(data_dir):
    require_file(data_dir, "mnist.npz")
    mnist = load_mnist(data_dir)
    assert mnist.sizes() == {"train": 50000, "valid": 10000, "test": 10000}
    # Canonical MNIST class counts (training set 60,000; test set 10,000).
    train_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert (mnist.class_counts("train") + mnist.class_counts("valid")).tolist() == train_counts
    assert mnist.class_counts("test").tolist() == test_counts
    assert mnist.x_train.dtype == np.float32 and mnist.x_train.shape[1:] == (28, 28)
    assert 0.0 <= mnist.x_train.min() and mnist.x_train.max() <= 1.0
    everything = np.concatenate([mnist.x_train, mnist.x_valid]).astype(np.float64)
    assert everything.mean() == pytest.approx(0.1307, abs=5e-4)  # the canonical normalisation constants
    assert everything.std() == pytest.approx(0.3081, abs=5e-4)
    no_valid = load_mnist(data_dir, num_validation=0)
    assert no_valid.sizes() == {"train": 60000, "valid": 0, "test": 10000}
    np.testing.assert_array_equal(no_valid.x_train[50000:], mnist.x_valid)  # validation = LAST 10,000


def test_cifar10(cifar, data_dir):
    assert cifar.sizes() == {"train": 49000, "valid": 1000, "test": 10000}
    assert (cifar.class_counts("train") + cifar.class_counts("valid")).tolist() == [5000] * 10
    assert cifar.class_counts("test").tolist() == [1000] * 10
    assert cifar.class_names == (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    assert cifar.x_train.dtype == np.float32 and cifar.x_train.shape[1:] == (32, 32, 3)
    assert cifar.x_train.min() >= 0 and cifar.x_train.max() <= 255
    # README: per-channel training mean ~ 125.3 / 122.9 / 113.9 (over all 50,000 training images).
    channel_mean = np.concatenate([cifar.x_train, cifar.x_valid]).mean(axis=(0, 1, 2), dtype=np.float64)
    np.testing.assert_allclose(channel_mean, [125.3, 122.9, 113.9], atol=0.1)


def test_cifar10_validation_is_last_1000_and_mean_subtraction(cifar, data_dir):
    import pickle

    with open(data_dir / "cifar-10-batches-py" / "data_batch_5", "rb") as f:
        last_batch = pickle.load(f, encoding="bytes")
    np.testing.assert_array_equal(cifar.y_valid, last_batch[b"labels"][-1000:])
    # Independent channel-major -> HWC conversion of the last image: R plane is the first 1024 values.
    row = last_batch[b"data"][-1]
    np.testing.assert_array_equal(cifar.x_valid[-1][..., 0], row[:1024].reshape(32, 32))
    np.testing.assert_array_equal(cifar.x_valid[-1][..., 2], row[2048:].reshape(32, 32))
    centred = load_cifar10(data_dir, subtract_mean=True)
    assert np.abs(centred.x_train.mean(axis=0, dtype=np.float64)).max() < 1e-3
    np.testing.assert_allclose(centred.x_test + centred.extras["mean_image"], cifar.x_test, atol=1e-3)


def test_catcar(data_dir):
    require_file(data_dir, "assign2_data1.h5")
    catcar = load_catcar(data_dir)
    assert catcar.sizes() == {"train": 1900, "valid": 0, "test": 1000}
    assert catcar.class_counts("train").tolist() == [950, 950]  # README: balanced
    assert catcar.class_counts("test").tolist() == [500, 500]
    assert catcar.x_train.dtype == np.float32 and catcar.x_train.shape[1:] == (32, 32)
    assert 0.0 <= catcar.x_train.min() and catcar.x_train.max() <= 1.0
    import h5py

    with h5py.File(data_dir / "assign2_data1.h5") as h5:
        stored = h5["trainims"][7]
    np.testing.assert_array_equal(catcar.x_train[7] * 255.0, stored.T.astype(np.float32))
    np.testing.assert_array_equal(to_signed_labels([0, 1, 1]), [-1.0, 1.0, 1.0])


def test_trigrams_surrogate(data_dir):
    require_file(data_dir, "trigrams/assign2_data2_surrogate.h5")
    require_file(data_dir, "trigrams/raw_sentences.txt")
    trigrams = load_trigrams(data_dir)
    assert trigrams.sizes() == {"train": 372500, "valid": 46500, "test": 46500}
    assert len(trigrams.class_names) == 250
    assert "SURROGATE" in trigrams.note
    for x, y in ((trigrams.x_train, trigrams.y_train), (trigrams.x_test, trigrams.y_test)):
        assert x.shape[1] == 3 and x.dtype == np.int64 and y.dtype == np.int64
        assert 0 <= x.min() and x.max() <= 249 and 0 <= y.min() and y.max() <= 249
    used = np.unique(np.concatenate([trigrams.x_train.ravel(), trigrams.y_train]))
    assert used.tolist() == list(range(250))  # 1-based file indices 1..250 became 0..249
    # 0-based decoding must give real 4-grams of the corpus (lower-cased, as in the course data).
    corpus = (
        " "
        + " ".join(
            " ".join(line.lower().split())
            for line in (data_dir / "trigrams/raw_sentences.txt").read_text().splitlines()
        )
        + " "
    )
    words = trigrams.class_names
    for row in range(0, 372500, 37250):
        gram = [words[i] for i in trigrams.x_train[row]] + [words[trigrams.y_train[row]]]
        assert re.search(re.escape(" " + " ".join(gram) + " "), corpus), gram


def test_trigrams_built_from_sentences(data_dir):
    path = require_file(data_dir, "trigrams/raw_sentences.txt")
    built = build_from_sentences(path, seed=443)
    n = 465686  # README: 465,686 four-word sequences over exactly 250 words
    assert sum(built.sizes().values()) == n
    assert built.sizes() == {"train": int(0.8 * n), "valid": int(0.1 * n), "test": n - int(0.8 * n) - int(0.1 * n)}
    assert len(built.class_names) == 250 and list(built.class_names) == sorted(built.class_names)
    again = build_from_sentences(path, seed=443)
    np.testing.assert_array_equal(again.x_valid, built.x_valid)
    other = build_from_sentences(path, seed=1)
    assert not np.array_equal(other.x_train[:100], built.x_train[:100])

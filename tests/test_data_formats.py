"""Loaders on small files these tests write themselves: the other accepted layouts, and bad files.

Every bad input must raise `DataError` whose message is one line and names the offending file.
"""

import gzip
import io
import os
import pickle
import struct
import tarfile

import h5py
import numpy as np
import pytest
from PIL import Image

from tfnets.data import (
    fetch,
    load_catcar,
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
    load_notmnist,
    load_trigrams,
    resolve_data_dir,
)
from tfnets.errors import DataError


@pytest.fixture(autouse=True)
def _never_download(monkeypatch):
    monkeypatch.setenv("TFNETS_OFFLINE", "1")
    monkeypatch.delenv("TFNETS_DATA_DIR", raising=False)


def assert_data_error(call, *fragments):
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert str(fragment) in message, (fragment, message)
    return message


def assignment_order(n):
    """The ECE421 loadData shuffle, written out literally (global NumPy RNG, state restored)."""
    state = np.random.get_state()
    try:
        np.random.seed(521)
        rand_indx = np.arange(n)
        np.random.shuffle(rand_indx)
    finally:
        np.random.set_state(state)
    return rand_indx


def png_bytes(value):
    buffer = io.BytesIO()
    Image.fromarray(np.full((28, 28), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- notMNIST


def test_notmnist_ece421_npz_full_size(tmp_path):
    n = 18724
    labels = np.arange(n) % 10
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(n) % 256  # a per-image tag to follow the shuffle
    images[:, 0, 1] = np.arange(n) // 256
    np.savez(tmp_path / "notMNIST.npz", images=images, labels=labels)
    splits = load_notmnist(tmp_path)
    assert splits.sizes() == {"train": 10000, "valid": 6000, "test": 2724}
    order = assignment_order(n)
    data = images[order] / 255.0  # the assignment's `Data[randIndx] / 255.`
    np.testing.assert_allclose(splits.x_train, data[:10000], atol=1e-7)
    np.testing.assert_allclose(splits.x_valid, data[10000:16000], atol=1e-7)
    np.testing.assert_array_equal(splits.y_test, labels[order][16000:])
    assert splits.x_train.dtype == np.float32


def test_notmnist_ece421_npz_either_orientation(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 50)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    np.savez(tmp_path / "a" / "notMNIST.npz", images=images, labels=labels)
    np.savez(tmp_path / "b" / "notMNIST.npz", images=np.moveaxis(images, 0, 2), labels=labels[:, None])
    first, second = load_notmnist(tmp_path / "a"), load_notmnist(tmp_path / "b")
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)
    # 50 * 10000/18724 = 26.7 -> 27; 50 * 6000/18724 = 16.02 -> 16; test gets the remaining 7.
    assert first.sizes() == {"train": 27, "valid": 16, "test": 7}


def write_notmnist_tarball(path, per_class=3, corrupt=True):
    """A notMNIST_small.tar.gz with constant-valued PNGs (value = 20 * class + index) and one corrupt PNG."""
    with tarfile.open(path, "w:gz") as archive:

        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

        for label, letter in enumerate("ABCDEFGHIJ"):
            for index in range(per_class):
                add(f"notMNIST_small/{letter}/{letter}_{index}.png", png_bytes(20 * label + index))
        if corrupt:
            add("notMNIST_small/C/broken.png", b"")  # the official tarball has empty PNGs like this


def test_notmnist_tarball_skips_corrupt_png(tmp_path):
    write_notmnist_tarball(tmp_path / "notMNIST_small.tar.gz")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        splits = load_notmnist(tmp_path)
    assert splits.skipped == 1
    assert sum(splits.sizes().values()) == 30
    for x, y in ((splits.x_train, splits.y_train), (splits.x_valid, splits.y_valid), (splits.x_test, splits.y_test)):
        value = np.round(x[:, 0, 0] * 255).astype(int)
        np.testing.assert_array_equal(value // 20, y)  # each image's label is the letter folder it came from
        assert np.all(x == x[:, :1, :1])


def test_notmnist_folder_matches_tarball(tmp_path):
    (tmp_path / "tar").mkdir()
    write_notmnist_tarball(tmp_path / "tar" / "notMNIST_small.tar.gz")
    with tarfile.open(tmp_path / "tar" / "notMNIST_small.tar.gz") as archive:
        archive.extractall(tmp_path / "folder", filter="data")
    with pytest.warns(UserWarning):
        from_tar = load_notmnist(tmp_path / "tar")
    with pytest.warns(UserWarning):
        from_folder = load_notmnist(tmp_path / "folder")
    np.testing.assert_array_equal(from_tar.x_train, from_folder.x_train)
    np.testing.assert_array_equal(from_tar.y_test, from_folder.y_test)
    assert from_folder.skipped == 1


def test_notmnist_bad_inputs(tmp_path):
    (tmp_path / "empty" / "notMNIST_small").mkdir(parents=True)
    assert_data_error(lambda: load_notmnist(tmp_path / "empty"), tmp_path / "empty" / "notMNIST_small", "no readable")

    not_images = tmp_path / "junk" / "notMNIST_small" / "A"
    not_images.mkdir(parents=True)
    (not_images / "x.png").write_text("this is not a PNG")
    assert_data_error(lambda: load_notmnist(tmp_path / "junk"), "1 unreadable")

    write_notmnist_tarball(tmp_path / "whole.tar.gz")
    data = (tmp_path / "whole.tar.gz").read_bytes()
    (tmp_path / "trunc").mkdir()
    (tmp_path / "trunc" / "notMNIST_small.tar.gz").write_bytes(data[: len(data) // 2])
    assert_data_error(
        lambda: load_notmnist(tmp_path / "trunc"), tmp_path / "trunc" / "notMNIST_small.tar.gz", "truncated"
    )

    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "notMNIST.npz", images=np.zeros((4, 28, 28)), labels=np.array([0, 1, 2, 10]))
    assert_data_error(lambda: load_notmnist(tmp_path / "npz"), "notMNIST.npz", "labels", "0..9")
    np.savez(tmp_path / "npz" / "notMNIST.npz", x=np.zeros((4, 28, 28)), y=np.zeros(4))
    assert_data_error(lambda: load_notmnist(tmp_path / "npz"), "notMNIST.npz", "missing key")
    np.savez(tmp_path / "npz" / "notMNIST.npz", images=np.zeros((4, 32, 32)), labels=np.zeros(4))
    assert_data_error(lambda: load_notmnist(tmp_path / "npz"), "notMNIST.npz", "shape (4, 32, 32)")
    np.savez(tmp_path / "npz" / "notMNIST.npz", images=np.zeros((400, 28, 28)), labels=np.zeros(400))
    data = (tmp_path / "npz" / "notMNIST.npz").read_bytes()
    (tmp_path / "npz" / "notMNIST.npz").write_bytes(data[: len(data) // 2])
    assert_data_error(lambda: load_notmnist(tmp_path / "npz"), tmp_path / "npz" / "notMNIST.npz", "truncated")


def test_missing_files_offline_name_path_and_source(tmp_path):
    assert_data_error(
        lambda: load_notmnist(tmp_path),
        tmp_path / "notMNIST_small.tar.gz",
        tmp_path / "notMNIST.npz",
        "yaroslavvb.com",
        "TFNETS_OFFLINE=1",
    )
    assert_data_error(
        lambda: load_mnist(tmp_path),
        tmp_path / "mnist.npz",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
    )
    assert_data_error(lambda: load_fashion_mnist(tmp_path), tmp_path / "fashion_mnist" / "train-images-idx3-ubyte.gz")
    assert_data_error(
        lambda: load_cifar10(tmp_path),
        tmp_path / "cifar-10-python.tar.gz",
        tmp_path / "cifar-10-batches-py",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    )
    assert_data_error(lambda: load_catcar(tmp_path), tmp_path / "assign2_data1.h5", "copy it there by hand")
    assert_data_error(
        lambda: load_trigrams(tmp_path),
        tmp_path / "trigrams" / "assign2_data2.h5",
        tmp_path / "trigrams" / "raw_sentences.txt",
    )


# ---------------------------------------------------------------- fetch and the data directory


def test_resolve_data_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dir() == tmp_path / "cache" / "tfnets" / "data"
    monkeypatch.setenv("TFNETS_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"


def test_fetch_downloads_and_checks_hash(tmp_path, monkeypatch):
    """A file:// origin exercises the real download path without any network."""
    import hashlib

    monkeypatch.delenv("TFNETS_OFFLINE")
    source = tmp_path / "server" / "blob.bin"
    source.parent.mkdir()
    source.write_bytes(b"payload")
    digest = hashlib.sha256(b"payload").hexdigest()
    local = fetch("sub/blob.bin", tmp_path / "data", url=source.as_uri(), sha256=digest)
    assert local == tmp_path / "data" / "sub" / "blob.bin" and local.read_bytes() == b"payload"
    assert fetch("sub/blob.bin", tmp_path / "data", url="file:///nowhere") == local  # present: no download
    assert_data_error(
        lambda: fetch("other.bin", tmp_path / "data", url=source.as_uri(), sha256="0" * 64),
        tmp_path / "data" / "other.bin",
        "download failed",
    )
    assert_data_error(
        lambda: fetch("gone.bin", tmp_path / "data", url=(tmp_path / "nope").as_uri()),
        tmp_path / "data" / "gone.bin",
        "download failed",
    )
    read_only = tmp_path / "read_only"
    read_only.mkdir(mode=0o555)
    if not os.access(read_only, os.W_OK):  # root ignores the mode bits
        assert_data_error(
            lambda: fetch("blob.bin", read_only, url=source.as_uri()), read_only / "blob.bin", "not writable"
        )


# ---------------------------------------------------------------- MNIST / Fashion-MNIST


def write_idx(path, array):
    magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_idx_set(folder, n_train=30, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28)),
        "y_train": np.arange(n_train) % 10,
        "x_test": rng.integers(0, 256, (n_test, 28, 28)),
        "y_test": np.arange(n_test) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    names = {
        "x_train": "train-images-idx3-ubyte.gz",
        "y_train": "train-labels-idx1-ubyte.gz",
        "x_test": "t10k-images-idx3-ubyte.gz",
        "y_test": "t10k-labels-idx1-ubyte.gz",
    }
    for key, name in names.items():
        write_idx(folder / name, arrays[key])
    return arrays


def test_fashion_mnist_idx_and_mnist_idx_folder(tmp_path):
    arrays = write_idx_set(tmp_path / "fashion_mnist")
    fashion = load_fashion_mnist(tmp_path, num_validation=5)
    assert fashion.sizes() == {"train": 25, "valid": 5, "test": 10}
    np.testing.assert_allclose(fashion.x_valid * 255.0, arrays["x_train"][25:], atol=1e-4)
    np.testing.assert_array_equal(fashion.y_test, arrays["y_test"])
    assert fashion.class_names[9] == "Ankle boot"

    arrays = write_idx_set(tmp_path / "mnist", seed=1)
    mnist = load_mnist(tmp_path, num_validation=0)
    np.testing.assert_allclose(mnist.x_train * 255.0, arrays["x_train"], atol=1e-4)
    assert mnist.x_train.dtype == np.float32 and mnist.sizes()["valid"] == 0


def test_mnist_bad_files(tmp_path):
    folder = tmp_path / "fashion_mnist"
    write_idx_set(folder)
    data = (folder / "t10k-images-idx3-ubyte.gz").read_bytes()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(data[:-30])
    assert_data_error(lambda: load_fashion_mnist(tmp_path, num_validation=0), "t10k-images-idx3-ubyte.gz")

    write_idx_set(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(30, 12))
    assert_data_error(lambda: load_fashion_mnist(tmp_path, num_validation=0), "y_train", "0..9")

    write_idx_set(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros((30, 28, 28)))  # images where labels belong
    assert_data_error(lambda: load_fashion_mnist(tmp_path, num_validation=0), "train-labels-idx1-ubyte.gz", "magic")

    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((5, 28, 28)), y_train=np.zeros(5))
    assert_data_error(lambda: load_mnist(tmp_path, num_validation=0), "mnist.npz", "missing key")
    np.savez(
        tmp_path / "mnist.npz",
        x_train=np.zeros((5, 28, 28)),
        y_train=np.zeros(4),
        x_test=np.zeros((2, 28, 28)),
        y_test=np.zeros(2),
    )
    assert_data_error(lambda: load_mnist(tmp_path, num_validation=0), "mnist.npz", "4 labels but there are 5")
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert_data_error(lambda: load_mnist(tmp_path), tmp_path / "mnist.npz")


# ---------------------------------------------------------------- CIFAR-10


def cifar_batch(n, seed):
    """A batch as the official files hold it: labels a list of Python ints (the restricted unpickler refuses
    NumPy scalars, which no official batch contains)."""
    rng = np.random.default_rng(seed)
    return {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), b"labels": rng.integers(0, 10, n).tolist()}


def write_cifar_tarball(path, n=4, meta=True):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {name: cifar_batch(n, seed) for seed, name in enumerate(names)}
    if meta:
        batches["batches.meta"] = {b"label_names": [b"c%d" % i for i in range(10)]}
    with tarfile.open(path, "w:gz") as archive:
        for name, batch in batches.items():
            data = pickle.dumps(batch)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return batches


def test_cifar10_tarball_layout(tmp_path):
    batches = write_cifar_tarball(tmp_path / "cifar-10-python.tar.gz")
    cifar = load_cifar10(tmp_path, num_validation=3)
    assert cifar.sizes() == {"train": 17, "valid": 3, "test": 4}
    assert cifar.class_names == tuple(f"c{i}" for i in range(10))
    row = batches["data_batch_5"][b"data"][-1]
    for channel in range(3):  # channel-major row: 1024 R, then 1024 G, then 1024 B values
        plane = row[1024 * channel : 1024 * (channel + 1)].reshape(32, 32)
        np.testing.assert_array_equal(cifar.x_valid[-1][..., channel], plane)
    np.testing.assert_array_equal(cifar.y_test, batches["test_batch"][b"labels"])
    centred = load_cifar10(tmp_path, num_validation=3, subtract_mean=True)
    np.testing.assert_allclose(centred.extras["mean_image"], cifar.x_train.mean(axis=0), atol=1e-4)


def test_cifar10_bad_files(tmp_path):
    write_cifar_tarball(tmp_path / "whole.tar.gz")
    data = (tmp_path / "whole.tar.gz").read_bytes()
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(data[: len(data) // 3])
    assert_data_error(lambda: load_cifar10(tmp_path), "cifar-10-python.tar.gz", "truncated")

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for seed, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        (folder / name).write_bytes(pickle.dumps(cifar_batch(4, seed)))
    assert load_cifar10(tmp_path, num_validation=1).class_names[0] == "airplane"  # no batches.meta: standard names
    (folder / "data_batch_3").write_bytes(pickle.dumps(cifar_batch(4, 0))[:50])
    assert_data_error(lambda: load_cifar10(tmp_path, num_validation=1), folder / "data_batch_3", "unpickle")
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"pixels": [], b"labels": []}))
    assert_data_error(lambda: load_cifar10(tmp_path, num_validation=1), "data_batch_3", "missing key")
    bad = cifar_batch(4, 0)
    bad[b"labels"][0] = 10
    (folder / "data_batch_3").write_bytes(pickle.dumps(bad))
    assert_data_error(lambda: load_cifar10(tmp_path, num_validation=1), "data_batch_3", "0..9")
    (folder / "data_batch_3").unlink()
    assert_data_error(lambda: load_cifar10(tmp_path, num_validation=1), folder / "data_batch_3")


# ---------------------------------------------------------------- cat-vs-car


def test_catcar_h5_is_transposed_upright(tmp_path):
    upright = np.zeros((4, 32, 32), np.uint8)
    upright[:, :4, :] = 255  # a bright band along the TOP rows of the true image
    with h5py.File(tmp_path / "assign2_data1.h5", "w") as h5:
        h5["trainims"] = upright.transpose(0, 2, 1)  # stored as the file does: transposed
        h5["trainlbls"] = np.array([0.0, 1.0, 0.0, 1.0])
        h5["testims"] = upright[:2].transpose(0, 2, 1)
        h5["testlbls"] = np.array([1.0, 0.0])
    catcar = load_catcar(tmp_path, num_validation=1)
    assert catcar.sizes() == {"train": 3, "valid": 1, "test": 2}
    assert np.all(catcar.x_train[:, :4, :] == 1.0) and np.all(catcar.x_train[:, 4:, :] == 0.0)
    assert catcar.y_test.tolist() == [1, 0] and catcar.y_test.dtype == np.int64


def test_catcar_bad_files(tmp_path):
    path = tmp_path / "assign2_data1.h5"
    with h5py.File(path, "w") as h5:
        h5["trainims"] = np.zeros((4, 32, 32), np.uint8)
        h5["trainlbls"] = np.array([0.0, 1.0, 2.0, 1.0])
        h5["testims"] = np.zeros((2, 32, 32), np.uint8)
        h5["testlbls"] = np.array([1.0, 0.0])
    assert_data_error(lambda: load_catcar(tmp_path), path, "trainlbls", "0..1")
    with h5py.File(path, "w") as h5:
        h5["trainims"] = np.zeros((4, 32, 32), np.uint8)
    assert_data_error(lambda: load_catcar(tmp_path), path, "missing key")
    with h5py.File(path, "w") as h5:
        h5["trainims"] = np.zeros((400, 32, 32), np.uint8)
        h5["trainlbls"] = np.zeros(400)
        h5["testims"] = np.zeros((2, 32, 32), np.uint8)
        h5["testlbls"] = np.zeros(2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_data_error(lambda: load_catcar(tmp_path), path, "truncated")


# ---------------------------------------------------------------- trigrams


def write_trigram_h5(path, words, offset=1, note=None):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        for x_key, y_key, n in (("trainx", "traind", 8), ("valx", "vald", 3), ("testx", "testd", 3)):
            h5[x_key] = rng.integers(0, len(words), (n, 3)) + offset
            h5[y_key] = rng.integers(0, len(words), n) + offset
        h5["words"] = np.array([w.encode() for w in words])
        if note:
            h5.attrs["NOTE"] = note


def test_trigrams_layouts_and_preference(tmp_path):
    folder = tmp_path / "trigrams"
    folder.mkdir()
    (folder / "raw_sentences.txt").write_text("The cat sat on the mat .\nshort line\nA dog sat .\n")
    built = load_trigrams(tmp_path, seed=0)
    # 4-grams: 7 tokens -> 4 windows, 2 tokens -> none, 4 tokens -> 1 window; words lower-cased and sorted.
    assert built.class_names == (".", "a", "cat", "dog", "line", "mat", "on", "sat", "short", "the")
    assert sum(built.sizes().values()) == 5 and built.sizes()["train"] == 4
    grams = {
        tuple(built.class_names[i] for i in row) + (built.class_names[y],)
        for x, ys in ((built.x_train, built.y_train), (built.x_valid, built.y_valid), (built.x_test, built.y_test))
        for row, y in zip(x, ys)
    }
    assert grams == {
        ("the", "cat", "sat", "on"),
        ("cat", "sat", "on", "the"),
        ("sat", "on", "the", "mat"),
        ("on", "the", "mat", "."),
        ("a", "dog", "sat", "."),
    }

    words = ["w%d" % i for i in range(5)]
    write_trigram_h5(folder / "assign2_data2_surrogate.h5", words, note="surrogate!")
    assert load_trigrams(tmp_path).note == "surrogate!"
    write_trigram_h5(folder / "assign2_data2.h5", words)
    original = load_trigrams(tmp_path)
    assert original.source.endswith("assign2_data2.h5") and original.class_names == tuple(words)
    with h5py.File(folder / "assign2_data2.h5") as h5:
        np.testing.assert_array_equal(original.x_train, h5["trainx"][()] - 1)  # 1-based -> 0-based
        np.testing.assert_array_equal(original.y_valid, h5["vald"][()] - 1)


def test_trigrams_bad_files(tmp_path):
    folder = tmp_path / "trigrams"
    folder.mkdir()
    write_trigram_h5(folder / "assign2_data2.h5", ["a", "b", "c"], offset=0)  # 0-based: index 0 is invalid
    assert_data_error(lambda: load_trigrams(tmp_path), folder / "assign2_data2.h5", "1-based")
    (folder / "assign2_data2.h5").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    assert_data_error(lambda: load_trigrams(tmp_path), folder / "assign2_data2.h5")
    (folder / "assign2_data2.h5").unlink()
    (folder / "raw_sentences.txt").write_text("too short\n")
    assert_data_error(lambda: load_trigrams(tmp_path), folder / "raw_sentences.txt", "4 or more words")

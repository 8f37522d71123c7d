"""CIFAR-10 batches from untrusted sources: the restricted unpickler, and a fuzz of the folder and tarball readers.

The seeds are a slice of the real `data_batch_1` (re-pickled as the shared copy is: protocol 4, NumPy 2 names)
and a batch written the way the official 2009 files were (Python 2, protocol 2, `numpy.core.multiarray`).
"""

import hashlib
import io
import pickle
import struct
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import require_file
from tests.fuzzing import Seeds, check_reader, mutated
from tfnets.data import load_cifar10
from tfnets.data.cifar10 import META, TEST_BATCH, TRAIN_BATCHES
from tfnets.data.cifar_pickle import load_batch
from tfnets.errors import DataError

BATCH_NAMES = (*TRAIN_BATCHES, TEST_BATCH)
ROWS = 6


@pytest.fixture(scope="module")
def real_folder(data_dir):
    return require_file(data_dir, "cifar-10-batches-py")


@pytest.fixture(scope="module")
def seed_files(real_folder):
    """{file name: pickled bytes}: each batch a slice of real rows, labels and file names; the real meta file."""
    real = load_batch((real_folder / "data_batch_1").read_bytes(), "data_batch_1")
    files = Seeds()
    for k, name in enumerate(BATCH_NAMES):
        rows = slice(k * ROWS, (k + 1) * ROWS)
        batch = {
            b"batch_label": real[b"batch_label"],
            b"labels": real[b"labels"][rows],
            b"data": real[b"data"][rows],
            b"filenames": real[b"filenames"][rows],
        }
        files[name] = pickle.dumps(batch, protocol=4)
    files[META] = (real_folder / META).read_bytes()
    return files


def python2_batch(data, labels):
    """A batch pickled as by Python 2's cPickle, protocol 2 (the official 2009 files): str keys and raw bytes as
    BINSTRING, the array rebuilt by numpy.core.multiarray._reconstruct, ints as BININT1/BININT2."""

    def string(value):
        return b"T" + struct.pack("<i", len(value)) + value

    def global_(module, name):
        return b"c" + module + b"\n" + name + b"\n"

    rows, cols = data.shape
    array = (
        global_(b"numpy.core.multiarray", b"_reconstruct")
        + global_(b"numpy", b"ndarray")
        + b"K\x00\x85"  # (0,)
        + string(b"b")
        + b"\x87R"  # TUPLE3, REDUCE
        + b"(K\x01"  # state: version 1
        + b"M"
        + struct.pack("<H", rows)
        + b"M"
        + struct.pack("<H", cols)
        + b"\x86"  # shape
        + global_(b"numpy", b"dtype")
        + string(b"u1")
        + b"K\x00K\x01\x87R"  # dtype('u1', 0, 1)
        + b"(K\x03"
        + string(b"|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # dtype state, BUILD
        + b"\x89"  # not Fortran order
        + string(data.tobytes())
        + b"tb"  # array state, BUILD
    )
    label_list = b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return b"\x80\x02}(" + string(b"data") + array + string(b"labels") + label_list + b"u."


# ---------------------------------------------------------------------------------------------------------
# The restricted unpickler
# ---------------------------------------------------------------------------------------------------------


def test_shared_copy_loads_bit_for_bit_as_plain_pickle(real_folder):
    """The restricted unpickler gives exactly what `pickle.load` gives on the shared (trusted) copy."""
    for name in (*BATCH_NAMES, META):
        raw = (real_folder / name).read_bytes()
        plain, restricted = pickle.loads(raw, encoding="bytes"), load_batch(raw, name)
        assert plain.keys() == restricted.keys()
        for key, value in plain.items():
            if isinstance(value, np.ndarray):
                assert restricted[key].dtype == value.dtype and restricted[key].shape == value.shape
                assert hashlib.sha256(restricted[key].tobytes()).digest() == hashlib.sha256(value.tobytes()).digest()
                assert restricted[key].flags.writeable
            else:
                assert restricted[key] == value, (name, key)


def test_official_python2_layout_loads():
    data = np.arange(2 * 3072, dtype=np.int64).reshape(2, 3072).astype(np.uint8)
    raw = python2_batch(data, [3, 7])
    assert pickle.loads(raw, encoding="bytes")[b"data"].tolist() == data.tolist()  # the emitter is a real pickle
    batch = load_batch(raw, "data_batch_1")
    np.testing.assert_array_equal(batch[b"data"], data)
    assert batch[b"data"].dtype == np.uint8 and batch[b"labels"] == [3, 7]


def file_creating_pickle(target):
    """A pickle whose loading calls builtins.open(target, "w"): harmless, but it creates a file."""
    text = str(target).encode()
    return b"cbuiltins\nopen\n(" + b"X" + struct.pack("<I", len(text)) + text + b"X\x01\x00\x00\x00wtR."


def test_a_pickle_that_would_create_a_file_is_refused(real_folder, seed_files, tmp_path):
    proof = tmp_path / "proof"
    pickle.loads(file_creating_pickle(proof))  # the payload works with a plain unpickler
    assert proof.exists()

    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, raw in seed_files.items():
        (folder / name).write_bytes(raw)
    target = tmp_path / "created_by_the_pickle"
    (folder / "data_batch_2").write_bytes(file_creating_pickle(target))
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path / "data", num_validation=1)
    message = str(info.value)
    assert "\n" not in message
    assert str(folder / "data_batch_2") in message and "builtins.open" in message
    assert not target.exists()


@pytest.mark.parametrize(
    "payload, refused",
    [
        (b"cos\nsystem\n(X\x04\x00\x00\x00trueX\x00\x00\x00\x00tR.", "os.system"),
        (b"\x8c\x13numpy._core.numeric\x94\x8c\x0b_frombuffer\x94\x93.", "numpy._core.numeric._frombuffer"),
        # numpy.dtype("O"): an object array would hold whatever the pickle puts in it.
        (b"cnumpy\ndtype\n(X\x02\x00\x00\x00O8K\x00K\x01tR.", "dtype 'O8'"),
        # _reconstruct with another class than ndarray (here: dict).
        (b"cnumpy.core.multiarray\n_reconstruct\n(cbuiltins\ndict\nK\x00\x85C\x01btR.", "builtins.dict"),
    ],
)
def test_anything_but_the_official_contents_is_refused(payload, refused, tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    for name in BATCH_NAMES:
        (tmp_path / "cifar-10-batches-py" / name).write_bytes(payload)
    with pytest.raises(DataError, match="data_batch_1") as info:
        load_cifar10(tmp_path)
    assert refused in str(info.value)


@pytest.mark.parametrize("labels", [[2**70], [b"3"], [[1]], [1.5], "0123"])
def test_labels_other_than_a_list_of_ints_are_refused(seed_files, tmp_path, labels):
    """NumPy would overflow on, reject, or nest such labels: each is one line naming the batch."""
    write_folder(tmp_path, seed_files)
    batch = load_batch(seed_files["data_batch_4"], "seed")
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").write_bytes(pickle.dumps({**batch, b"labels": labels}))
    with pytest.raises(DataError, match="data_batch_4: 'labels' is not a list of integers"):
        load_cifar10(tmp_path, num_validation=1)


# ---------------------------------------------------------------------------------------------------------
# Fuzz
# ---------------------------------------------------------------------------------------------------------


def write_folder(root, files):
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    for name, raw in files.items():
        (folder / name).write_bytes(raw)


def tar_bytes(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


def test_seeds_load(seed_files, tmp_path):
    """The unmutated seeds load (so the fuzz starts from valid files), as a folder and as a tarball."""
    for sub in "abc":
        (tmp_path / sub).mkdir()
    write_folder(tmp_path / "a", seed_files)
    (tmp_path / "b" / "cifar-10-python.tar.gz").write_bytes(tar_bytes(seed_files))
    for root in (tmp_path / "a", tmp_path / "b"):
        assert load_cifar10(root, num_validation=1).sizes() == {"train": 5 * ROWS - 1, "valid": 1, "test": ROWS}
    write_folder(tmp_path / "c", {**seed_files, "data_batch_3": python2_batch(np.zeros((2, 3072), np.uint8), [1, 2])})
    assert load_cifar10(tmp_path / "c", num_validation=1).sizes()["train"] == 4 * ROWS + 1


@given(data=st.data())
def test_fuzz_batch_files(seed_files, data):
    name = data.draw(st.sampled_from(["data_batch_1", TEST_BATCH, META, "python2"]))
    seed = python2_batch(np.arange(3 * 3072).reshape(3, 3072).astype(np.uint8), [0, 9, 4])
    raw = data.draw(mutated(seed if name == "python2" else seed_files[name]))
    with tempfile.TemporaryDirectory() as root:
        write_folder(Path(root), {**seed_files, ("data_batch_2" if name == "python2" else name): raw})
        check_reader(lambda: load_cifar10(root, num_validation=1), folder=root)


@given(data=st.data())
def test_fuzz_tarball(seed_files, data):
    raw = data.draw(mutated(tar_bytes(seed_files), max_ops=3))
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "cifar-10-python.tar.gz").write_bytes(raw)
        check_reader(lambda: load_cifar10(root, num_validation=1), folder=root)

"""MNIST and Fashion-MNIST readers (Keras `.npz`, gzipped idx) on damaged and crafted files.

Seeds: a slice of the real `mnist.npz` (8 training and 4 test digits), written in both layouts (the npz as
`np.savez` writes it, the idx files as the official ones are laid out). The same readers serve Fashion-MNIST
(other folder and file names), fuzzed through `load_fashion_mnist` with the same seeds.
"""

import gzip
import io
import tempfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.conftest import require_file
from tests.fuzzing import Seeds, check_reader, mutated
from tfnets.data import arrays as arrays_module
from tfnets.data import load_fashion_mnist, load_mnist
from tfnets.data.arrays import MAX_ARRAY_BYTES, read_npz
from tfnets.data.mnist import IDX_FILES, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx
from tfnets.errors import DataError


@pytest.fixture(scope="module")
def arrays(data_dir):
    real = read_npz(require_file(data_dir, "mnist.npz"))
    sizes = {"x_train": 8, "y_train": 8, "x_test": 4, "y_test": 4}
    return Seeds({key: real[key][:n] for key, n in sizes.items()})


def npz_bytes(arrays, compressed=False):
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def idx_bytes(array):
    """The idx layout: magic (unsigned byte, ndim), big-endian uint32 sizes, the bytes."""
    magic = IDX_IMAGES_MAGIC if array.ndim == 3 else IDX_LABELS_MAGIC
    head = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return head + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx_folder(folder, raw_files):
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in IDX_FILES.items():
        (folder / name).write_bytes(raw_files[key])


def test_seeds_load(arrays, tmp_path):
    (tmp_path / "mnist.npz").write_bytes(npz_bytes(arrays))
    write_idx_folder(tmp_path / "fashion_mnist", {k: gzip.compress(idx_bytes(a)) for k, a in arrays.items()})
    for splits in (load_mnist(tmp_path, num_validation=1), load_fashion_mnist(tmp_path, num_validation=1)):
        assert splits.sizes() == {"train": 7, "valid": 1, "test": 4}
        np.testing.assert_array_equal(splits.y_test, arrays["y_test"])


@given(data=st.data())
def test_fuzz_npz(arrays, data):
    """The Keras-layout npz (stored as np.savez writes it, or compressed), read as MNIST or as Fashion-MNIST."""
    raw = data.draw(mutated(npz_bytes(arrays, compressed=data.draw(st.booleans()))))
    fashion = data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / ("fashion_mnist.npz" if fashion else "mnist.npz")).write_bytes(raw)
        load = load_fashion_mnist if fashion else load_mnist
        check_reader(lambda: load(root, num_validation=1), folder=root)


@given(data=st.data())
def test_fuzz_idx_files(arrays, data):
    """One of the four idx files mutated, before gzip (the header and sizes) or after (the gzip stream), read as
    MNIST or as Fashion-MNIST."""
    key = data.draw(st.sampled_from(sorted(IDX_FILES)))
    files = {k: gzip.compress(idx_bytes(a)) for k, a in arrays.items()}
    if data.draw(st.booleans()):
        files[key] = gzip.compress(data.draw(mutated(idx_bytes(arrays[key]))))
    else:
        files[key] = data.draw(mutated(files[key]))
    fashion = data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as root:
        write_idx_folder(Path(root) / ("fashion_mnist" if fashion else "mnist"), files)
        load = load_fashion_mnist if fashion else load_mnist
        check_reader(lambda: load(root, num_validation=1), folder=root)


ODD_DTYPES = st.sampled_from(["u1", "i8", "f4", "f8", "?", "c8", "O", "U3", "S2", "V4", "u1,i4", "M8[s]"])


@st.composite
def odd_arrays(draw):
    """Arrays of wrong shapes, dtypes and label values under the four keys (some keys missing or extra)."""
    result = {}
    for key in (*IDX_FILES, "extra"):
        if draw(st.integers(0, 5)) == 0:
            continue
        dtype = np.dtype(draw(ODD_DTYPES))
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=30))
        if dtype.kind == "O":
            result[key] = np.array([draw(st.integers()) for _ in range(3)] + [None], dtype=object)
        elif dtype.kind == "V":  # raw bytes and records: no value strategy, zeros are wrong enough
            result[key] = np.zeros(shape, dtype)
        else:
            result[key] = draw(hnp.arrays(dtype, shape))
    return result


@given(data=st.data())
def test_fuzz_wrong_shapes_dtypes_and_labels(arrays, data):
    fields = data.draw(odd_arrays())
    keep = data.draw(st.booleans())  # the valid arrays, with some replaced; or only the odd ones
    raw = npz_bytes({**arrays, **fields} if keep else fields)
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "mnist.npz").write_bytes(raw)
        check_reader(lambda: load_mnist(root, num_validation=1), folder=root)


def npy_bytes(shape, descr, payload):
    """A .npy file written by hand, so that its header can declare anything."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


def test_absurd_declared_shape_is_refused_before_allocating(arrays, tmp_path):
    """An npz member whose header declares (10**12,) float64 in a few hundred bytes, and an idx header declaring
    2**32-1 images: both refused from the header, with almost nothing allocated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, array in arrays.items():
            payload = npy_bytes(array.shape, array.dtype.str, array.tobytes())
            archive.writestr(f"{key}.npy", npy_bytes((10**12,), "<f8", bytes(32)) if key == "y_test" else payload)
    (tmp_path / "mnist.npz").write_bytes(buffer.getvalue())
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="y_test") as info:
            load_mnist(tmp_path, num_validation=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "declares" in str(info.value) and peak < 16 << 20

    head = IDX_IMAGES_MAGIC.to_bytes(4, "big") + (2**32 - 1).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (tmp_path / "huge.gz").write_bytes(gzip.compress(head + bytes(100)))
    with pytest.raises(DataError, match=f"over the limit of {MAX_ARRAY_BYTES}"):
        read_idx(tmp_path / "huge.gz", IDX_IMAGES_MAGIC)


def test_the_size_limit_is_checked_from_the_header(arrays, tmp_path, monkeypatch):
    """With the limit lowered below the seed's 6,272-byte x_train, the header alone refuses it."""
    (tmp_path / "mnist.npz").write_bytes(npz_bytes(arrays))
    monkeypatch.setattr(arrays_module, "MAX_ARRAY_BYTES", 6000)
    with pytest.raises(
        DataError, match=r"x_train: its header declares shape \(8, 28, 28\) of uint8 \(6272 bytes\), over"
    ):
        load_mnist(tmp_path, num_validation=1)


def test_zip_sizes_that_deflate_cannot_produce_are_refused(arrays, tmp_path):
    """A stored member whose npy header and zip directory both claim 80 MB, over 32 bytes of data: refused from
    the zip's records, before an 80 MB buffer is allocated."""
    raw = bytearray(npz_bytes({**arrays, "y_test": np.zeros(4, np.int64)}))
    old_shape, new_shape = b"'shape': (4,), }", b"'shape': (10000000,), }"
    at = raw.index(old_shape)
    padding = len(new_shape) - len(old_shape)
    assert raw[at + len(old_shape) : at + len(new_shape)] == b" " * padding
    raw[at : at + len(new_shape)] = new_shape
    header_end = raw.index(b"\n", at) + 1
    member_start = raw.rindex(b"\x93NUMPY", 0, at)
    claimed = header_end - member_start + 80_000_000
    directory = raw.rindex(b"PK\x01\x02", 0, raw.index(b"y_test.npy", raw.index(b"PK\x01\x02")) + 1)
    raw[directory + 24 : directory + 28] = claimed.to_bytes(4, "little")  # uncompressed size
    (tmp_path / "mnist.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="y_test: the zip records 80000128 bytes for 160 compressed ones"):
        load_mnist(tmp_path, num_validation=1)


def test_gzip_bomb_is_not_inflated_past_the_declared_size(tmp_path):
    """An idx header of 10 images followed by 64 MB of zeros (64 KB gzipped): refused as too long, after
    inflating no more than the declared 7,840 bytes + 1."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    head = IDX_IMAGES_MAGIC.to_bytes(4, "big") + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    chunks = [squeeze.compress(head)] + [squeeze.compress(bytes(1 << 20)) for _ in range(64)] + [squeeze.flush()]
    (tmp_path / "bomb.gz").write_bytes(b"".join(chunks))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="holds more data bytes"):
            read_idx(tmp_path / "bomb.gz", IDX_IMAGES_MAGIC)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20

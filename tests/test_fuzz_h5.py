"""HDF5 readers (cat-vs-car `assign2_data1.h5`, trigram `assign2_data2*.h5`) and the trigram text reader on damaged
and crafted files.

Seeds: slices of the real files (8 training and 4 test images of cat-vs-car; 20 rows of each trigram split with the
250 words and the NOTE attribute; the first 60 lines of `raw_sentences.txt`), written with h5py as the originals.
"""

import io
import tempfile
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import require_file
from tests.fuzzing import Seeds, check_reader, mutated
from tfnets.data import load_catcar, load_trigrams
from tfnets.data.arrays import MAX_ARRAY_BYTES
from tfnets.data.catcar import FILE_NAME as CATCAR
from tfnets.data.catcar import KEYS as CATCAR_KEYS
from tfnets.data.trigrams import KEYS as TRIGRAM_KEYS
from tfnets.data.trigrams import RAW, SUBDIR, SURROGATE
from tfnets.errors import DataError


def h5_bytes(arrays, attrs=None):
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        for key, array in arrays.items():
            h5[key] = array
        h5.attrs.update(attrs or {})
    return buffer.getvalue()


@pytest.fixture(scope="module")
def seeds(data_dir):
    with h5py.File(require_file(data_dir, CATCAR), "r") as h5:
        sizes = {"trainims": 8, "trainlbls": 8, "testims": 4, "testlbls": 4}
        catcar = h5_bytes({key: h5[key][:n] for key, n in sizes.items()})
    with h5py.File(require_file(data_dir, f"{SUBDIR}/{SURROGATE}"), "r") as h5:
        trigrams = {key: h5[key][:20] if key != "words" else h5[key][()] for key in TRIGRAM_KEYS}
        trigram = h5_bytes(trigrams, {"NOTE": h5.attrs["NOTE"]})
    with open(require_file(data_dir, f"{SUBDIR}/{RAW}"), "rb") as text:
        lines = b"".join(text.readline() for _ in range(60))
    return Seeds(catcar=catcar, trigram=trigram, text=lines)


def test_seeds_load(seeds, tmp_path):
    (tmp_path / CATCAR).write_bytes(seeds["catcar"])
    assert load_catcar(tmp_path).sizes() == {"train": 8, "valid": 0, "test": 4}
    (tmp_path / SUBDIR).mkdir()
    (tmp_path / SUBDIR / SURROGATE).write_bytes(seeds["trigram"])
    assert load_trigrams(tmp_path).sizes() == {"train": 20, "valid": 20, "test": 20}
    (tmp_path / SUBDIR / SURROGATE).unlink()
    (tmp_path / SUBDIR / RAW).write_bytes(seeds["text"])
    assert len(load_trigrams(tmp_path).class_names) > 50


@given(data=st.data())
def test_fuzz_catcar_h5(seeds, data):
    raw = data.draw(mutated(seeds["catcar"]))
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / CATCAR).write_bytes(raw)
        check_reader(lambda: load_catcar(root), folder=root)


@given(data=st.data())
def test_fuzz_trigram_h5(seeds, data):
    raw = data.draw(mutated(seeds["trigram"]))
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / SUBDIR).mkdir()
        (Path(root) / SUBDIR / SURROGATE).write_bytes(raw)
        check_reader(lambda: load_trigrams(root), folder=root)


@given(data=st.data())
def test_fuzz_trigram_text(seeds, data):
    raw = data.draw(mutated(seeds["text"]))
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / SUBDIR).mkdir()
        (Path(root) / SUBDIR / RAW).write_bytes(raw)
        check_reader(lambda: load_trigrams(root), folder=root)


@st.composite
def odd_catcar(draw):
    """Cat-vs-car arrays of wrong shapes, dtypes and label values (h5py writes them as the file would)."""
    arrays = {}
    for key in CATCAR_KEYS:
        kind = draw(st.sampled_from(["u1", "f8", "i8", "?", "S3"]))
        n = draw(st.integers(0, 5))
        shape = draw(st.sampled_from([(n, 32, 32), (n, 32), (n,), (n, 1), (32, 32, n), ()]))
        arrays[key] = np.full(shape, draw(st.sampled_from([0, 1, 2, -1, 255]))).astype(kind)  # -1 wraps in u1
    return arrays


@given(arrays=odd_catcar())
def test_fuzz_catcar_wrong_shapes_dtypes_and_labels(arrays):
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / CATCAR).write_bytes(h5_bytes(arrays))
        check_reader(lambda: load_catcar(root), folder=root)


# ---------------------------------------------------------------------------------------------------------
# Crafted files: pointing outside, objects instead of numbers, absurd declared sizes
# ---------------------------------------------------------------------------------------------------------


def catcar_with(tmp_path, replace):
    """A valid cat-vs-car file whose 'trainims' is made by `replace(h5, other_file_path)`."""
    other = tmp_path / "elsewhere.h5"
    with h5py.File(other, "w") as h5:
        h5["trainims"] = np.zeros((2, 32, 32), np.uint8)
    (tmp_path / "outside.bin").write_bytes(bytes(2 * 32 * 32))
    with h5py.File(tmp_path / CATCAR, "w") as h5:
        h5["trainlbls"] = np.zeros(2)
        h5["testims"] = np.zeros((1, 32, 32), np.uint8)
        h5["testlbls"] = np.zeros(1)
        replace(h5, other)


CRAFTED = {
    "external link": (
        lambda h5, other: h5.__setitem__("trainims", h5py.ExternalLink(str(other), "trainims")),
        "ExternalLink",
    ),
    "soft link": (lambda h5, other: h5.__setitem__("trainims", h5py.SoftLink("/testims")), "SoftLink"),
    "external raw data": (
        lambda h5, other: h5.create_dataset(
            "trainims", (2, 32, 32), np.uint8, external=[(str(other.parent / "outside.bin"), 0, 2048)]
        ),
        "other files",
    ),
    "object references": (
        lambda h5, other: h5.create_dataset("trainims", data=np.array([h5["testims"].ref] * 2, dtype=h5py.ref_dtype)),
        "object references",
    ),
    "strings": (
        lambda h5, other: h5.__setitem__("trainims", np.array([b"a"] * 2, dtype=object)),
        "expected plain numbers",
    ),
    "group": (lambda h5, other: h5.create_group("trainims"), "expected a dataset"),
}


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_datasets_pointing_outside_or_holding_objects_are_refused(tmp_path, kind):
    replace, message = CRAFTED[kind]
    catcar_with(tmp_path, replace)
    with pytest.raises(DataError, match="trainims") as info:
        load_catcar(tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_absurd_declared_shape_is_refused_before_allocating(tmp_path):
    """A chunked, compressed dataset declaring 2 GB of images in a few kilobytes of file."""
    catcar_with(
        tmp_path,
        lambda h5, other: h5.create_dataset("trainims", (2 << 20, 32, 32), np.uint8, chunks=(1, 32, 32), compression=1),
    )
    assert (tmp_path / CATCAR).stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=f"over the limit of {MAX_ARRAY_BYTES}"):
            load_catcar(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20

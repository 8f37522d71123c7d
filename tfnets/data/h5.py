"""Reading HDF5 files (the EEE443 assignment files) with every h5py failure turned into a `DataError`.

An HDF5 file can point outside itself: a soft or external link (to another file), a dataset whose raw data lives
in external files (any file on the machine, read as numbers), a virtual dataset mapping other files, a filter
that makes the HDF5 library load a plugin. It can also hold object references and variable-length objects
instead of numbers, or declare a shape far larger than its bytes (chunked, compressed). The assignment files do
none of that, so each dataset read here must be stored in the file itself (hard link, contiguous/compact/chunked
storage, standard filters only), be plain numbers (strings only where a key is text), and declare at most
`MAX_ARRAY_BYTES`; anything else is refused with one line naming the file and the dataset.
"""

from tfnets.data.arrays import MAX_ARRAY_BYTES, NUMERIC_KINDS, require_regular
from tfnets.data.checks import corrupt_file_error, require_keys
from tfnets.errors import DataError

# The filters the HDF5 library (and h5py's bundled LZF) implement without loading a plugin: deflate (1),
# shuffle (2), fletcher32 (3), szip (4), nbit (5), scale-offset (6), LZF (32000).
BUILTIN_FILTERS = {1, 2, 3, 4, 5, 6, 32000}
# What h5py raises on a damaged or crafted file (its low-level errors are OSError/KeyError/ValueError subclasses).
H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError, IndexError)


def _check_dataset(h5, key, path, text):
    """Raise unless `h5[key]` is a plain dataset stored in this file, of numbers (or strings when `text`)."""
    import h5py

    where = f"{path}: '{key}'"
    link = h5.get(key, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise DataError(
            f"{where} is a {type(link).__name__} (it points elsewhere); only data stored in the file is read"
        )
    dataset = h5[key]
    if not isinstance(dataset, h5py.Dataset):
        raise DataError(f"{where} is a {type(dataset).__name__}, expected a dataset")
    plist = dataset.id.get_create_plist()
    if dataset.is_virtual or plist.get_external_count():
        raise DataError(f"{where} keeps its data in other files (virtual or external storage); refused")
    filters = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
    if filters - BUILTIN_FILTERS:
        raise DataError(f"{where} needs HDF5 filter(s) {sorted(filters - BUILTIN_FILTERS)} from a plugin; refused")
    dtype = dataset.dtype
    is_text = h5py.check_string_dtype(dtype) is not None or dtype.kind in "SU"
    if not (dtype.kind in NUMERIC_KINDS and dtype.fields is None and dtype.subdtype is None) and not (text and is_text):
        want = "strings" if text else "plain numbers"
        raise DataError(f"{where} has dtype {dtype}, expected {want} (object references and records are refused)")
    declared = dataset.size * dtype.itemsize
    if declared > MAX_ARRAY_BYTES:
        raise DataError(
            f"{where} declares shape {dataset.shape} ({declared} bytes), over the limit of {MAX_ARRAY_BYTES} bytes"
        )
    return dataset


def read_h5(path, keys, text_keys=()):
    """Read the named datasets of an HDF5 file into NumPy arrays (checked as the module docstring says);
    `text_keys` may hold strings instead of numbers."""
    import h5py

    require_regular(path, "HDF5 file")
    try:
        with h5py.File(path, "r") as h5:
            require_keys(h5, keys, path)
            datasets = {key: _check_dataset(h5, key, path, key in text_keys) for key in keys}
            return {key: dataset[()] for key, dataset in datasets.items()}
    except DataError:
        raise
    except H5_ERRORS as err:
        raise corrupt_file_error(path, err, "HDF5 file") from err


def read_h5_attr(path, name):
    """One file-level attribute of an HDF5 file as str, or "" when absent (or not text)."""
    import h5py

    require_regular(path, "HDF5 file")
    try:
        with h5py.File(path, "r") as h5:
            value = h5.attrs.get(name, "")
    except H5_ERRORS as err:
        raise corrupt_file_error(path, err, "HDF5 file") from err
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""

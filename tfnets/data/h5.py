"""Reading HDF5 files (the EEE443 assignment files) with every h5py failure turned into a `DataError`."""

from tfnets.data.checks import corrupt_file_error, require_keys


def read_h5(path, keys):
    """Read the named datasets of an HDF5 file into NumPy arrays, wrapping h5py errors in DataError."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            require_keys(h5, keys, path)
            return {key: h5[key][()] for key in keys}
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise corrupt_file_error(path, err, "HDF5 file") from err


def read_h5_attr(path, name):
    """One file-level attribute of an HDF5 file as str, or "" when absent."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            value = h5.attrs.get(name, "")
    except OSError as err:
        raise corrupt_file_error(path, err, "HDF5 file") from err
    return value.decode() if isinstance(value, bytes) else str(value)

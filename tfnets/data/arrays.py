"""Reading `.npy` / `.npz` arrays and whole files that a user was handed, with memory bounded before allocating.

`np.load` allocates what an array's header declares before it reads the data: a 128-byte `.npy` whose header
says (10**6, 10**6) float64 raises MemoryError, and a zip member of a few kilobytes can inflate to gigabytes.
Here each array's header is read first, and the array is refused with a one-line `DataError` unless
  * its dtype is plain numbers (bool, int, uint, float: no objects, so nothing is unpickled, no structured fields);
  * it declares at most `MAX_ARRAY_BYTES`;
  * the file (or zip member, by the zip's own size record) holds exactly those bytes after the header.
Only then is one buffer of that size allocated and filled.

`read_regular_file` reads a whole file only if it is a regular file (not a FIFO that never ends, not `/dev/zero`
behind a symlink) of at most a given size.
"""

import contextlib
import io
import lzma
import math
import os
import stat
import tokenize
import zipfile
import zlib

import numpy as np

from tfnets.data.checks import corrupt_file_error
from tfnets.errors import DataError

# The largest array any dataset here holds is MNIST's x_train (47 MB as uint8, 188 MB as float32); 1 GiB
# leaves room for float64 copies of every dataset and still fits the smallest machine the project runs on.
MAX_ARRAY_BYTES = 1 << 30
NUMERIC_KINDS = "biuf"
DEFLATE_MAX_RATIO = 1032  # the most deflate can expand: 258-byte matches, 2 bits each at best
# What opening or inflating a zip member raises on a damaged or crafted archive (RuntimeError: encrypted
# members; NotImplementedError: a compression method Python lacks).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)
ZIP_ERRORS += (RuntimeError, NotImplementedError)


class _ClampedFile(io.FileIO):
    """An unbuffered file whose `read(n)` never asks for more than what is left of it. A buffered `read(n)`
    allocates n bytes before reading: Pillow's PNG reader skips the declared rest of a truncated IDAT chunk with
    one such read (2 GiB for a 40-byte file), `zipfile` reads a member's declared compressed size."""

    def __init__(self, fd, size):
        super().__init__(fd, "rb", closefd=True)
        self.size = size

    def read(self, size=-1):
        if size is not None and size >= 0:
            size = min(size, max(self.size - self.tell(), 0))
        return super().read(size)


@contextlib.contextmanager
def open_regular(path, max_bytes, what="file"):
    """Yield (binary stream, size) of `path`, refused (`DataError`) unless it is a regular file of at most
    `max_bytes` bytes. Opened non-blocking so that a FIFO cannot stall the open; the type and size come from the
    open file itself, so a symlink swapped in between cannot slip past. Reads never ask for more than the size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, IsADirectoryError):
        raise
    except OSError as err:
        raise corrupt_file_error(path, err, what) from err
    info = os.fstat(fd)
    with _ClampedFile(fd, info.st_size) as stream:
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"{path}: not a regular file (a device, FIFO or socket); refusing to read it as a {what}")
        if info.st_size > max_bytes:
            raise DataError(f"{path}: {info.st_size} bytes, more than the {max_bytes} a {what} may have")
        yield stream, info.st_size


def require_regular(path, what="file"):
    """Raise unless `path` (symlinks followed) is a regular file: for readers that open by name themselves
    (h5py), so that a FIFO does not block them and a device is not read."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, IsADirectoryError):
        raise
    except (OSError, ValueError) as err:
        raise corrupt_file_error(path, err, what) from err
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: not a regular file; refusing to read it as a {what}")


def read_regular_file(path, max_bytes, what="file"):
    """The bytes of `path` (see `open_regular`)."""
    with open_regular(path, max_bytes, what) as (stream, size):
        try:
            return read_at_most(stream, size)
        except OSError as err:
            raise corrupt_file_error(path, err, what) from err


def read_at_most(stream, limit, chunk=1 << 20):
    """Up to `limit` bytes of `stream`, read a chunk at a time: memory follows the bytes that are really there,
    not `limit` (one `read(limit)` allocates all of it first, whatever the stream then holds)."""
    parts, size = [], 0
    while size < limit:
        part = stream.read(min(chunk, limit - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _read_exactly(stream, buffer):
    """Fill `buffer` from `stream`; returns how many bytes came (fewer only at the end of the stream)."""
    view, done = memoryview(buffer), 0
    while done < len(view):
        got = stream.readinto(view[done:])
        if not got:
            break
        done += got
    return done


def _check_header(shape, fortran, dtype, available, where):
    """Raise unless the declared array is plain numbers, within the limit, and exactly `available` bytes."""
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise DataError(f"{where}: dtype {dtype} is not plain numbers (objects and records are refused)")
    declared = math.prod(shape) * dtype.itemsize
    if declared > MAX_ARRAY_BYTES:
        raise DataError(
            f"{where}: its header declares shape {shape} of {dtype} ({declared} bytes), "
            f"over the limit of {MAX_ARRAY_BYTES} bytes"
        )
    if declared != available:
        raise DataError(
            f"{where}: its header declares shape {shape} of {dtype} ({declared} bytes) but {available} bytes "
            "follow; it is truncated or corrupt: replace it"
        )
    return declared


def _read_npy_stream(stream, size, where):
    """One `.npy` image from `stream` of `size` bytes in all -> a writable array."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:  # 3.0 only adds UTF-8 field names, and records are refused anyway
            raise DataError(f"{where}: .npy format version {version} is not read here (1.0 and 2.0 are)")
        declared = _check_header(shape, fortran, dtype, size - stream.tell(), where)
        buffer = np.empty(declared, np.uint8)
        if _read_exactly(stream, buffer) != declared:
            raise DataError(f"{where}: ends before its {declared} data bytes; it is truncated: replace it")
    except DataError:
        raise
    except (*ZIP_ERRORS, SyntaxError, TypeError, KeyError, tokenize.TokenError) as err:
        # NumPy parses the header with ast.literal_eval (SyntaxError) after a tokenize pass (TokenError)
        raise corrupt_file_error(where, err, ".npy array") from err
    return buffer.view(dtype).reshape(shape, order="F" if fortran else "C")


def read_npy(path):
    """A `.npy` file -> its array (plain numbers only, at most `MAX_ARRAY_BYTES`)."""
    with open_regular(path, MAX_ARRAY_BYTES + 65536, ".npy array") as (stream, size):  # + the largest header
        return _read_npy_stream(stream, size, path)


def _check_member(info, where):
    """Refuse a zip member whose recorded size could not come from its compressed bytes (deflate inflates at
    most 1032:1), or that uses a compression method NumPy never writes (bzip2 and LZMA ratios are unbounded)."""
    if info.compress_type == zipfile.ZIP_STORED:
        possible = info.compress_size
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        possible = DEFLATE_MAX_RATIO * info.compress_size + 1024
    else:
        raise DataError(f"{where}: compression method {info.compress_type} is not one NumPy writes (stored, deflate)")
    if info.file_size > possible:
        raise DataError(
            f"{where}: the zip records {info.file_size} bytes for {info.compress_size} compressed ones; corrupt"
        )


def read_npz(path, keys=None):
    """A `.npz` file -> {name: array} for `keys` (all members, in stored order, when None).

    Each array is checked as the module docstring says, and together they may declare at most `MAX_ARRAY_BYTES`.
    A missing key raises the same `DataError` as `tfnets.data.checks.require_keys`.
    """
    try:
        with open_regular(path, 2 * MAX_ARRAY_BYTES, "npz file") as (stream, _), zipfile.ZipFile(stream) as archive:
            members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
            names = list(members) if keys is None else list(keys)
            missing = [key for key in names if key not in members]
            if missing:
                raise DataError(
                    f"{path}: missing key(s) {missing} (found {sorted(members)}); not the expected file layout"
                )
            for key in names:
                _check_member(members[key], f"{path}:{key}")
            total = sum(members[key].file_size for key in names)
            if total > MAX_ARRAY_BYTES + 65536 * len(names):
                raise DataError(f"{path}: its arrays inflate to {total} bytes, over the limit of {MAX_ARRAY_BYTES}")
            arrays = {}
            for key in names:
                with archive.open(members[key]) as member:
                    arrays[key] = _read_npy_stream(member, members[key].file_size, f"{path}:{key}")
            return arrays
    except (FileNotFoundError, IsADirectoryError, DataError):
        raise
    except ZIP_ERRORS as err:
        raise corrupt_file_error(path, err, "npz file") from err

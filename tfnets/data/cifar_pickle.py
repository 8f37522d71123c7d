"""A restricted unpickler for the CIFAR-10 "python version" batches: it builds data, never runs code.

`pickle.load` calls whatever callable a file names, so a `data_batch_1` placed by hand or taken from a tarball of
unknown origin can run any code with the user's rights. The official batches (pickled by Python 2 in 2009, or
re-pickled by NumPy 2) contain only dicts, lists, bytes/str, ints and one NumPy array each, and name exactly three
globals to rebuild that array:

    numpy.core.multiarray._reconstruct  (NumPy 2 writes numpy._core.multiarray._reconstruct)
    numpy.ndarray
    numpy.dtype

`find_class` accepts those names only, and even then hands back stand-ins instead of NumPy's own functions: the
stand-ins record the array's shape, dtype code and raw bytes and check them (plain numeric dtypes, bytes that
match the shape), then `np.frombuffer` makes the array. NumPy's `__setstate__` never sees a crafted state. Any
other global (os.system, builtins.open, ...) is refused before it is looked up, with one `DataError` naming the
file. Everything else a pickle can express without globals (dict, list, tuple, bytes, str, int, float, bool,
None) is data.
"""

import io
import math
import pickle

import numpy as np

# The NumPy dtype codes a batch may use: unsigned and signed integers, floats (the official data is 'u1').
DTYPE_CODES = {f"{kind}{size}" for kind in "ui" for size in (1, 2, 4, 8)} | {"f4", "f8"}
BYTE_ORDERS = {"|", "<", ">", "="}
RECONSTRUCT = ("numpy.core.multiarray", "numpy._core.multiarray")


class _NdarrayName:
    """What `numpy.ndarray` unpickles to: only a marker that `_reconstruct` checks."""


class _Dtype:
    """Stand-in for `numpy.dtype(code, align, copy)` followed by BUILD with its state tuple."""

    def __init__(self, code, align=False, copy=True):
        code = code.decode("ascii", "replace") if isinstance(code, bytes) else code
        if not isinstance(code, str) or code not in DTYPE_CODES:
            raise pickle.UnpicklingError(f"array dtype {code!r} refused (only plain integers and floats)")
        self.code, self.order = code, "|"

    def __setstate__(self, state):
        # (version, byte order, subarray, names, fields, elsize, alignment[, flags]); only plain dtypes pass.
        # Python 2 pickles, read with encoding="bytes", give the byte order as bytes (b'|').
        order = state[1] if isinstance(state, tuple) and len(state) >= 5 else None
        order = order.decode("ascii", "replace") if isinstance(order, bytes) else order
        if order not in BYTE_ORDERS:
            raise pickle.UnpicklingError("array dtype state refused (not a plain numeric dtype)")
        if any(part is not None for part in state[2:5]):
            raise pickle.UnpicklingError("array dtype with subarrays or fields refused")
        self.order = order

    def numpy(self):
        return np.dtype(("" if self.order == "|" else self.order) + self.code)


class _Array:
    """Stand-in for `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` followed by BUILD with
    `(version, shape, dtype, is_fortran, raw bytes)`; `.array` is the checked ndarray."""

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4):
            raise pickle.UnpicklingError("array state refused (not (shape, dtype, fortran, bytes))")
        shape, dtype, fortran, raw = state
        if isinstance(raw, str):  # a Python 2 str unpickled without encoding="bytes"
            raw = raw.encode("latin-1")
        ok = (
            isinstance(shape, tuple)
            and all(isinstance(d, int) and d >= 0 for d in shape)
            and isinstance(dtype, _Dtype)
            and isinstance(fortran, bool)
            and isinstance(raw, bytes)
        )
        if not ok:
            raise pickle.UnpicklingError("array state refused (not (shape, dtype, fortran, bytes))")
        dtype = dtype.numpy()
        if math.prod(shape) * dtype.itemsize != len(raw):
            raise pickle.UnpicklingError(f"array of shape {shape} {dtype} does not match its {len(raw)} bytes")
        # A copy: writable, like the array pickle.load makes.
        self.array = np.frombuffer(raw, dtype).reshape(shape, order="F" if fortran else "C").copy()


def _reconstruct(cls, shape, code):
    if cls is not _NdarrayName or shape != (0,):
        raise pickle.UnpicklingError("array reconstruction with unexpected arguments refused")
    return _Array()


ALLOWED = {
    **{(module, "_reconstruct"): _reconstruct for module in RECONSTRUCT},
    ("numpy", "ndarray"): _NdarrayName,
    ("numpy", "dtype"): _Dtype,
}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a global outside `ALLOWED`: the file could run code."""


# Protocol 5's out-of-band buffers (BYTEARRAY8 allocates its declared length, zero-filled, before reading it)
# and persistent ids: no batch uses them.
REFUSED_OPCODES = {pickle.BYTEARRAY8[0], pickle.NEXT_BUFFER[0], pickle.READONLY_BUFFER[0]}
REFUSED_OPCODES |= {pickle.PERSID[0], pickle.BINPERSID[0]}


class BatchUnpickler(pickle._Unpickler):
    """Unpickles only what the official CIFAR-10 batches contain (see the module docstring).

    The pure-Python unpickler, not the C one: the C one allocates a bytes object of the length an opcode declares
    before reading it (a flipped bit makes that terabytes: MemoryError), the Python one reads what is there and
    never allocates more than the input. It is slower (each of a batch's 20,000 labels and file names is an
    opcode run in Python), which matters little next to the rest of loading.
    """

    dispatch = {code: load for code, load in pickle._Unpickler.dispatch.items() if code not in REFUSED_OPCODES}

    def find_class(self, module, name):
        try:
            return ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise RefusedGlobal(f"{module}.{name}") from None


def _real_arrays(value):
    """Replace the stand-ins at the top of an unpickled batch by their arrays (a batch is a flat dict)."""
    if isinstance(value, _Array):
        if value.array is None:
            raise pickle.UnpicklingError("array without its data")
        return value.array
    if isinstance(value, dict):
        return {key: _real_arrays(item) if isinstance(item, _Array) else item for key, item in value.items()}
    return value


def load_batch(data, where):
    """Unpickle one batch's bytes (as `pickle.load(..., encoding="bytes")` would, data only).

    Raises `RefusedGlobal` (naming the global) for a pickle that would call anything else; other failures are
    the usual unpickling errors, for the caller to report.
    """
    try:
        return _real_arrays(BatchUnpickler(io.BytesIO(data), encoding="bytes").load())
    except KeyError as err:  # the opcode table: an unknown or refused opcode
        raise pickle.UnpicklingError(f"unknown or refused opcode {err}") from None


def refused_message(where, err):
    """The one line for a `RefusedGlobal`: which file, which global, what to do."""
    return (
        f"{where}: refused to unpickle: it names {err}, which no CIFAR-10 batch contains (a crafted pickle "
        "could run code); nothing from it was run. Replace it with the official file"
    )

"""Shared pieces of the fuzz tests (`tests/test_fuzz_*.py`): hypothesis profiles, byte mutations, the property.

Profiles, chosen by `TFNETS_FUZZ` (`make fuzz` sets `long`):
  * `quick` (default, `make test`): `QUICK_EXAMPLES` cases per reader, derandomized (the same cases on every run
    and machine, so CI is reproducible), a few seconds per reader;
  * `long`: `LONG_EXAMPLES` cases per reader, random (each run explores new cases; a failure prints the seed
    to reproduce it with `@reproduce_failure`).
Both give each case a deadline (`DEADLINE_MS`, far above the tens of milliseconds a case takes, so a slow shared
machine does not fail it, yet a hang or a gigabyte allocation would).

The property (`check_reader`): a reader given a mutated file either succeeds or raises a `TfnetsError` (the
one-line `error:` of the CLI); any other exception fails the test with the input that caused it. Each case also
has its Python-level allocations measured (tracemalloc sees NumPy's buffers too) and must stay under
`MAX_CASE_BYTES`, and the data folder must hold the same files afterwards (nothing written).
"""

import os
import struct
import tracemalloc
import zlib
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tfnets.errors import TfnetsError

QUICK_EXAMPLES = 40
LONG_EXAMPLES = 1500
DEADLINE_MS = 5000
# Seeds are kilobytes; a reader that trusted a mutated header would allocate gigabytes.
MAX_CASE_BYTES = 256 << 20

settings.register_profile(
    "quick",
    max_examples=QUICK_EXAMPLES,
    derandomize=True,
    deadline=DEADLINE_MS,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=LONG_EXAMPLES,
    deadline=DEADLINE_MS,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("TFNETS_FUZZ", "quick")
settings.load_profile(PROFILE)

# Byte values that make header fields absurd (sizes, counts, lengths) or merely wrong.
INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFF]


@st.composite
def mutated(draw, seed, max_ops=4):
    """`seed` bytes after 1..max_ops mutations: truncation, bit flips, bytes overwritten with absurd values
    (0xFF runs make huge declared sizes), bytes inserted or deleted."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["truncate", "flip", "overwrite", "run", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "truncate":
            del data[at:]
        elif op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite" and data:
            data[at] = draw(st.sampled_from(INTERESTING_BYTES) | st.integers(0, 255))
        elif op == "run" and data:
            value = draw(st.sampled_from(INTERESTING_BYTES))
            length = draw(st.integers(1, 8))
            data[at : at + length] = bytes([value]) * min(length, len(data) - at)
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


class Seeds(dict):
    """The seeds {name: bytes or array}, shown by name and size only when hypothesis prints a failing case."""

    def __repr__(self):
        sizes = ", ".join(f"{name}: {memoryview(value).nbytes} bytes" for name, value in self.items())
        return f"Seeds({sizes})"


def listing(folder):
    """{relative path: (size, mtime)} of everything under `folder`: what 'nothing written' compares."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def check_reader(read, folder=None, max_bytes=MAX_CASE_BYTES):
    """Run `read()`; returns its result, or the `TfnetsError` it raised (one line). Any other exception
    propagates (hypothesis then reports the input). Fails when the case allocated more than `max_bytes`, when
    the message has more than one line, or when `folder` changed."""
    before = listing(folder) if folder is not None else None
    tracemalloc.start()
    try:
        outcome = read()
    except TfnetsError as err:
        outcome = err
        assert "\n" not in str(err), f"a multi-line error: {err!r}"
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak <= max_bytes, f"one case allocated {peak} bytes (limit {max_bytes})"
    if folder is not None:
        assert listing(folder) == before, "the reader wrote into the data folder"
    return outcome


def blank_png(width, height):
    """A 1-bit black PNG of any size, compressed row by row: a 20000x20000 one is 48 KB (a decompression bomb)."""

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    squeeze, row = zlib.compressobj(9), b"\x00" + bytes((width + 7) // 8)
    pixels = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")

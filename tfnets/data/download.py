"""Resumable downloads with a progress bar and a checksum.

`download(url, target)` streams `url` into `<target>.part`, continuing from the bytes already there with an HTTP
`Range` request (a server that ignores it sends the whole file, which then replaces the partial one), checks the
SHA-256 (or MD5, for a 32-digit hash) and only then renames the part file onto `target`. A kill at any moment
leaves either no `target` or a complete, verified one; the next call picks up the `.part` file where it stopped.
"""

import hashlib
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHUNK = 1 << 16
TIMEOUT_S = 60


class DownloadError(Exception):
    """The download failed; the message is one line (the `.part` file, if any, is kept for a resume)."""


def part_path(target):
    target = Path(target)
    return target.with_name(target.name + ".part")


def file_hash(path, expected):
    """The hex digest of `path` in the algorithm `expected` names by its length (32: MD5, else SHA-256)."""
    digest = hashlib.md5() if len(expected) == 32 else hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url, target, sha256=None, *, progress=None):
    """Download `url` to `target` (a `Path`), resuming a `.part` file; returns `target`.

    Raises `DownloadError` (one line) on network errors, HTTP errors and a checksum mismatch (then the part file is
    removed, since resuming it would only reproduce the bad bytes).
    """
    target = Path(target)
    part = part_path(target)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            resumed = have and response.status == 206
            if have and not resumed:
                have = 0  # the server sent the whole file: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            bar = progress if progress is not None else ProgressBar(target.name, total)
            bar.update(have)
            target.parent.mkdir(parents=True, exist_ok=True)  # only now: a failed request leaves no folder behind
            with open(part, "ab" if resumed else "wb") as handle:
                for block in iter(lambda: response.read(CHUNK), b""):
                    handle.write(block)
                    have += len(block)
                    bar.update(have)
            bar.close()
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # Range not satisfiable: the part file is already complete
            pass
        else:
            raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"{url}: {' '.join(str(reason).split())}") from err
    if sha256:
        actual = file_hash(part, sha256)
        if actual != sha256.lower():
            part.unlink()
            raise DownloadError(
                f"{url}: checksum mismatch (expected {sha256}, got {actual}); the download was removed, try again"
            )
    os.replace(part, target)
    return target


class ProgressBar:
    """`name  45% 12.3/27.1 MB` on stderr: redrawn in place on a terminal, a line per 25 % otherwise."""

    def __init__(self, name, total, stream=None):
        self.name, self.total = name, total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self._last_quarter = -1
        self._last_draw = 0.0

    def _text(self, done):
        mb = done / 1e6
        if self.total:
            return f"{self.name} {100 * done / self.total:5.1f}% {mb:.1f}/{self.total / 1e6:.1f} MB"
        return f"{self.name} {mb:.1f} MB"

    def update(self, done):
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw >= 0.2 or done == self.total:
                self._last_draw = now
                self.stream.write("\r" + self._text(done))
                self.stream.flush()
        elif self.total:
            quarter = int(4 * done / self.total)
            if quarter > self._last_quarter:
                self._last_quarter = quarter
                print(self._text(done), file=self.stream)

    def close(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

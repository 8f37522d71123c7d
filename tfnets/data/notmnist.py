"""notMNIST letters A-J (28x28 greyscale glyphs), split as in the Toronto ECE421 assignments.

Accepted layouts, in order of preference, inside the data directory:
  1. `notMNIST.npz` (ECE421): `images` of shape (N, 28, 28) -- or (28, 28, N), detected by the label
     count -- with values 0..255 (or already 0..1), and `labels` (N,) or (N, 1) in 0..9.
  2. `notMNIST_small/` with one folder per letter A..J of 28x28 PNGs (the extracted official tarball).
  3. `notMNIST_small.tar.gz`, read in place (downloaded from the canonical URL when nothing is present).
PNG order is deterministic: class folder A..J, then file name. Unreadable PNGs (the official tarball has
a couple of empty ones) are skipped, counted in `Splits.skipped` and reported with a warning.

Split (ECE421 `loadData`): `np.random.seed(521)`, `randIndx = np.arange(len(Data))`,
`np.random.shuffle(randIndx)`, then the first 10,000 shuffled images train, the next 6,000 validate and the
remaining 2,724 test. For a different number of images the same fractions (10000/18724, 6000/18724) are
used with train and valid sizes rounded to the nearest integer, and test gets the rest.
"""

import io
import struct
import sys
import tarfile
import warnings
import zlib
from pathlib import Path

import numpy as np

from tfnets.data.arrays import open_regular, read_npz, read_regular_file
from tfnets.data.checks import TAR_ERRORS, check_images, check_labels, check_tar_member, corrupt_file_error
from tfnets.data.paths import fetch, resolve_data_dir
from tfnets.data.splits import Splits, split_by_fractions
from tfnets.errors import DataError

CLASS_NAMES = tuple("ABCDEFGHIJ")
URL = "http://yaroslavvb.com/upload/notMNIST/notMNIST_small.tar.gz"
NPZ_NAME = "notMNIST.npz"
FOLDER_NAME = "notMNIST_small"
TARBALL_NAME = "notMNIST_small.tar.gz"

ASSIGNMENT_SIZE = 18724
ASSIGNMENT_TRAIN = 10000
ASSIGNMENT_VALID = 6000
SHUFFLE_SEED = 521
# A 28x28 greyscale PNG is under 1 KB; anything over this is not a notMNIST glyph and is skipped unread.
MAX_PNG_BYTES = 1 << 20
# What Pillow raises on a damaged or crafted image (besides DecompressionBombError, which is not an OSError):
# its plugins use SyntaxError and struct.error for bad headers.
PIL_ERRORS = (OSError, ValueError, SyntaxError, struct.error, EOFError, zlib.error)


def load_notmnist(data_dir=None):
    """Load notMNIST and split it as the ECE421 assignment does.

    Returns:
        Splits with x_* float32 (N, 28, 28) in [0, 1], y_* int64 (N,) in 0..9 (A=0 ... J=9).
    """
    data_dir = resolve_data_dir(data_dir)
    skipped = 0
    if (data_dir / NPZ_NAME).exists():
        source = data_dir / NPZ_NAME
        images, labels = read_ece421_npz(source)
    elif (data_dir / FOLDER_NAME).exists():
        source = data_dir / FOLDER_NAME
        images, labels, skipped = read_png_folder(source)
    else:
        source = fetch(
            TARBALL_NAME, data_dir, url=URL, what="notMNIST", alternatives=(data_dir / NPZ_NAME, data_dir / FOLDER_NAME)
        )
        images, labels, skipped = read_png_tarball(source)
    if skipped:
        warnings.warn(f"notMNIST: skipped {skipped} unreadable PNG file(s) in {source}", stacklevel=2)
    return assignment_split(images, labels, source, skipped)


def assignment_split(images, labels, source, skipped=0):
    """Shuffle with the assignment's seed 521 and cut 10000/6000/rest (same fractions for other sizes)."""
    # RandomState(521).shuffle draws the same permutation as np.random.seed(521); np.random.shuffle(...)
    # without touching NumPy's global random state.
    order = np.arange(len(images))
    np.random.RandomState(SHUFFLE_SEED).shuffle(order)
    images, labels = images[order], labels[order]
    if len(images) == ASSIGNMENT_SIZE:
        n_train, n_valid = ASSIGNMENT_TRAIN, ASSIGNMENT_VALID
    else:
        n_train, n_valid, _ = split_by_fractions(
            len(images), ASSIGNMENT_TRAIN / ASSIGNMENT_SIZE, ASSIGNMENT_VALID / ASSIGNMENT_SIZE
        )
    end_valid = n_train + n_valid
    return Splits(
        images[:n_train],
        labels[:n_train],
        images[n_train:end_valid],
        labels[n_train:end_valid],
        images[end_valid:],
        labels[end_valid:],
        class_names=CLASS_NAMES,
        source=str(source),
        skipped=skipped,
        note=f"shuffled with np.random.seed({SHUFFLE_SEED}); {n_train}/{n_valid}/{len(images) - end_valid} split",
    )


def read_ece421_npz(path):
    """Read the ECE421 `notMNIST.npz`: returns float32 (N, 28, 28) in [0, 1] and int64 labels (N,)."""
    arrays = read_npz(path, ["images", "labels"])
    images, labels = arrays["images"], arrays["labels"]
    n_labels = labels.shape[0] if labels.ndim else 0
    # The images may be stored (28, 28, N) (MATLAB-style) instead of (N, 28, 28): the axis whose length
    # equals the number of labels is the example axis.
    if images.ndim == 3 and images.shape[0] != n_labels and images.shape[2] == n_labels:
        images = np.moveaxis(images, 2, 0)
    images = check_images(images, path, "images", (28, 28))
    labels = check_labels(labels, path, "labels", len(CLASS_NAMES), count=len(images))
    images = images.astype(np.float32)
    if images.max() > 1.0:  # stored as 0..255 (the assignment divides by 255)
        images /= 255.0
    if images.min() < 0.0 or images.max() > 1.0:
        raise DataError(f"{path}: 'images' values are outside 0..255")
    return images, labels


def decode_png(data):
    """Decode PNG bytes to a (28, 28) uint8 array, or None when unreadable or the wrong size.

    The size is read from the header and checked before any pixel is decoded: a 20000x20000 PNG of 400 KB
    (a decompression bomb) is skipped like a broken file, not inflated to 400 MB.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check below decides
            with Image.open(io.BytesIO(data)) as image:
                if image.size != (28, 28):
                    return None
                array = np.asarray(image.convert("L"))
    except (*PIL_ERRORS, Image.DecompressionBombError):
        return None
    return array if array.shape == (28, 28) else None


def _stack(decoded, source):
    """Stack [(class_index, array_or_None)] into images/labels; returns (images, labels, skipped)."""
    good = [(label, image) for label, image in decoded if image is not None]
    skipped = len(decoded) - len(good)
    if not good:
        raise DataError(f"{source}: no readable 28x28 PNG images in letter folders A..J ({skipped} unreadable)")
    images = np.stack([image for _, image in good]).astype(np.float32) / 255.0
    labels = np.array([label for label, _ in good], dtype=np.int64)
    return images, labels, skipped


def read_png_folder(folder):
    """Read `notMNIST_small/{A..J}/*.png` in class then file-name order.

    Symlinks are followed to regular files only (a link to a device such as /dev/zero, a FIFO, a loop, or a
    file over `MAX_PNG_BYTES` counts as unreadable and is skipped).
    """
    folder = Path(folder)
    decoded = []
    for label, letter in enumerate(CLASS_NAMES):
        letter_dir = folder / letter
        if not letter_dir.is_dir():
            continue
        for path in sorted(letter_dir.glob("*.png")):
            try:
                decoded.append((label, decode_png(read_regular_file(path, MAX_PNG_BYTES, "PNG"))))
            except (OSError, DataError):
                decoded.append((label, None))
    return _stack(decoded, folder)


def read_png_tarball(path):
    """Read the PNGs of `notMNIST_small.tar.gz` in place, in the same order as the extracted folder.

    Nothing is extracted. A member with an absolute or '..' path refuses the whole tarball (no official
    tarball has one); a letter PNG that is not a regular file (symlink, hard link, device) or is over
    `MAX_PNG_BYTES` counts as unreadable and is skipped without being read.
    """
    by_name = []
    try:
        with open_regular(path, sys.maxsize, "tarball") as (stream, _), tarfile.open(fileobj=stream) as archive:
            for member in archive:
                check_tar_member(path, member)
                parts = Path(member.name).parts
                if len(parts) < 2 or not parts[-1].endswith(".png") or parts[-2] not in CLASS_NAMES:
                    continue
                label = CLASS_NAMES.index(parts[-2])
                if not member.isfile() or member.size > MAX_PNG_BYTES:
                    by_name.append((label, parts[-1], None))
                    continue
                by_name.append((label, parts[-1], archive.extractfile(member).read()))
    except TAR_ERRORS as err:
        raise corrupt_file_error(path, err, "tarball") from err
    by_name.sort(key=lambda item: (item[0], item[1]))
    return _stack([(label, None if data is None else decode_png(data)) for label, _, data in by_name], path)

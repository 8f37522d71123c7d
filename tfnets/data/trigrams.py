"""Trigram -> fourth-word data of the Bilkent EEE443 homework 2, question 2 (Hinton's 250-word corpus).

Looked for inside `<data dir>/trigrams/`, in this order:
  1. `assign2_data2.h5`, the original assignment file;
  2. `assign2_data2_surrogate.h5`, the same layout rebuilt from the corpus (its own split and word order;
     its `NOTE` attribute says so and is carried in `Splits.note`);
  3. `raw_sentences.txt`, from which every consecutive 4-word window of each line is taken (words
     lower-cased as in Hinton's course data; vocabulary = the corpus' 250 words, sorted), shuffled with
     `seed` and split 80 / 10 / 10 (train and valid sizes floored, test the rest).
HDF5 layout: `trainx` (N, 3), `traind` (N,), `valx`, `vald`, `testx`, `testd` with 1-BASED word indices,
`words` (V,) bytes. None of these files has a stable public URL (the corpus comes from Hinton's Coursera
course); a missing file stops with a message saying where to place it.

Returned indices are 0-BASED: x_* int64 (N, 3) (the three context words), y_* int64 (N,) (the fourth word);
`Splits.class_names` holds the vocabulary as str.
"""

import numpy as np

from tfnets.data.arrays import read_regular_file
from tfnets.data.checks import check_images, check_labels, corrupt_file_error
from tfnets.data.h5 import read_h5, read_h5_attr
from tfnets.data.paths import missing_message, resolve_data_dir
from tfnets.data.splits import Splits
from tfnets.errors import DataError

SUBDIR = "trigrams"
ORIGINAL = "assign2_data2.h5"
SURROGATE = "assign2_data2_surrogate.h5"
RAW = "raw_sentences.txt"
KEYS = ("trainx", "traind", "valx", "vald", "testx", "testd", "words")
WINDOW = 4
# raw_sentences.txt is 3 MB; its words become Python strings (tens of bytes each) before the arrays are built,
# so a text file over this is refused rather than read.
MAX_TEXT_BYTES = 16 << 20


def load_trigrams(data_dir=None, seed=443):
    """Load the trigram data. `seed` only matters when building from `raw_sentences.txt`."""
    folder = resolve_data_dir(data_dir) / SUBDIR
    for name in (ORIGINAL, SURROGATE):
        if (folder / name).exists():
            return read_trigram_h5(folder / name)
    if (folder / RAW).exists():
        return build_from_sentences(folder / RAW, seed)
    raise DataError(
        missing_message(
            "trigram data (the EEE443 assign2_data2.h5, or raw_sentences.txt from the data of assignment 2 of "
            "Hinton's Coursera course 'Neural Networks for Machine Learning')",
            [folder / ORIGINAL, folder / RAW],
        )
    )


def read_trigram_h5(path):
    """Read an `assign2_data2.h5`-layout file, converting 1-based indices to 0-based."""
    arrays = read_h5(path, KEYS, text_keys=("words",))
    try:
        words = [w.decode() if isinstance(w, bytes) else str(w) for w in np.asarray(arrays["words"]).ravel()]
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: 'words' is not UTF-8 text ({err.reason})") from err
    if not words:
        raise DataError(f"{path}: 'words' is empty")
    splits = []
    for x_key, y_key in (("trainx", "traind"), ("valx", "vald"), ("testx", "testd")):
        x = check_images(arrays[x_key], path, x_key, (3,))
        # Check the 1-based range on x by treating it as labels 1..V shifted to 0..V-1.
        x = check_labels(_shift(x.ravel(), path, x_key), path, f"{x_key} (1-based)", len(words)).reshape(-1, 3)
        y = check_labels(_shift(arrays[y_key], path, y_key), path, f"{y_key} (1-based)", len(words), count=len(x))
        splits += [x, y]
    note = read_h5_attr(path, "NOTE") or ("original EEE443 file" if path.name == ORIGINAL else "")
    return Splits(*splits, class_names=tuple(words), source=str(path), note=note)


def _shift(one_based, path, name):
    """1-based word indices -> 0-based, in float64 so that no integer type wraps (uint 0 - 1) before the check."""
    one_based = np.asarray(one_based)
    if one_based.dtype.kind not in "iuf":
        raise DataError(f"{path}: '{name}' has dtype {one_based.dtype}, expected integer word indices")
    return one_based.astype(np.float64) - 1


def sentence_windows(token_ids):
    """All consecutive 4-token windows of each line's token ids (windows never cross a line end): (N, 4) int64."""
    lengths = np.array([len(ids) for ids in token_ids], np.int64)
    flat = np.fromiter((i for ids in token_ids for i in ids), np.int64, count=int(lengths.sum()))
    if len(flat) < WINDOW:
        return np.empty((0, WINDOW), np.int64)
    line = np.repeat(np.arange(len(lengths)), lengths)  # the line of every token
    inside = line[: len(flat) - WINDOW + 1] == line[WINDOW - 1 :]  # the window's first and last token share a line
    return np.lib.stride_tricks.sliding_window_view(flat, WINDOW)[inside]


def build_from_sentences(path, seed):
    """Build the 4-grams of `raw_sentences.txt` and split them 80/10/10 after a seeded shuffle."""
    try:
        lines = read_regular_file(path, MAX_TEXT_BYTES, "text file").decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise corrupt_file_error(path, err, "text file (expected UTF-8 sentences)") from err
    # Lower-case like Hinton's course data: the corpus has 652 cased tokens but 250 words.
    tokens = [line.lower().split() for line in lines]
    words = sorted({word for line in tokens for word in line})
    index = {word: i for i, word in enumerate(words)}
    grams = sentence_windows([[index[w] for w in line] for line in tokens])
    if not len(grams):
        raise DataError(f"{path}: no line has 4 or more words; not the raw_sentences.txt corpus")
    order = np.random.default_rng(seed).permutation(len(grams))
    grams = grams[order]
    n_train, n_valid = int(0.8 * len(grams)), int(0.1 * len(grams))
    parts = (grams[:n_train], grams[n_train : n_train + n_valid], grams[n_train + n_valid :])
    arrays = [a for part in parts for a in (part[:, :3], part[:, 3])]
    note = f"built from {path.name}: {len(grams)} 4-grams, {len(words)} words, seed {seed}, split 80/10/10"
    return Splits(*arrays, class_names=tuple(words), source=str(path), note=note)

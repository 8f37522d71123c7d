"""`apps.predict`'s inputs from untrusted sources: image files (PNG, JPEG, GIF), `.npy`/`.npz` arrays, folders and
stdin lists fuzzed in process; decompression bombs skipped with bounded memory; and the whole command on a folder
with a bomb, a truncated PNG and a valid letter (one `error:` line per bad file, the letter classified).

Seeds: real notMNIST PNGs, re-encoded as JPEG and GIF, and stacked into `.npy`/`.npz` arrays.
"""

import io
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from apps import predict
from tests.conftest import require_file
from tests.fuzzing import Seeds, blank_png, check_reader, mutated
from tfnets.errors import ModelError
from tfnets.experiment.image_files import DEFAULT_MAX_PIXELS, MAX_WORKING_SIDE, read_array, read_image
from tfnets.experiment.images import InputSpec, prepare

SPEC = InputSpec(28, 28, 1, background="dark", framing="fill")
# Keeps a mutated header's declared size (decoded before it fails) small enough for many cases a second.
FUZZ_MAX_PIXELS = 1 << 22


def encoded(pixels, fmt):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def letters(data_dir):
    folder = require_file(data_dir, "notMNIST_small")
    return [np.asarray(Image.open(p).convert("L")) for p in sorted((folder / "A").glob("*.png"))[:4]]


@pytest.fixture(scope="module")
def seeds(letters):
    files = Seeds({fmt: encoded(letters[0], fmt) for fmt in ("PNG", "JPEG", "GIF")})
    files["RGBA-PNG"] = encoded(np.dstack([letters[1]] * 3 + [letters[2]]), "PNG")
    for suffix, save in ((".npy", np.save), (".npz", np.savez)):
        buffer = io.BytesIO()
        save(buffer, np.stack(letters))
        files[suffix] = buffer.getvalue()
    return files


def classify_one(path, channels):
    """What predict does with one image file before the model: decode, then frame like the training images."""
    pixels, _ = read_image(path, channels, FUZZ_MAX_PIXELS)
    return prepare(pixels, SPEC if channels == 1 else InputSpec(32, 32, 3))


def test_seeds_decode(seeds, tmp_path):
    for fmt in ("PNG", "JPEG", "GIF", "RGBA-PNG"):
        (tmp_path / "x").write_bytes(seeds[fmt])
        candidates, _ = classify_one(tmp_path / "x", 1)
        assert candidates[0].shape == (28, 28, 1)
    for suffix in (".npy", ".npz"):
        (tmp_path / f"x{suffix}").write_bytes(seeds[suffix])
        assert read_array(tmp_path / f"x{suffix}").shape == (4, 28, 28)


@given(data=st.data())
def test_fuzz_image_files(seeds, data):
    fmt = data.draw(st.sampled_from(["PNG", "JPEG", "GIF", "RGBA-PNG"]))
    raw = data.draw(mutated(seeds[fmt]))
    channels = data.draw(st.sampled_from([1, 3]))
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / f"letter.{fmt.lower()}"
        path.write_bytes(raw)
        check_reader(lambda: classify_one(path, channels), folder=root)


@given(data=st.data())
def test_fuzz_array_files(seeds, data):
    suffix = data.draw(st.sampled_from([".npy", ".npz"]))
    raw = data.draw(mutated(seeds[suffix]))
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / f"batch{suffix}"
        path.write_bytes(raw)
        check_reader(lambda: read_array(path), folder=root)


# Lines a user's `find | ...` or a hand-made list may hold: real files, missing ones, folders, names with odd
# bytes (not UTF-8), NUL bytes, very long names, globs.
LIST_LINES = st.one_of(
    st.sampled_from([b"letter.png", b"missing.png", b".", b"sub", b"sub/inner.gif", b"*.png", b"fifo.png"]),
    st.binary(min_size=1, max_size=40),
    st.builds(lambda n: b"x" * n, st.integers(200, 5000)),
)


class Stdin(io.TextIOWrapper):
    """A text stdin over bytes, as `sys.stdin` is."""


@given(lines=st.lists(LIST_LINES, max_size=6))
def test_fuzz_stdin_list_and_folders(seeds, lines):
    """Each path of a stdin list (and each file of a folder) is read or refused with one line, never raises
    anything else, and never blocks (a FIFO named in the list)."""
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "sub").mkdir()
        (Path(root) / "letter.png").write_bytes(seeds["PNG"])
        (Path(root) / "sub" / "inner.gif").write_bytes(seeds["GIF"])
        os.mkfifo(Path(root) / "fifo.png")
        cwd = os.getcwd()
        os.chdir(root)
        try:
            stdin = Stdin(io.BytesIO(b"\n".join(lines)), encoding="utf-8")
            inputs = predict.expand_inputs(["-", "sub"], stdin=stdin)
            for path, _ in inputs:
                check_reader(lambda: read_image(path, 1, FUZZ_MAX_PIXELS))
        finally:
            os.chdir(cwd)


# ---------------------------------------------------------------------------------------------------------
# Decompression bombs
# ---------------------------------------------------------------------------------------------------------


MAXRSS_SCRIPT = """
import resource, sys
from tfnets.errors import ModelError
from tfnets.errors import ModelError
from tfnets.experiment.image_files import read_image
try:
    read_image(sys.argv[1], 1)
    print("decoded")
except ModelError as err:
    print(err)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_reading(path):
    """(message, peak resident KiB) of a fresh Python process that reads `path` with `read_image`."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", MAXRSS_SCRIPT, str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    message, kib = done.stdout.strip().splitlines()
    return message, int(kib)


def test_bomb_is_refused_from_its_header_with_bounded_memory(seeds, tmp_path):
    """A 20000x20000 PNG (48 KB; 400 MB decoded) is refused with its size and the limit, and the process that
    refused it peaks within a few MB of one that read a 28x28 letter."""
    (tmp_path / "bomb.png").write_bytes(blank_png(20000, 20000))
    (tmp_path / "letter.png").write_bytes(seeds["PNG"])
    message, bomb_kib = peak_rss_reading(tmp_path / "bomb.png")
    assert message == (
        f"{tmp_path / 'bomb.png'} is 20000x20000 = 400,000,000 pixels, over the limit of {DEFAULT_MAX_PIXELS:,} "
        "(--max-pixels): a possible decompression bomb, not decoded"
    )
    letter_message, letter_kib = peak_rss_reading(tmp_path / "letter.png")
    assert letter_message == "decoded"
    print(f"peak RSS: bomb {bomb_kib} KiB, 28x28 letter {letter_kib} KiB")
    assert bomb_kib - letter_kib < 32 << 10  # KiB; decoding the bomb would take 400 MB


def test_a_chunk_claiming_gigabytes_allocates_nothing_like_it(tmp_path):
    """Found by the fuzz: a 40-byte PNG whose IDAT chunk claims 2 GB. Pillow skips the rest of the chunk with one
    read of the claimed length; the file it is given never hands out more than what is left."""
    header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x1c\x00\x00\x00\x1c\x08\x00\x00\x00\x00Wf\x80H"
    (tmp_path / "claims.png").write_bytes(header + b"\x7f\x00\x01\x8fIDAT{\x9c")
    tracemalloc.start()
    try:
        with pytest.raises(ModelError, match="claims.png is not a readable image"):
            read_image(tmp_path / "claims.png", 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_large_image_below_the_limit_is_reduced_right_after_decoding(tmp_path):
    """A 6000x3000 image decodes, and leaves decoding at most MAX_WORKING_SIDE pixels on its long side."""
    (tmp_path / "large.png").write_bytes(blank_png(6000, 3000))
    pixels, _ = read_image(tmp_path / "large.png", 1)
    assert max(pixels.shape) <= MAX_WORKING_SIDE and pixels.shape[0] * 2 == pixels.shape[1]


# ---------------------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    from tfnets.experiment.export import export_model

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    path = tmp_path_factory.mktemp("export") / "letters"
    return export_model(model, path, class_names=list("ABCDEFGHIJ"), input_shape=[28, 28, 1], image_style="notmnist")


def test_a_bomb_and_a_broken_file_are_skipped_and_the_rest_classified(exported, seeds, tmp_path, capsys):
    from tfnets.experiment.cli import run_main

    folder = tmp_path / "that_folder"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(blank_png(20000, 20000))
    (folder / "letter.png").write_bytes(seeds["PNG"])
    (folder / "truncated.png").write_bytes(seeds["PNG"][: len(seeds["PNG"]) // 2])
    (folder / "wide.png").write_bytes(blank_png(300, 200))
    code = run_main(predict.main, [str(exported), str(folder), "--max-pixels", "50000", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    assert [p["file"] for p in json.loads(captured.out)["predictions"]] == [str(folder / "letter.png")]
    errors = [line for line in captured.err.splitlines() if not line.startswith("note: ")]
    assert errors == [
        f"error: {folder / 'bomb.png'} is 20000x20000 = 400,000,000 pixels, over the limit of 50,000 "
        "(--max-pixels): a possible decompression bomb, not decoded; skipped",
        f"error: {folder / 'truncated.png'} is not a readable image (OSError); skipped",
        f"error: {folder / 'wide.png'} is 300x200 = 60,000 pixels, over the limit of 50,000 (--max-pixels): "
        "a possible decompression bomb, not decoded; skipped",
        "error: 3 of 4 inputs could not be classified (see above); the other 1 were",
    ]


def test_max_pixels_above_pillows_limit_is_a_usage_error(exported, capsys):
    from tfnets.experiment.cli import run_main

    assert run_main(predict.main, [str(exported), "x.png", "--max-pixels", str(DEFAULT_MAX_PIXELS + 1)]) == 2
    assert "at most 89,478,485 (Pillow's limit)" in capsys.readouterr().err


def test_default_limit_is_pillows():
    assert DEFAULT_MAX_PIXELS == Image.MAX_IMAGE_PIXELS

"""notMNIST readers (ECE421 `.npz`, PNG folder, tarball) on damaged and crafted files.

Seeds: the first three real PNGs of each letter folder of the shared `notMNIST_small/`, as a folder, a tarball
and an ECE421-layout npz of the same glyphs.
"""

import io
import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import require_file
from tests.fuzzing import Seeds, blank_png, check_reader, mutated
from tfnets.data import load_notmnist
from tfnets.data.notmnist import CLASS_NAMES, MAX_PNG_BYTES
from tfnets.errors import DataError

PER_LETTER = 3
# A mutated glyph is skipped with this warning, which is the expected outcome here.
pytestmark = pytest.mark.filterwarnings("ignore:notMNIST. skipped:UserWarning")


@pytest.fixture(scope="module")
def pngs(data_dir):
    """{"A/name.png": bytes, ...}: three real PNGs per letter."""
    folder = require_file(data_dir, "notMNIST_small")
    seeds = Seeds()
    for letter in CLASS_NAMES:
        for path in sorted((folder / letter).glob("*.png"))[:PER_LETTER]:
            seeds[f"{letter}/{path.name}"] = path.read_bytes()
    return seeds


def write_folder(root, files):
    for name, raw in files.items():
        path = Path(root) / "notMNIST_small" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)


def tar_bytes(files, extra=()):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"notMNIST_small/{name}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
        for info in extra:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buffer.getvalue()


def npz_bytes(pngs):
    images = np.stack([np.asarray(Image.open(io.BytesIO(raw)).convert("L")) for raw in pngs.values()])
    labels = np.array([CLASS_NAMES.index(name[0]) for name in pngs])
    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels)
    return buffer.getvalue()


def test_seeds_load(pngs, tmp_path):
    for sub in "abc":
        (tmp_path / sub).mkdir()
    write_folder(tmp_path / "a", pngs)
    (tmp_path / "b" / "notMNIST_small.tar.gz").write_bytes(tar_bytes(pngs))
    (tmp_path / "c" / "notMNIST.npz").write_bytes(npz_bytes(pngs))
    for root in ("a", "b", "c"):
        splits = load_notmnist(tmp_path / root)
        assert sum(splits.sizes().values()) == len(pngs) and splits.skipped == 0


@given(data=st.data())
def test_fuzz_png_folder(pngs, data):
    """One glyph per letter (file creation dominates a case's time), one of them mutated."""
    one_per_letter = {min(k for k in pngs if k[0] == letter): None for letter in CLASS_NAMES}
    files = {key: pngs[key] for key in one_per_letter}
    name = data.draw(st.sampled_from(sorted(files)))
    with tempfile.TemporaryDirectory() as root:
        write_folder(root, {**files, name: data.draw(mutated(files[name]))})
        check_reader(lambda: load_notmnist(root), folder=root)


@given(data=st.data())
def test_fuzz_tarball(pngs, data):
    raw = data.draw(mutated(tar_bytes(pngs), max_ops=3))
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "notMNIST_small.tar.gz").write_bytes(raw)
        check_reader(lambda: load_notmnist(root), folder=root)


@given(data=st.data())
def test_fuzz_ece421_npz(pngs, data):
    raw = data.draw(mutated(npz_bytes(pngs)))
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "notMNIST.npz").write_bytes(raw)
        check_reader(lambda: load_notmnist(root), folder=root)


# ---------------------------------------------------------------------------------------------------------
# Crafted archives and folders
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["/notMNIST_small/A/x.png", "notMNIST_small/../../A/x.png"])
def test_tarball_with_an_escaping_member_is_refused(pngs, tmp_path, name):
    evil = tarfile.TarInfo(name)
    evil.size = 1
    (tmp_path / "notMNIST_small.tar.gz").write_bytes(tar_bytes(pngs, [evil]))
    with pytest.raises(DataError, match="absolute or '..' path") as info:
        load_notmnist(tmp_path)
    assert repr(name) in str(info.value)


def test_tarball_links_devices_and_oversized_members_are_skipped_unread(pngs, tmp_path):
    link = tarfile.TarInfo("notMNIST_small/A/link.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("notMNIST_small/B/hard.png")
    hard.type, hard.linkname = tarfile.LNKTYPE, f"notMNIST_small/{next(iter(pngs))}"
    device = tarfile.TarInfo("notMNIST_small/C/zero.png")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 5
    big = tarfile.TarInfo("notMNIST_small/D/big.png")
    big.size = MAX_PNG_BYTES + 1
    (tmp_path / "notMNIST_small.tar.gz").write_bytes(tar_bytes(pngs, [link, hard, device, big]))
    with pytest.warns(UserWarning, match="skipped 4 unreadable"):
        splits = load_notmnist(tmp_path)
    assert splits.skipped == 4 and sum(splits.sizes().values()) == len(pngs)


def test_a_png_of_another_size_is_not_decoded(pngs, monkeypatch):
    """The size comes from the header: a 5000x5000 PNG (under Pillow's own bomb limit) is refused without a pixel
    decoded, while a 28x28 one is decoded (which the patched decoder turns into an error)."""
    from PIL import ImageFile

    from tfnets.data.notmnist import decode_png

    def refuse(image):
        raise AssertionError(f"decoded a {image.size} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    assert decode_png(blank_png(5000, 5000)) is None
    with pytest.raises(AssertionError, match=r"decoded a \(28, 28\) image"):
        decode_png(next(iter(pngs.values())))


def test_folder_fifo_device_link_bomb_and_oversized_files_are_skipped(pngs, tmp_path):
    """A FIFO (would block the open forever), a symlink to /dev/zero (would never end), a symlink loop, a
    decompression bomb and a file over MAX_PNG_BYTES: each is one skipped file, the real glyphs load."""
    write_folder(tmp_path, pngs)
    letters = tmp_path / "notMNIST_small"
    os.mkfifo(letters / "A" / "fifo.png")
    (letters / "B" / "zero.png").symlink_to("/dev/zero")
    (letters / "C" / "loop.png").symlink_to(letters / "C" / "loop.png")
    (letters / "D" / "bomb.png").write_bytes(blank_png(20000, 20000))
    (letters / "E" / "big.png").write_bytes(next(iter(pngs.values())) + bytes(MAX_PNG_BYTES))
    with pytest.warns(UserWarning, match="skipped 5 unreadable"):
        splits = load_notmnist(tmp_path)
    assert splits.skipped == 5 and sum(splits.sizes().values()) == len(pngs)

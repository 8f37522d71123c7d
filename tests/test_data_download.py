"""Downloads (resume, checksum, nothing half-written), `python -m tfnets.data` and the Makefile's data folder.

A small HTTP server on 127.0.0.1 that honours `Range` stands in for the canonical sources.
"""

import hashlib
import http.server
import io
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tfnets.data import __main__ as data_cli
from tfnets.data import catalog
from tfnets.data.download import DownloadError, ProgressBar, download, part_path
from tfnets.experiment.cli import run_main

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = bytes(range(256)) * 1000  # 256 kB: several read chunks


class _Handler(http.server.BaseHTTPRequestHandler):
    ranges = []  # the Range header of every request, in order

    def do_GET(self):
        if self.path != "/blob.bin":
            self.send_error(404)
            return
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        start = int(header.split("=")[1].rstrip("-")) if header else 0
        body = PAYLOAD[start:]
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.ranges = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_resumes_a_part_file_and_checks_the_hash(server, tmp_path):
    target = tmp_path / "sub" / "blob.bin"
    target.parent.mkdir()
    part_path(target).write_bytes(PAYLOAD[:100_000])  # what an interrupted download left
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert download(f"{server}/blob.bin", target, digest, progress=ProgressBar("blob", None, io.StringIO())) == target
    assert target.read_bytes() == PAYLOAD and not part_path(target).exists()
    assert _Handler.ranges == ["bytes=100000-"]  # only the missing bytes were asked for


def test_download_with_a_bad_hash_leaves_no_file(server, tmp_path):
    target = tmp_path / "blob.bin"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(f"{server}/blob.bin", target, "0" * 64, progress=ProgressBar("blob", None, io.StringIO()))
    assert not target.exists() and not part_path(target).exists()


def test_download_errors_are_one_line_and_create_no_folder(server, tmp_path):
    target = tmp_path / "new" / "missing.bin"
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        download(f"{server}/missing.bin", target)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "new").exists()


def test_progress_bar_reports_quarters_off_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar("blob.bin", 1000, stream)
    for done in range(0, 1001, 100):
        bar.update(done)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["0.0%", "30.0%", "50.0%", "80.0%", "100.0%"]


def test_make_data_downloads_what_is_missing_and_lists_the_rest(server, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TFNETS_OFFLINE", raising=False)
    ok = catalog.Dataset("Blob", "an app", ("blob.bin",), (catalog.Download("blob.bin", f"{server}/blob.bin"),))
    broken = catalog.Dataset("Gone", "an app", ("gone.bin",), (catalog.Download("gone.bin", f"{server}/gone.bin"),))
    by_hand = catalog.Dataset("Private", "an app", ("private.h5",))
    monkeypatch.setattr(data_cli, "DATASETS", (ok, broken, by_hand))
    assert run_main(data_cli.main, ["--data-dir", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert (tmp_path / "blob.bin").read_bytes() == PAYLOAD
    assert "Blob: downloaded" in out and f"Private: no public download; copy it to {tmp_path / 'private.h5'}" in out
    assert [line for line in err.splitlines() if "gone.bin" in line] == [
        f"error: could not fetch {tmp_path / 'gone.bin'}: {server}/gone.bin: HTTP 404 Not Found"
    ]
    assert not (tmp_path / "gone.bin").exists()

    # A second run finds it in place and downloads nothing.
    _Handler.ranges.clear()
    run_main(data_cli.main, ["--data-dir", str(tmp_path)])
    assert "Blob: in place" in capsys.readouterr().out and _Handler.ranges == []


def test_make_data_offline_names_each_file_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TFNETS_OFFLINE", "1")
    data_dir = tmp_path / "data"
    assert run_main(data_cli.main, ["--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.splitlines()
    expected = [d for ds in catalog.DATASETS for d in ds.downloads]
    assert len(err) == len(expected) + 1  # one line per file, then the count
    for line, item in zip(err, expected):
        assert line.startswith(f"error: could not fetch {data_dir / item.path} ({item.url})")
    assert not data_dir.exists()


def test_the_catalogue_recognises_the_real_data_folder(data_dir):
    # Every dataset of the shared folder is recognised as in place by the same paths the loaders read.
    missing = [d.name for d in catalog.DATASETS if not d.is_present(data_dir)]
    assert missing == ["Fashion-MNIST"]


# ---------------------------------------------------------------- the Makefile's choice of data folder


def _make_dry_run(tmp_path, target, env_data_dir=None, shared=False):
    """`make -n TARGET` in a copy of the repo's Makefile (without the venv step); returns its output."""
    repo = tmp_path / "repo"
    repo.mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", repo / "Makefile")
    (repo / "pyproject.toml").write_text("")
    (repo / ".venv").mkdir()
    (repo / ".venv" / ".installed").touch()  # up to date: make -n shows only the target's own command
    if shared:
        (tmp_path / "shared" / "data").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TFNETS_") and not k.startswith("MAKE")}
    if env_data_dir:
        env["TFNETS_DATA_DIR"] = env_data_dir
    done = subprocess.run(["make", "-n", target], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("target", ["demo", "test", "data"])
def test_makefile_uses_the_sibling_shared_data_only_when_it_exists(tmp_path, target):
    without = _make_dry_run(tmp_path / "a", target)
    assert "TFNETS_DATA_DIR" not in without and "shared" not in without
    with_shared = _make_dry_run(tmp_path / "b", target, shared=True)
    assert "TFNETS_DATA_DIR=../shared/data" in with_shared
    assert not (tmp_path / "a" / "shared").exists()


def test_makefile_prefers_the_users_data_dir(tmp_path):
    out = _make_dry_run(tmp_path, "demo", env_data_dir="my-data", shared=True)
    assert "TFNETS_DATA_DIR=my-data" in out and "shared" not in out

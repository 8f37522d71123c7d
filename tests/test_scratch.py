"""A non-chief worker's scratch folder: one per (user, run, worker index) in $TMPDIR, cleared of what a SIGKILLed
worker left, removed when the command ends however it ends. The multi-process tests in test_distributed_training.py
check the same with real clusters."""

import tempfile

import pytest

from tfnets.errors import ConfigError
from tfnets.experiment import scratch
from tfnets.experiment.cli import run_main


@pytest.fixture
def tmpdir(tmp_path, monkeypatch):
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))  # what $TMPDIR sets in a fresh process
    yield folder
    scratch.remove_all()


def test_the_same_run_and_worker_reuse_one_folder_and_a_killed_workers_files_are_cleared(tmp_path, tmpdir):
    first = scratch.worker_folder(tmp_path / "runs" / "app" / "r", 1)
    assert first.parent == tmpdir and first.name.startswith("tfnets-worker1-")
    (first / "run").mkdir()
    (first / "run" / "checkpoint.npz").write_bytes(b"from a worker killed with SIGKILL")
    scratch._made.clear()  # as if this process had been killed: nothing removed it
    again = scratch.worker_folder(tmp_path / "runs" / "app" / "r", 1)
    assert again == first and [p.name for p in again.iterdir()] == [".lock"]
    other_run = scratch.worker_folder(tmp_path / "runs" / "app" / "s", 1)
    other_worker = scratch.worker_folder(tmp_path / "runs" / "app" / "r", 2)
    assert len({again, other_run, other_worker}) == 3
    scratch.remove_all()
    assert list(tmpdir.iterdir()) == []


@pytest.mark.parametrize("ending", [None, ConfigError("bad"), RuntimeError("bug"), KeyboardInterrupt()])
def test_a_command_removes_its_scratch_folder_however_it_ends(ending, tmp_path, tmpdir):
    def main(argv):
        folder = scratch.worker_folder(tmp_path / "run", 1)
        (folder / "export").mkdir()
        if ending is not None:
            raise ending

    run_main(main, [])
    assert list(tmpdir.iterdir()) == []

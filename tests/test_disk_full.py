"""A full disk while a command writes a run file or its export: one `error:` line naming the file and what re-running
the same command does, exit status 1, nothing half-written left, and the re-run does what the line said.

The disk "fills up" in `os.fsync` of the chosen file's temporary (where a real full disk often shows, once the
kernel allocates the written blocks), through the app's real command path (`run_main`).
"""

import errno
import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from tfnets.experiment.cli import run_main

APP = "apps.notmnist_mlp"


def _argv(tmp_path, data_dir):
    return [
        "--quick",
        "--epochs",
        "2",
        "--hidden-units",
        "20",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path / "runs"),
        "--run-id",
        "r",
        "--export-dir",
        str(tmp_path / "export"),
    ]


def _fill_disk_at(monkeypatch, name, nth):
    """Make the `nth` fsync of a temporary for `name` (tfnets.atomic's `.<name>.XXXX.tmp...`) fail with ENOSPC."""
    real_fsync, seen = os.fsync, []

    def fsync(fd):
        target = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if target.startswith(f".{name}.") and ".tmp" in target:
            seen.append(target)
            if len(seen) == nth:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def _run(argv, capsys):
    capsys.readouterr()
    code = run_main(importlib.import_module(APP).main, argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err.strip().splitlines()


def _leftovers(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if ".tmp" in p.name or ".old-" in p.name)


def _checkpointed_epochs(run_path):
    with np.load(run_path / "checkpoint.npz") as saved:
        return json.loads(bytes(saved["state"]).decode())["epochs_done"]


def test_a_full_disk_at_a_checkpoint_names_it_and_the_rerun_resumes_where_it_said(
    tmp_path, data_dir, capsys, monkeypatch
):
    run_path = tmp_path / "runs" / "notmnist_mlp" / "r"
    seen = _fill_disk_at(monkeypatch, "checkpoint.npz", nth=2)  # epoch 1's checkpoint is written, epoch 2's is not
    code, _, err = _run(_argv(tmp_path, data_dir), capsys)
    assert len(seen) == 2
    assert code == 1
    assert err == [
        f"error: no space left on device writing {run_path / 'checkpoint.npz'}; free space and re-run the same "
        "command: training resumes after epoch 1"
    ]
    assert _leftovers(tmp_path) == [] and _checkpointed_epochs(run_path) == 1
    assert not (tmp_path / "export").exists()

    monkeypatch.undo()  # space freed
    code, out, err = _run(_argv(tmp_path, data_dir), capsys)
    assert code == 0, err
    assert f"{run_path}: resuming after epoch 1 of 2" in out
    assert _checkpointed_epochs(run_path) == 2 and (tmp_path / "export" / "metadata.json").exists()


@pytest.mark.parametrize(
    "name, where, then",
    [
        ("metadata.json", "export", ": training is done (epoch 2 is checkpointed), the re-run writes the results"),
        (
            "metrics.json",
            "runs/notmnist_mlp/r/metrics.json",
            ": training is done (epoch 2 is checkpointed), the re-run writes the results",
        ),
        ("config.json", "runs/notmnist_mlp/r/config.json", ""),  # before anything was trained
    ],
)
def test_a_full_disk_writing_any_run_file_or_the_export_is_one_line(
    name, where, then, tmp_path, data_dir, capsys, monkeypatch
):
    _fill_disk_at(monkeypatch, name, nth=1)
    code, _, err = _run(_argv(tmp_path, data_dir), capsys)
    assert code == 1
    assert err == [
        f"error: no space left on device writing {tmp_path / where}; free space and re-run the same command{then}"
    ]
    assert _leftovers(tmp_path) == []
    assert not (tmp_path / where).exists()  # the export folder's file is written inside its temporary folder


@pytest.mark.parametrize(
    "err, where",
    [
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "runs/app/r/.lock"), "runs/app/r/.lock"),
        (OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)), "a file"),
        (RuntimeError(f"events.out.tfevents: {os.strerror(errno.ENOSPC)}"), "a file"),  # a library's own error type
    ],
)
def test_a_full_disk_outside_the_atomic_writers_is_one_line_too(err, where, capsys):
    def main(argv):
        raise err

    assert run_main(main, []) == 1
    assert capsys.readouterr().err == (
        f"error: no space left on device writing {where}; free space and re-run the same command\n"
    )

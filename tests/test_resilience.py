"""Resilience across apps: resume after SIGKILL, NaN guard, and the bad-input matrix at the command line.

Each case runs an app's `main` through `tfnets.experiment.cli.run_main` (exactly what `python -m apps.X` does, without
paying a fresh TensorFlow import per case) and asserts the exit code and the one error line; no traceback may
reach the user. The SIGKILL test, and one data error and one flag error of the matrix, run the real
`python -m apps...` command in a subprocess, as a user would.
"""

import gzip
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import require_file
from tfnets.experiment.cli import run_main

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TFNETS_OFFLINE="1", **extra)
    env.pop("TFNETS_DATA_DIR", None)  # each case says exactly which data folder it uses
    return env


def _run(args, timeout=300, **env):
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=_env(**env), capture_output=True, text=True, timeout=timeout
    )


def _run_in_process(args, capsys, monkeypatch):
    """`python -m *args` in this process: run_main of the app's main, with `_env`'s environment."""
    monkeypatch.delenv("TFNETS_DATA_DIR", raising=False)
    monkeypatch.setenv("TFNETS_OFFLINE", "1")
    module, argv = args[0], list(args[1:])
    capsys.readouterr()  # drop anything printed before
    code = run_main(importlib.import_module(module).main, argv)  # argparse's own errors included (exit 2)
    captured = capsys.readouterr()
    return types.SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)


def _error_line(result):
    """The user-facing part of stderr: exactly one `error: ...` line and no traceback."""
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def _metrics(out):
    (path,) = Path(out).glob("*/*/metrics.json")
    metrics = json.loads(path.read_text())
    metrics.pop("timing")
    return metrics


# -- resume after kill -9 -------------------------------------------------------------------------------------------

# The killed run is the real command, started through runpy so that it can be made to stop at a known point
# (no race with a polling loop, however fast or slow the machine): epoch 3 has trained, its checkpoint is not
# written yet. The process is then killed with SIGKILL there, like a crash between two checkpoints.
_HANG_BEFORE_CHECKPOINT = """
import runpy, sys, time
from pathlib import Path
from tfnets.experiment.runs import Run
marker = Path(sys.argv.pop(1))
save = Run.save_checkpoint
def save_or_hang(self, model, epochs_done, history, *args, **kwargs):
    if epochs_done == 3:
        marker.write_text("epoch 3 trained")
        time.sleep(3600)
    save(self, model, epochs_done, history, *args, **kwargs)
Run.save_checkpoint = save_or_hang
runpy.run_module("apps.notmnist_mlp", run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow
def test_sigkill_mid_training_then_rerun_equals_uninterrupted_run(data_dir, tmp_path, capsys, monkeypatch):
    base = ["--quick", "--epochs", "5", "--seed", "3", "--data-dir", str(data_dir)]
    whole = _run_in_process(
        ["apps.notmnist_mlp", *base, "--out", str(tmp_path / "a"), "--export-dir", str(tmp_path / "ma")],
        capsys,
        monkeypatch,
    )
    assert whole.returncode == 0, whole.stderr[-2000:]

    command = [*base, "--out", str(tmp_path / "b"), "--export-dir", str(tmp_path / "mb")]
    marker = tmp_path / "hanging"
    process = subprocess.Popen(
        [sys.executable, "-c", _HANG_BEFORE_CHECKPOINT, str(marker), *command],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 600  # only a hang guard
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), process.stderr.read()[-2000:] if process.poll() is not None else "no progress"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()
    (checkpoint,) = (tmp_path / "b").glob("*/*/checkpoint.npz")
    with np.load(checkpoint) as saved:
        assert json.loads(bytes(saved["state"]).decode())["epochs_done"] == 2
    assert not (checkpoint.parent / "metrics.json").exists()

    resumed = _run_in_process(["apps.notmnist_mlp", *command], capsys, monkeypatch)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming after epoch 2" in resumed.stdout
    assert _metrics(tmp_path / "b") == _metrics(tmp_path / "a")


# --quick trains on 300 examples: 3 batches of 100. One graph call per epoch (the default) can only name the
# epoch's batch range; one call per batch names the batch.
@pytest.mark.parametrize(
    "flags, where",
    [([], r"epoch 1, within batches 1-3 \("), (["--steps-per-execution", "1"], r"epoch 1, batch [1-3] \(")],
)
def test_nan_loss_stops_with_one_line_and_exit_3(data_dir, tmp_path, flags, where, capsys, monkeypatch):
    result = _run_in_process(
        [
            "apps.notmnist_mlp",
            "--quick",
            "--epochs",
            "5",
            "--learning-rate",
            "1e20",
            "--hidden-units",
            "50",
            "--batch-size",
            "100",
            *flags,
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path),
            "--export-dir",
            str(tmp_path / "m"),
        ],
        capsys,
        monkeypatch,
    )
    assert result.returncode == 3
    line = _error_line(result)
    assert re.search(r"^error: loss became (nan|inf) in " + where, line), line
    assert "learning_rate" in line and "try a lower learning rate" in line
    assert not (tmp_path / "m").exists()  # nothing exported from a diverged run
    assert not list(tmp_path.glob("*/*/checkpoint.npz"))  # no good epoch: nothing checkpointed


# -- the bad-input matrix -------------------------------------------------------------------------------------------


def _notmnist_npz(path, images=None, labels=None, **arrays):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(40, 28, 28)).astype("float32") if images is None else images
    labels = rng.integers(0, 10, 40) if labels is None else labels
    np.savez(path, **({"images": images, "labels": labels} if not arrays else arrays))
    return path


def _truncate(path, keep=0.5):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    return path


def _bad_data(case, folder, shared):
    """Build the broken data folder for one case; returns (app args, expected fragment of the error line)."""
    folder.mkdir(parents=True, exist_ok=True)
    mlp = ["apps.notmnist_mlp", "--quick", "--data-dir", str(folder)]
    if case == "missing_data_dir":
        return ["apps.notmnist_mlp", "--quick", "--data-dir", str(folder / "nowhere")], "not found: place it at"
    if case == "missing_file":
        return mlp, "not found: place it at"
    if case == "truncated_npz":
        _truncate(_notmnist_npz(folder / "notMNIST.npz"))
        return mlp, "notMNIST.npz"
    if case == "wrong_keys":
        _notmnist_npz(folder / "notMNIST.npz", x=np.zeros((4, 28, 28)), y=np.zeros(4))
        return mlp, "notMNIST.npz"
    if case == "wrong_image_shape":
        _notmnist_npz(folder / "notMNIST.npz", images=np.zeros((40, 32, 32), "float32"))
        return mlp, "notMNIST.npz"
    if case == "labels_out_of_range":
        _notmnist_npz(folder / "notMNIST.npz", labels=np.full(40, 12))
        return mlp, "notMNIST.npz"
    if case == "empty_dataset":
        for letter in "ABCDEFGHIJ":
            (folder / "notMNIST_small" / letter).mkdir(parents=True)
        return mlp, "notMNIST_small"
    if case == "truncated_tarball":
        source = require_file(shared, "notMNIST_small/A/A_0000.png")
        with tarfile.open(folder / "notMNIST_small.tar.gz", "w:gz") as tar:
            for i in range(30):
                tar.add(source, arcname=f"notMNIST_small/{'ABCDEFGHIJ'[i % 10]}/x{i}.png")
        _truncate(folder / "notMNIST_small.tar.gz", 0.6)
        return mlp, "notMNIST_small.tar.gz"
    if case == "truncated_h5":
        (folder / "assign2_data1.h5").write_bytes(require_file(shared, "assign2_data1.h5").read_bytes()[:100_000])
        return ["apps.catcar_mlp", "--quick", "--data-dir", str(folder)], "assign2_data1.h5"
    if case == "truncated_idx_gz":
        raw = gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 100)
        (folder / "fashion_mnist").mkdir()
        for name in (
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ):
            (folder / "fashion_mnist" / name).write_bytes(raw[:20])
        return [
            "apps.mnist_depth_width",
            "--quick",
            "--dataset",
            "fashion_mnist",
            "--data-dir",
            str(folder),
        ], "fashion_mnist"
    if case == "unknown_sweep_parameter":
        return [
            "apps.notmnist_cnn",
            "--quick",
            "--sweep",
            "momentum=0.1,0.2",
            "--data-dir",
            str(shared),
        ], "unknown sweep parameter 'momentum'"
    if case == "negative_epochs":
        return ["apps.notmnist_cnn", "--epochs", "-3"], "expected a positive integer, got -3"
    if case == "unknown_flag_value":
        return ["apps.notmnist_mlp", "--gradients", "magic"], "invalid choice: 'magic'"
    if case == "batch_larger_than_data":
        return [
            "apps.notmnist_cnn",
            "--quick",
            "--batch-size",
            "5000",
            "--data-dir",
            str(shared),
        ], "larger than the training set"
    raise AssertionError(case)


CASES = [
    "missing_data_dir",
    "missing_file",
    "truncated_npz",
    "wrong_keys",
    "wrong_image_shape",
    "labels_out_of_range",
    "empty_dataset",
    "truncated_tarball",
    "truncated_h5",
    "truncated_idx_gz",
    "unknown_sweep_parameter",
    "negative_epochs",
    "unknown_flag_value",
    "batch_larger_than_data",
]


def _check_bad_input(case, result, fragment, tmp_path):
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    line = _error_line(result)
    assert fragment in line, line
    assert not (tmp_path / "model").exists()  # no half-written model for a failed run
    print(f"{case}: {line}")


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_error_line_and_nonzero_exit(case, data_dir, tmp_path, capsys, monkeypatch):
    args, fragment = _bad_data(case, tmp_path / "data", data_dir)
    result = _run_in_process(
        [*args, "--out", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "model")], capsys, monkeypatch
    )
    _check_bad_input(case, result, fragment, tmp_path)


# The same through `python -m`, for a data error deep in a loader and for a flag argparse rejects.
@pytest.mark.parametrize("case", ["truncated_h5", "unknown_flag_value"])
def test_bad_input_from_the_command_line_prints_no_traceback(case, data_dir, tmp_path):
    args, fragment = _bad_data(case, tmp_path / "data", data_dir)
    result = _run([*args, "--out", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "model")])
    _check_bad_input(case, result, fragment, tmp_path)


def test_png_that_is_not_an_image_is_skipped_with_a_count(tmp_path, data_dir):
    from tfnets.data import load_notmnist

    folder = tmp_path / "notMNIST_small"
    source = require_file(data_dir, "notMNIST_small/A/A_0000.png")
    for letter in "ABCDEFGHIJ":
        (folder / letter).mkdir(parents=True)
        for i in range(3):
            (folder / letter / f"{letter}{i}.png").write_bytes(source.read_bytes())
    (folder / "C" / "broken.png").write_text("not a png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the loader also warns about the skipped file
        splits = load_notmnist(tmp_path)
    assert splits.skipped == 1 and sum(splits.sizes().values()) == 30


def test_predict_refuses_bad_model_and_inputs(tmp_path, capsys, monkeypatch):
    result = _run_in_process(["apps.predict", str(tmp_path / "no_model"), "x.png"], capsys, monkeypatch)
    assert result.returncode == 2 and "does not exist" in _error_line(result)
    Image.fromarray(np.zeros((5, 5), "uint8")).save(tmp_path / "x.png")
    result = _run_in_process(["apps.predict", str(tmp_path), str(tmp_path / "x.png")], capsys, monkeypatch)
    assert result.returncode == 2 and "not an exported tfnets model" in _error_line(result)

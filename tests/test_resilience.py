"""Issue 9 across apps: resume after SIGKILL, NaN guard, and the bad-input matrix at the command line.

Each case runs the real command (`python -m apps...`) as a user would and asserts the exit code and the one
error line; no traceback may reach the user.
"""
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import require_file

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TFNETS_OFFLINE="1", **extra)
    env.pop("TFNETS_DATA_DIR", None)  # each case says exactly which data folder it uses
    return env


def _run(args, timeout=300, **env):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=_env(**env), capture_output=True,
                          text=True, timeout=timeout)


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

def test_sigkill_mid_training_then_rerun_equals_uninterrupted_run(data_dir, tmp_path):
    base = ["apps.notmnist_cnn", "--quick", "--epochs", "12", "--seed", "3", "--data-dir", str(data_dir)]
    whole = _run([*base, "--out", str(tmp_path / "a"), "--export-dir", str(tmp_path / "ma")])
    assert whole.returncode == 0, whole.stderr[-2000:]

    command = [*base, "--out", str(tmp_path / "b"), "--export-dir", str(tmp_path / "mb")]
    process = subprocess.Popen([sys.executable, "-m", *command], cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint, deadline = None, time.time() + 240
    while time.time() < deadline and process.poll() is None:
        found = list((tmp_path / "b").glob("*/*/checkpoint.npz"))
        if found:
            with np.load(found[0]) as saved:
                epochs_done = json.loads(bytes(saved["state"]).decode())["epochs_done"]
            if epochs_done >= 2:
                checkpoint = found[0]
                break
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint is not None and not (checkpoint.parent / "metrics.json").exists()

    resumed = _run(command)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming after epoch" in resumed.stdout
    assert _metrics(tmp_path / "b") == _metrics(tmp_path / "a")


# --quick trains on 300 examples: 3 batches of 100. One graph call per epoch (the default) can only name the
# epoch's batch range; one call per batch names the batch.
@pytest.mark.parametrize("flags, where", [([], r"epoch 1, within batches 1-3 \("),
                                          (["--steps-per-execution", "1"], r"epoch 1, batch [1-3] \(")])
def test_nan_loss_stops_with_one_line_and_exit_3(data_dir, tmp_path, flags, where):
    result = _run(["apps.notmnist_mlp", "--quick", "--epochs", "5", "--learning-rate", "1e20", "--hidden-units", "50",
                   "--batch-size", "100", *flags, "--data-dir", str(data_dir), "--out", str(tmp_path),
                   "--export-dir", str(tmp_path / "m")])
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
        (folder / "assign2_data1.h5").write_bytes(
            require_file(shared, "assign2_data1.h5").read_bytes()[:100_000])
        return ["apps.catcar_mlp", "--quick", "--data-dir", str(folder)], "assign2_data1.h5"
    if case == "truncated_idx_gz":
        raw = gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 100)
        (folder / "fashion_mnist").mkdir()
        for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                     "t10k-labels-idx1-ubyte.gz"):
            (folder / "fashion_mnist" / name).write_bytes(raw[:20])
        return ["apps.mnist_depth_width", "--quick", "--dataset", "fashion_mnist", "--data-dir", str(folder)], \
            "fashion_mnist"
    if case == "unknown_sweep_parameter":
        return ["apps.notmnist_cnn", "--quick", "--sweep", "momentum=0.1,0.2", "--data-dir", str(shared)], \
            "unknown sweep parameter 'momentum'"
    if case == "negative_epochs":
        return ["apps.notmnist_cnn", "--epochs", "-3"], "expected a positive integer, got -3"
    if case == "unknown_flag_value":
        return ["apps.notmnist_mlp", "--gradients", "magic"], "invalid choice: 'magic'"
    if case == "batch_larger_than_data":
        return ["apps.notmnist_cnn", "--quick", "--batch-size", "5000", "--data-dir", str(shared)], \
            "larger than the training set"
    raise AssertionError(case)


CASES = ["missing_data_dir", "missing_file", "truncated_npz", "wrong_keys", "wrong_image_shape",
         "labels_out_of_range", "empty_dataset", "truncated_tarball", "truncated_h5", "truncated_idx_gz",
         "unknown_sweep_parameter", "negative_epochs", "unknown_flag_value", "batch_larger_than_data"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_error_line_and_nonzero_exit(case, data_dir, tmp_path):
    args, fragment = _bad_data(case, tmp_path / "data", data_dir)
    result = _run([*args, "--out", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "model")])
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    line = _error_line(result)
    assert fragment in line, line
    assert not (tmp_path / "model").exists()  # no half-written model for a failed run
    print(f"{case}: {line}")


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


def test_predict_refuses_bad_model_and_inputs(tmp_path):
    result = _run(["apps.predict", str(tmp_path / "no_model"), "x.png"])
    assert result.returncode == 2 and "does not exist" in _error_line(result)
    Image.fromarray(np.zeros((5, 5), "uint8")).save(tmp_path / "x.png")
    result = _run(["apps.predict", str(tmp_path), str(tmp_path / "x.png")])
    assert result.returncode == 2 and "not an exported tfnets model" in _error_line(result)

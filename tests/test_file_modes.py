"""Files and folders tfnets writes get the mode the user's umask gives an ordinary `open()` / `mkdir()`, atomic
writes included (their temporaries come from `tempfile`, which makes them private whatever the umask)."""

import dataclasses
import os
import stat
import types

import keras
import numpy as np
import pytest

from tfnets import atomic
from tfnets.experiment import Experiment
from tfnets.experiment.config import CommonConfig, batch_size_option


def _modes(root):
    """{path relative to root: permission bits} of every file and folder under `root` (root included)."""
    found = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = stat.S_IMODE(os.stat(path).st_mode)
    return found


@pytest.fixture
def umask(request):
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


@dataclasses.dataclass(frozen=True)
class ModesConfig(CommonConfig):
    APP = "modes"
    batch_size: int = batch_size_option(16)


def _train_and_export(tmp_path):
    """A tiny run through `Experiment` (config, checkpoint, history, metrics, curves, report) and its export."""
    config = ModesConfig(out=str(tmp_path / "runs"), run_id="r", export_dir=str(tmp_path / "export"), epochs=1)
    with Experiment(config, "modes") as exp:
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(48, 4)).astype("float32"), rng.integers(0, 2, 48)
        data = types.SimpleNamespace(x_train=x[:32], y_train=y[:32], x_valid=x[32:], y_valid=y[32:])
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        exp.train(model, data)
        exp.report.add("Done")
        exp.export(model, class_names=["a", "b"], input_shape=[4])
    return exp.run.path, tmp_path / "export"


@pytest.mark.parametrize("umask", [0o022, 0o077], indirect=True, ids=["umask022", "umask077"])
def test_run_files_checkpoint_and_export_get_the_umask_mode(tmp_path, umask):
    run_path, export_path = _train_and_export(tmp_path)
    run_modes, export_modes = _modes(run_path), _modes(export_path)
    assert {"config.json", "checkpoint.npz", "history.csv", "metrics.json", "report.md", "curves.png"} <= set(run_modes)
    assert {"metadata.json", "model.keras", "serving", "serving/saved_model.pb"} <= set(export_modes)
    file_mode, folder_mode = 0o666 & ~umask, 0o777 & ~umask
    for root, modes in ((run_path, run_modes), (export_path, export_modes)):
        wrong = {
            name: oct(mode)
            for name, mode in modes.items()
            if mode != (folder_mode if os.path.isdir(root / name) else file_mode)
        }
        assert not wrong, f"{root}: expected files {oct(file_mode)}, folders {oct(folder_mode)}: {wrong}"


@pytest.mark.parametrize("umask", [0o022, 0o077], indirect=True, ids=["umask022", "umask077"])
def test_atomic_writers_follow_the_umask_and_read_it_without_changing_it(tmp_path, umask):
    assert atomic.umask() == umask
    assert os.umask(umask) == umask  # reading it left it as it was
    atomic.write_text(tmp_path / "a" / "file.txt", "x")
    with atomic.atomic_directory(tmp_path / "folder") as tmp:
        (tmp / "inside.txt").write_text("y")
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "file.txt").st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(os.stat(tmp_path / "folder").st_mode) == 0o777 & ~umask

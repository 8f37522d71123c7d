"""Solver: update rules applied as in tfnets.nn.optim, histories, best-val params, resume, NaN guard, bad settings."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tfnets.errors import ConfigError, DiskFull, TrainingDiverged
from tfnets.nn import optim
from tfnets.nn.models import FullyConnectedNet
from tfnets.nn.solver import Solver


def blobs(n, seed=0, dim=8, classes=3):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).standard_normal((classes, dim)) * 2.5
    y = rng.integers(0, classes, size=n)
    return centers[y] + rng.standard_normal((n, dim)), y


@pytest.fixture
def data():
    X_train, y_train = blobs(200, seed=0)
    X_val, y_val = blobs(100, seed=1)
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}


def make_net(**kwargs):
    return FullyConnectedNet([16], input_dim=8, num_classes=3, weight_scale=0.1, dtype=tf.float64, seed=0, **kwargs)


@pytest.mark.parametrize(
    "rule, config",
    [
        ("sgd", {"learning_rate": 0.1}),
        ("sgd_momentum", {"learning_rate": 0.05, "momentum": 0.8}),
        ("rmsprop", {"learning_rate": 1e-2, "decay_rate": 0.9}),
        ("adam", {"learning_rate": 1e-2, "beta1": 0.8}),
    ],
)
def test_each_iteration_applies_the_pure_update_rule(data, rule, config):
    """Two full-batch iterations: the solver's weights equal tfnets.nn.optim.step applied to net.loss's grads."""
    net, reference = make_net(normalization="batchnorm"), make_net(normalization="batchnorm")
    state = {name: optim.init_state(rule, p.numpy()) for name, p in reference.params.items()}
    X, y = data["X_train"], data["y_train"]
    for _ in range(2):
        _, grads = reference.loss(X, y)
        for name, p in reference.params.items():
            new, state[name] = optim.step(rule, p.numpy(), grads[name].numpy(), state[name], **config)
            p.assign(new)
    solver = Solver(net, data, update_rule=rule, optim_config=config, batch_size=len(X), num_epochs=2, verbose=False)
    solver.train()
    # (b1 feeds batch norm: its gradient is rounding noise ~1e-12 that rmsprop/adam rescale, hence the atol.)
    for name in net.params:  # the second epoch is the best (or equal) one, so no earlier params are restored
        np.testing.assert_allclose(
            net.params[name].numpy(), reference.params[name].numpy(), rtol=1e-9, atol=1e-9, err_msg=name
        )


def test_histories_learning_and_best_params(data):
    net = make_net(normalization="layernorm", dropout_keep_ratio=0.9)
    net.model.seed = None  # fresh dropout masks every step for training
    solver = Solver(
        net,
        data,
        update_rule="adam",
        optim_config={"learning_rate": 1e-2},
        lr_decay=0.9,
        batch_size=20,
        num_epochs=4,
        num_train_samples=50,
        verbose=False,
    )
    solver.train()
    assert len(solver.loss_history) == 4 * 10
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 4
    assert solver.loss_history[-1] < solver.loss_history[0]
    assert solver.best_val_acc == max(solver.val_acc_history) > 0.8
    assert float(solver.learning_rate.numpy()) == pytest.approx(1e-2 * 0.9**4)
    for name, value in solver.best_params.items():
        np.testing.assert_array_equal(net.params[name].numpy(), value)
    assert solver.check_accuracy(data["X_val"], data["y_val"]) == pytest.approx(solver.best_val_acc)
    rows = solver.history()
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["loss"] == pytest.approx(np.mean(solver.loss_history[:10]))


def test_keeps_the_best_validation_epoch_not_the_last(data):
    net = make_net()
    solver = Solver(
        net, data, update_rule="sgd", optim_config={"learning_rate": 0.05}, batch_size=50, num_epochs=3, verbose=False
    )
    snapshots = []
    original = solver._save_checkpoint

    def record():
        snapshots.append(net.params["W1"].numpy().copy())
        original()

    solver._save_checkpoint = record
    solver.train()
    best = int(np.argmax(solver.val_acc_history))  # first epoch reaching the maximum
    np.testing.assert_array_equal(net.params["W1"].numpy(), snapshots[best])


def test_resume_from_checkpoint_equals_uninterrupted_run(data, tmp_path):
    def solver_for(epochs, path):
        net = make_net(normalization="batchnorm")
        return Solver(
            net,
            data,
            update_rule="adam",
            optim_config={"learning_rate": 1e-2},
            batch_size=40,
            num_epochs=epochs,
            checkpoint_path=path,
            verbose=False,
        ), net

    full, full_net = solver_for(4, tmp_path / "full.npz")
    full.train()
    first, _ = solver_for(2, tmp_path / "resumed.npz")
    first.train()
    resumed, resumed_net = solver_for(4, tmp_path / "resumed.npz")
    resumed.train()
    assert resumed.loss_history == full.loss_history
    assert resumed.val_acc_history == full.val_acc_history
    for name in full_net.params:
        np.testing.assert_array_equal(resumed_net.params[name].numpy(), full_net.params[name].numpy())


def test_a_full_disk_at_a_checkpoint_names_it_and_the_epoch_a_rerun_resumes_after(data, tmp_path, monkeypatch):
    import errno
    import os

    path = tmp_path / "solver.npz"
    solver = Solver(make_net(), data, batch_size=40, num_epochs=3, checkpoint_path=path, verbose=False)
    savez, calls = np.savez, []

    def savez_until_full(handle, **arrays):
        calls.append(1)
        if len(calls) == 2:  # epoch 2's checkpoint: the disk is full
            handle.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        savez(handle, **arrays)

    monkeypatch.setattr(np, "savez", savez_until_full)
    with pytest.raises(DiskFull) as caught:
        solver.train()
    assert str(caught.value) == (
        f"no space left on device writing {path}; free space and re-run the same command: training resumes after epoch 1"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["solver.npz"]
    with np.load(path) as saved:
        assert json.loads(bytes(saved["state"]).decode())["epoch"] == 1


def test_divergence_raises_one_line_error(data):
    net = make_net()
    solver = Solver(
        net,
        data,
        update_rule="sgd",
        optim_config={"learning_rate": 1e200},
        batch_size=50,
        num_epochs=3,
        verbose=False,
        setting="lr=1e200",
    )
    with pytest.raises(TrainingDiverged, match=r"epoch 1.*lr=1e200") as err:
        solver.train()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"update_rule": "adagrad"}, "unknown update rule"),
        ({"batch_size": 1000}, "batch_size"),
        ({"optim_config": {"learning_rate": 1e-2, "momentum": 0.9}}, "bad hyperparameters"),
    ],
)
def test_bad_settings_raise_config_errors(data, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Solver(make_net(), data, num_epochs=1, verbose=False, **kwargs).train()

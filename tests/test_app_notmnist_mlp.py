"""apps.notmnist_mlp: the hand-written-backprop MLP against autodiff and the NumPy reference, and the app end to end."""

import json

import numpy as np
import pytest

from apps import notmnist_mlp, predict
from tfnets.data import load_notmnist
from tfnets.errors import ConfigError
from tfnets.experiment import determinism
from tfnets.experiment.cli import run_main
from tfnets.nn.reference import NumpyMLP


@pytest.fixture(scope="module")
def small_batch(data_dir):
    """256 real training images, flattened (256, 784) in [0, 1], and their labels."""
    data = load_notmnist(data_dir).subset(256, 8, seed=1)
    return data.x_train.reshape(-1, 784).astype("float32"), data.y_train


def _train_full_batch(model, x, y, steps):
    losses = [float(model.train_on_batch(x, y)[0]) for _ in range(steps)]
    return losses, [w.numpy() for w in model.weights]


def test_xavier_init_is_untruncated_gaussian_with_the_assignment_variance():
    model = notmnist_mlp.build_model(hidden_units=1000, seed=3)
    w1, b1, w2, b2 = (w.numpy() for w in model.weights)
    assert w1.shape == (784, 1000) and w2.shape == (1000, 10)
    expected_std = np.sqrt(2.0 / (784 + 1000))
    assert abs(w1.mean()) < 0.01 * expected_std
    assert w1.std() == pytest.approx(expected_std, rel=0.01)
    # A truncated normal (Keras' GlorotNormal) never exceeds 2 standard deviations of the untruncated one.
    assert np.abs(w1).max() > 4 * expected_std
    assert not b1.any() and not b2.any()


def test_manual_backprop_and_autodiff_give_the_same_weights(small_batch):
    x, y = small_batch
    determinism.configure(0)
    manual = notmnist_mlp.build_model(hidden_units=64, gradients="manual", seed=7)
    autodiff = notmnist_mlp.build_model(hidden_units=64, gradients="autodiff", seed=7)
    initial = manual.weights[0].numpy().copy()
    for a, b in zip(manual.weights, autodiff.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # same seed -> same starting point
    manual_losses, manual_weights = _train_full_batch(manual, x, y, steps=5)
    autodiff_losses, autodiff_weights = _train_full_batch(autodiff, x, y, steps=5)
    np.testing.assert_allclose(manual_losses, autodiff_losses, rtol=1e-5)
    for a, b in zip(manual_weights, autodiff_weights):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.abs(manual_weights[0] - initial).max() > 1e-3  # the weights did move


def test_keras_model_follows_the_numpy_reference_step_for_step(small_batch):
    x, y = small_batch
    determinism.configure(0)
    model = notmnist_mlp.build_model(hidden_units=64, seed=11, learning_rate=0.1, momentum=0.9)
    reference = NumpyMLP(input_dim=784, hidden_units=64, num_classes=10, seed=0)
    w1, b1, w2, b2 = (w.numpy() for w in model.weights)
    reference.set_params({"W1": w1, "b1": b1, "W2": w2, "b2": b2})
    initial = w1.copy()

    keras_losses, keras_weights = _train_full_batch(model, x, y, steps=6)
    # Keras logs the mean loss of the step, i.e. at the weights before the update, like NumpyMLP.train_step.
    numpy_losses = [reference.train_step(x, y, learning_rate=0.1, momentum=0.9) for _ in range(6)]
    np.testing.assert_allclose(keras_losses, numpy_losses, rtol=1e-5)
    params = reference.get_params()
    for name, keras_value in zip(("W1", "b1", "W2", "b2"), keras_weights):
        np.testing.assert_allclose(keras_value, params[name], atol=1e-5, err_msg=name)
    assert np.abs(params["W1"] - initial).max() > 1e-3  # six momentum steps moved the weights


def _main(data_dir, tmp_path, *extra):
    return notmnist_mlp.main(
        [
            "--quick",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / "runs"),
            "--export-dir",
            str(tmp_path / "model"),
            *extra,
        ]
    )


def test_quick_run_writes_metrics_report_and_an_exported_model(data_dir, tmp_path, capsys):
    result = _main(data_dir, tmp_path, "--hidden-units", "32")
    metrics = json.loads((result.run.path / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    assert {"train_accuracy", "valid_accuracy", "test_accuracy", "test_loss"} <= set(metrics["final"])
    assert metrics["best"]["epoch"] in (1, 2)
    report = (result.run.path / "report.md").read_text()
    for section in ("## Data", "## Final metrics", "## Early stopping", "lowest valid loss (epoch", "last epoch (2)"):
        assert section in report
    assert (result.run.path / "curves.png").stat().st_size > 0
    # Full-batch gradient descent: one step per epoch over the whole (quick) training set.
    config = json.loads((result.run.path / "config.json").read_text())
    assert config["batch_size"] is None

    png = sorted((data_dir / "notMNIST_small" / "C").glob("*.png"))[0]
    capsys.readouterr()
    probabilities = predict.main([str(tmp_path / "model"), str(png)])
    assert probabilities.shape == (1, 10) and probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{png.name}: ") and line.split(": ")[1][0] in "ABCDEFGHIJ"


def test_same_seed_gives_the_same_metrics(data_dir, tmp_path):
    first = _main(data_dir, tmp_path / "a", "--hidden-units", "16").metrics
    second = _main(data_dir, tmp_path / "b", "--hidden-units", "16").metrics
    for metrics in (first, second):  # wall-clock entries are the only things allowed to differ
        metrics.pop("timing"), metrics["best"].pop("time_s", None)
    assert first == second


def test_hidden_unit_study_tabulates_each_size(data_dir, tmp_path):
    result = _main(data_dir, tmp_path, "--hidden-units", "8,16")
    assert list(result.parts) == ["hidden_units=8", "hidden_units=16"]
    for part in result.parts.values():
        assert 0 <= part.final["test_accuracy"] <= 1 and part.final["test_loss"] > 0
        assert part.metrics["timing"]["wall_time_s"] > 0 and part.metrics.get("status", "completed") == "completed"
        assert part.best["epoch"] in (1, 2) and part.model is not None
    # The study's result is its best trial by the search's objective (lowest validation loss of any epoch).
    best = min(result.parts.values(), key=lambda part: min(row["val_loss"] for row in part.history))
    assert result.run_path == best.run_path and result.parts["hidden_units=16"].model.layers[0].units == 16
    run_dir = next((tmp_path / "runs" / "notmnist_mlp").iterdir())
    table = (run_dir / "hidden_units_results.csv").read_text()
    assert table.count("\n") == 3 and table.splitlines()[0].startswith("hidden_units,test_accuracy,test_loss")
    assert "## hidden_units study" in (run_dir / "report.md").read_text()
    assert (run_dir / "trials" / "hidden_units=16" / "metrics.json").exists()


def test_the_configuration_is_checked_once_whatever_builds_it():
    config = notmnist_mlp.Config.from_argv(["--hidden-units", "8,16", "--sweep", "learning_rate=0.1,0.3"])
    assert config.hidden_units == (8, 16)
    assert config.study_space == {"hidden_units": [8, 16], "learning_rate": [0.1, 0.3]}
    assert notmnist_mlp.Config().study_space == {}  # one size: a single run, exported
    with pytest.raises(ConfigError, match="either in --hidden-units or in --sweep"):
        notmnist_mlp.Config(hidden_units=(8, 16), sweep=("hidden_units=4,8",))
    with pytest.raises(ConfigError, match="--momentum must be in"):
        notmnist_mlp.Config.make(notmnist_mlp.Config(), momentum=1.0)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--hidden-units", "0"], "expected a positive integer"),
        (["--gradients", "numeric"], "invalid choice"),
        (["--learning-rate", "-1"], "expected a positive number"),
        (["--momentum", "1.5"], "--momentum must be in [0, 1)"),
        (["--batch-size", "100000"], "larger than the training set"),
        (["--sweep", "dropout=0.5"], "unknown sweep parameter 'dropout'"),
        (["--sweep", "learning_rate=1e-4:1e-1:log"], "a grid needs lists of values"),
        (["--tuner", "bayesian", "--sweep", "learning_rate=1e-4:1e-1:log"], "--tuner bayesian needs --max-trials N"),
        (["--sweep", "hidden_units=8:64:cubic", "--tuner", "random"], "bad range in --sweep"),
    ],
)
def test_bad_flags_give_one_line_and_nonzero_exit(data_dir, tmp_path, capsys, flags, message):
    code = run_main(notmnist_mlp.main, ["--quick", "--data-dir", str(data_dir), "--out", str(tmp_path), *flags])
    err = capsys.readouterr().err.strip()
    assert code != 0 and message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_missing_data_dir_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TFNETS_OFFLINE", "1")  # never try the download
    code = run_main(notmnist_mlp.main, ["--quick", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and err.startswith("error: ") and len(err.splitlines()) == 1

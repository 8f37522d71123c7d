"""tfnets.nn.reference.NumpyMLP: gradients vs central differences, training, init statistics."""

import sys

import numpy as np
import pytest

from tfnets.errors import DataError
from tfnets.nn.reference import NumpyMLP


def _tiny_problem(seed=0, n=7, d=5, classes=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, classes, size=n)


def _numeric_grad(f, w, h=1e-6):
    """Central differences of scalar f() w.r.t. every entry of w (modified in place, restored)."""
    grad = np.zeros_like(w)
    it = np.nditer(w, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = w[i]
        w[i] = old + h
        plus = f()
        w[i] = old - h
        minus = f()
        w[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def _plain_loss(params, x, y):
    """Independent, unoptimised forward pass + cross-entropy (no buffers, no in-place ops)."""
    h = np.maximum(x @ params["W1"] + params["b1"], 0.0)
    z = h @ params["W2"] + params["b2"]
    log_probs = z - np.log(np.sum(np.exp(z - z.max(1, keepdims=True)), 1, keepdims=True)) - z.max(1, keepdims=True)
    return -np.mean(log_probs[np.arange(len(y)), y])


def test_gradients_match_central_differences_float64():
    x, y = _tiny_problem()
    net = NumpyMLP(input_dim=5, hidden_units=6, num_classes=4, seed=1, dtype=np.float64)
    net.params["b1"][:] = np.random.default_rng(2).standard_normal(6) * 0.1
    net.params["b2"][:] = np.random.default_rng(3).standard_normal(4) * 0.1
    # Keep every pre-activation away from the ReLU kink so finite differences are valid.
    pre = x @ net.params["W1"] + net.params["b1"]
    assert np.abs(pre).min() > 1e-4
    loss, grads = net.loss_and_grads(x, y)
    assert loss == pytest.approx(_plain_loss(net.params, x, y), rel=1e-12)
    grads = {k: g.copy() for k, g in grads.items()}
    for name, w in net.params.items():
        numeric = _numeric_grad(lambda: _plain_loss(net.params, x, y), w)
        rel = np.abs(numeric - grads[name]) / np.maximum(1e-8, np.abs(numeric) + np.abs(grads[name]))
        assert rel.max() < 1e-7, (name, rel.max())


def test_one_hot_labels_and_image_shaped_inputs_give_same_result():
    rng = np.random.default_rng(0)
    x = rng.random((6, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=6)
    net = NumpyMLP(input_dim=16, hidden_units=8, num_classes=3, seed=0)
    loss_int, g_int = net.loss_and_grads(x, y)
    g_int = {k: v.copy() for k, v in g_int.items()}
    loss_hot, g_hot = net.loss_and_grads(x.reshape(6, 16), np.eye(3)[y])
    assert loss_int == loss_hot
    for k in g_int:
        np.testing.assert_array_equal(g_int[k], g_hot[k])


def test_train_step_implements_notmnist_momentum_rule():
    """w <- w - v with v <- gamma v + alpha grad, checked against an explicit re-implementation."""
    x, y = _tiny_problem(n=9)
    net = NumpyMLP(input_dim=5, hidden_units=6, num_classes=4, seed=3, dtype=np.float64)
    w = net.get_params()
    v = {k: np.zeros_like(p) for k, p in w.items()}
    alpha, gamma = 0.3, 0.9
    for _ in range(4):
        ref = NumpyMLP(input_dim=5, hidden_units=6, num_classes=4, dtype=np.float64)
        ref.set_params(w)
        _, g = ref.loss_and_grads(x, y)
        for k in w:
            v[k] = gamma * v[k] + alpha * g[k]
            w[k] = w[k] - v[k]
        net.train_step(x, y, learning_rate=alpha, momentum=gamma)
    for k in w:
        np.testing.assert_allclose(net.params[k], w[k], rtol=1e-12, atol=1e-14)


def test_training_reduces_loss_on_separable_data():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((10, 784)).astype(np.float32) * 2
    y = rng.integers(0, 10, size=500)
    x = centers[y] + rng.standard_normal((500, 784)).astype(np.float32) * 0.5
    net = NumpyMLP(hidden_units=64, seed=0)
    loss0, acc0 = net.evaluate(x, y)
    losses = [net.train_step(x, y, learning_rate=0.05) for _ in range(20)]
    loss1, acc1 = net.evaluate(x, y)
    assert losses[0] == pytest.approx(loss0, rel=1e-5)
    assert loss1 < 0.2 * loss0
    assert acc1 > 0.95 > acc0
    assert all(p.dtype == np.float32 for p in net.params.values())


def test_xavier_init_variance_and_zero_biases():
    net = NumpyMLP(input_dim=784, hidden_units=1000, num_classes=10, seed=5)
    for name, (fan_in, fan_out) in {"W1": (784, 1000), "W2": (1000, 10)}.items():
        w = net.params[name].astype(np.float64)
        expected = 2.0 / (fan_in + fan_out)
        # Sample variance of n Gaussian draws has relative std sqrt(2/n): allow 5 of those.
        tol = 5 * np.sqrt(2.0 / w.size)
        assert abs(w.var() / expected - 1) < tol, (name, w.var(), expected)
        assert abs(w.mean()) < 5 * np.sqrt(expected / w.size)
    assert not net.params["b1"].any() and not net.params["b2"].any()
    # Different seeds give different weights; same seed gives the same ones.
    np.testing.assert_array_equal(NumpyMLP(seed=5).params["W1"], net.params["W1"])
    assert not np.array_equal(NumpyMLP(seed=6).params["W2"], net.params["W2"])


def test_set_params_copies_and_validates():
    net = NumpyMLP(input_dim=5, hidden_units=6, num_classes=4)
    other = NumpyMLP(input_dim=5, hidden_units=6, num_classes=4, seed=9)
    net.set_params(other.params)
    for k in other.params:
        np.testing.assert_array_equal(net.params[k], other.params[k])
    assert net.params["W1"] is not other.params["W1"]
    with pytest.raises(DataError, match="W1"):
        net.set_params({**other.params, "W1": np.zeros((3, 3))})
    with pytest.raises(DataError, match="features"):
        net.forward(np.zeros((2, 7)))


def test_module_does_not_import_tensorflow():
    import subprocess

    code = "import sys, tfnets.nn.reference; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

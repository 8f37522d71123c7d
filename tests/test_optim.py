"""tfnets.nn.optim: pure update rules, the generic step API, and the Keras optimizers built on them."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnets.errors import ConfigError
from tfnets.nn import optim

# ------------------------------------------------------------------------------------------
# Independent scalar re-implementations of each formula (float64, one element at a time).
# ------------------------------------------------------------------------------------------


def _scalar_rule(rule, w, dw, state, hp):
    """One step of `rule` on Python floats, written straight from the update formulas."""
    if rule == "sgd":
        return w - hp["learning_rate"] * dw, state
    if rule == "sgd_momentum":
        v = hp["momentum"] * state["velocity"] - hp["learning_rate"] * dw
        return w + v, {"velocity": v}
    if rule == "rmsprop":
        c = hp["decay_rate"] * state["cache"] + (1 - hp["decay_rate"]) * dw * dw
        return w - hp["learning_rate"] * dw / (math.sqrt(c) + hp["epsilon"]), {"cache": c}
    if rule == "adam":
        t = state["t"] + 1
        m = hp["beta1"] * state["m"] + (1 - hp["beta1"]) * dw
        v = hp["beta2"] * state["v"] + (1 - hp["beta2"]) * dw * dw
        m_hat, v_hat = m / (1 - hp["beta1"] ** t), v / (1 - hp["beta2"] ** t)
        return w - hp["learning_rate"] * m_hat / (math.sqrt(v_hat) + hp["epsilon"]), {"m": m, "v": v, "t": t}
    raise AssertionError(rule)


HPARAMS = {
    "sgd": {"learning_rate": 0.1},
    "sgd_momentum": {"learning_rate": 0.1, "momentum": 0.9},
    "rmsprop": {"learning_rate": 0.01, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
}
SCALAR_STATE = {
    "sgd": {},
    "sgd_momentum": {"velocity": 0.0},
    "rmsprop": {"cache": 0.0},
    "adam": {"m": 0.0, "v": 0.0, "t": 0},
}


def _grad_of_quadratic(w):
    """Gradient of 0.5*sum(a*w^2) + sum(c*w): depends on w, so the trajectory is path dependent."""
    a = np.array([[1.0, 3.0, 0.5], [2.0, 0.1, 4.0]])
    c = np.array([[0.3, -1.0, 2.0], [-0.5, 0.0, 1.0]])
    return a * w + c


def _expected_trajectory(rule, w0, steps):
    w = w0.astype(np.float64).copy()
    states = [dict(SCALAR_STATE[rule]) for _ in range(w.size)]
    out = []
    for _ in range(steps):
        g = _grad_of_quadratic(w)
        flat_w, flat_g = w.ravel(), g.ravel()
        for i in range(w.size):
            flat_w[i], states[i] = _scalar_rule(rule, flat_w[i], flat_g[i], states[i], HPARAMS[rule])
        out.append(w.copy())
    return out


W0 = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -1.5]])


@pytest.mark.parametrize("rule", sorted(optim.UPDATE_RULES))
@pytest.mark.parametrize("backend", ["numpy64", "numpy32", "tf"])
def test_rule_matches_formula_over_several_steps(rule, backend):
    steps = 6
    expected = _expected_trajectory(rule, W0, steps)
    dtype = np.float32 if backend != "numpy64" else np.float64
    w = W0.astype(dtype)
    if backend == "tf":
        w = tf.constant(w)
    state = optim.init_state(rule, w)
    for k in range(steps):
        dw = _grad_of_quadratic(np.asarray(w, dtype=np.float64)).astype(dtype)
        if backend == "tf":
            dw = tf.constant(dw)
        w_before, dw_before = np.array(w), np.array(dw)
        w, state = optim.step(rule, w, dw, state, **HPARAMS[rule])
        # Pure: the inputs are untouched, and the result keeps the backend and dtype.
        np.testing.assert_array_equal(np.asarray(dw), dw_before)
        assert backend != "tf" or isinstance(w, tf.Tensor)
        assert backend == "tf" or (isinstance(w, np.ndarray) and w.dtype == dtype)
        assert not np.array_equal(np.asarray(w), w_before)
        tol = 1e-12 if backend == "numpy64" else 2e-5
        np.testing.assert_allclose(np.asarray(w), expected[k], rtol=tol, atol=tol)


def test_hand_computed_values():
    # sgd_momentum: v1 = -0.1*2 = -0.2, w1 = 0.8; v2 = 0.9*-0.2 - 0.2 = -0.38, w2 = 0.42.
    w, v = optim.sgd_momentum(np.array([1.0]), np.array([2.0]), np.array([0.0]), 0.1, 0.9)
    w, v = optim.sgd_momentum(w, np.array([2.0]), v, 0.1, 0.9)
    np.testing.assert_allclose([w[0], v[0]], [0.42, -0.38])
    # rmsprop step 1: cache = 0.01*4 = 0.04, step = 0.01*2/0.2 = 0.1.
    w, cache = optim.rmsprop(np.array([1.0]), np.array([2.0]), np.array([0.0]), epsilon=0.0)
    np.testing.assert_allclose([w[0], cache[0]], [0.9, 0.04])
    # adam step 1: bias correction makes m_hat = dw, v_hat = dw^2, so the step is exactly lr*sign(dw).
    w, m, v, t = optim.adam(
        np.array([1.0, 1.0]), np.array([-5.0, 1e-3]), np.zeros(2), np.zeros(2), 0, learning_rate=0.1, epsilon=0.0
    )
    np.testing.assert_allclose(w, [1.1, 0.9])
    assert t == 1


def test_step_api_and_errors():
    w = np.ones(3, np.float32)
    assert optim.init_state("sgd", w) == {}
    state = optim.init_state("adam", w)
    assert state["t"] == 0 and state["m"].shape == (3,) and not state["v"].any()
    with pytest.raises(ConfigError, match="unknown update rule 'nesterov'"):
        optim.init_state("nesterov", w)
    with pytest.raises(ConfigError, match="sgd_momentum"):
        optim.step("sgd_momentum", w, w, optim.init_state("sgd_momentum", w), beta1=0.9)
    with pytest.raises(ConfigError, match="momentum"):
        optim.SGDMomentum(momentum=1.5)


# ------------------------------------------------------------------------------------------
# Momentum forms used by the assignments
# ------------------------------------------------------------------------------------------


def test_notmnist_momentum_form_equals_sgd_momentum():
    alpha, gamma = 0.05, 0.9
    w_a = W0.copy()
    v_a = np.zeros_like(W0)  # notMNIST velocity: v <- gamma v + alpha grad; w <- w - v
    w_b, vel_b = W0.copy(), np.zeros_like(W0)
    for _ in range(10):
        v_a = gamma * v_a + alpha * _grad_of_quadratic(w_a)
        w_a = w_a - v_a
        w_b, vel_b = optim.sgd_momentum(w_b, _grad_of_quadratic(w_b), vel_b, learning_rate=alpha, momentum=gamma)
        np.testing.assert_allclose(w_b, w_a, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(vel_b, -v_a, rtol=1e-12, atol=1e-12)
    opt = optim.SGDMomentum.from_notmnist_form(alpha, gamma)
    assert (float(opt.learning_rate), opt.momentum) == pytest.approx((alpha, gamma))


def _per_sample_grads(w, x, y):
    """Gradients of (x_i . w - y_i)^2 for each sample i: shape (N, D)."""
    return 2 * (x @ w - y)[:, None] * x


def test_cat_vs_car_momentum_form_equals_sgd_momentum():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal(8)
    eta, beta, batch = 0.05, 0.8, x.shape[0]
    w_a, delta = np.zeros(3), np.zeros(3)  # cat-vs-car: D <- grad_sum + beta D; w <- w - eta D / batch
    w_b, vel_b = np.zeros(3), np.zeros(3)
    for _ in range(10):
        delta = _per_sample_grads(w_a, x, y).sum(0) + beta * delta
        w_a = w_a - eta * delta / batch
        w_b, vel_b = optim.sgd_momentum(
            w_b, _per_sample_grads(w_b, x, y).sum(0), vel_b, learning_rate=eta / batch, momentum=beta
        )
        np.testing.assert_allclose(w_b, w_a, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(vel_b, -(eta / batch) * delta, rtol=1e-12, atol=1e-12)
    assert float(
        optim.SGDMomentum.from_cat_vs_car_form(eta, beta, batch, summed_gradients=True).learning_rate
    ) == pytest.approx(eta / batch)

    # With a Keras (batch-mean) loss the conversion is learning_rate=eta: fit a linear model with
    # MSE and compare against the cat-vs-car recurrence on summed per-sample gradients.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optim.SGDMomentum.from_cat_vs_car_form(eta, beta, batch), "mse")
    model.fit(x.astype("f4"), y.astype("f4"), batch_size=batch, epochs=10, shuffle=False, verbose=0)
    np.testing.assert_allclose(model.get_weights()[0][:, 0], w_a, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------
# Keras optimizers: same trajectory as the pure functions under model.fit
# ------------------------------------------------------------------------------------------

KERAS_CASES = {
    "sgd": lambda: optim.SGD(learning_rate=0.1),
    "sgd_momentum": lambda: optim.SGDMomentum(learning_rate=0.1, momentum=0.9),
    "rmsprop": lambda: optim.RMSProp(learning_rate=0.01, decay_rate=0.99, epsilon=1e-8),
    "adam": lambda: optim.Adam(learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8),
}


def _linear_data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)
    return x, y


def _linear_model(seed=0):
    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.set_weights([rng.standard_normal((4, 2)).astype("f4"), rng.standard_normal(2).astype("f4")])
    return model


def _mse_grads(kernel, bias, x, y):
    """Analytic gradients of mean((x W + b - y)^2) over all N*C elements."""
    r = 2 * (x @ kernel + bias - y) / y.size
    return x.T @ r, r.sum(0)


def _numpy_fit(rule, kernel, bias, x, y, steps, lr_at=None):
    """Full-batch training with the pure rule in float64; lr_at(t) overrides the learning rate."""
    params = [kernel.astype(np.float64), bias.astype(np.float64)]
    states = [optim.init_state(rule, p) for p in params]
    x, y = x.astype(np.float64), y.astype(np.float64)
    for t in range(steps):
        grads = _mse_grads(*params, x, y)
        hp = dict(HPARAMS[rule])
        if lr_at is not None:
            hp["learning_rate"] = lr_at(t)
        for i in range(2):
            params[i], states[i] = optim.step(rule, params[i], grads[i], states[i], **hp)
    return params


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("rule", sorted(KERAS_CASES))
def test_keras_optimizer_matches_pure_rule_under_fit(rule, jit_compile):
    x, y = _linear_data()
    model = _linear_model()
    kernel0, bias0 = model.get_weights()
    model.compile(optimizer=KERAS_CASES[rule](), loss="mse", jit_compile=jit_compile)
    model.fit(x, y, batch_size=len(x), epochs=5, shuffle=False, verbose=0)
    expected = _numpy_fit(rule, kernel0, bias0, x, y, steps=5)
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    assert not np.allclose(model.get_weights()[0], kernel0)


@pytest.mark.parametrize("rule", ["sgd_momentum", "adam"])
def test_learning_rate_schedule(rule):
    x, y = _linear_data()
    model = _linear_model()
    kernel0, bias0 = model.get_weights()
    lr0 = HPARAMS[rule]["learning_rate"]
    schedule = keras.optimizers.schedules.ExponentialDecay(lr0, decay_steps=1, decay_rate=0.5)
    opt = KERAS_CASES[rule]()
    opt = type(opt).from_config({**opt.get_config(), "learning_rate": schedule})
    model.compile(optimizer=opt, loss="mse", jit_compile=True)
    model.fit(x, y, batch_size=len(x), epochs=4, shuffle=False, verbose=0)
    expected = _numpy_fit(rule, kernel0, bias0, x, y, steps=4, lr_at=lambda t: lr0 * 0.5**t)
    constant = _numpy_fit(rule, kernel0, bias0, x, y, steps=4)
    np.testing.assert_allclose(model.get_weights()[0], expected[0], rtol=2e-5, atol=2e-6)
    assert not np.allclose(model.get_weights()[0], constant[0], rtol=1e-3)


@pytest.mark.parametrize("rule", sorted(KERAS_CASES))
def test_save_and_reload_keeps_optimizer_and_its_state(rule, tmp_path):
    x, y = _linear_data()
    model = _linear_model()
    model.compile(optimizer=KERAS_CASES[rule](), loss="mse")
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    path = tmp_path / "linear.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded.optimizer) is type(model.optimizer)
    assert reloaded.optimizer.get_config() == model.optimizer.get_config()
    assert int(reloaded.optimizer.iterations) == 4
    # Slot variables (velocity / cache / moments) came back: continuing gives the same weights.
    for m in (model, reloaded):
        m.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), reloaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------------------
# Adam: epsilon placement differs from keras.optimizers.Adam
# ------------------------------------------------------------------------------------------


def _apply_once(opt, w0, g):
    var = keras.Variable(w0)
    opt.apply_gradients([(tf.constant(g), var)])
    return np.asarray(var)


def test_adam_epsilon_placement_differs_from_keras():
    w0 = np.array([1.0, -1.0, 0.5], np.float32)
    g = np.array([0.1, -0.02, 0.003], np.float32)
    lr, b2, eps = 0.1, 0.999, 0.1  # a large epsilon makes the difference visible
    ours = _apply_once(optim.Adam(lr, beta2=b2, epsilon=eps), w0, g)
    theirs = _apply_once(keras.optimizers.Adam(lr, beta_2=b2, epsilon=eps), w0, g)
    # Step 1: m_hat = g, v_hat = g^2. Ours: lr*g/(|g|+eps). Keras: eps added to the uncorrected
    # sqrt(v) = sqrt(1-b2)|g|, i.e. lr*g/(|g| + eps/sqrt(1-b2)).
    np.testing.assert_allclose(ours, w0 - lr * g / (np.abs(g) + eps), rtol=1e-6)
    np.testing.assert_allclose(theirs, w0 - lr * g / (np.abs(g) + eps / np.sqrt(1 - b2)), rtol=1e-5)
    assert np.abs(ours - theirs).max() > 1e-3
    # Keras' rule is ours with the time-varying epsilon eps/sqrt(1 - b2^t) (here t = 1) ...
    rescaled = _apply_once(optim.Adam(lr, beta2=b2, epsilon=eps / np.sqrt(1 - b2)), w0, g)
    np.testing.assert_allclose(rescaled, theirs, rtol=1e-5)
    # ... and with a tiny epsilon the steps agree closely (relative gap ~ eps*31.6/|g| at t=1).
    step_ours = _apply_once(optim.Adam(lr, epsilon=1e-8), w0, g) - w0
    step_theirs = _apply_once(keras.optimizers.Adam(lr, epsilon=1e-8), w0, g) - w0
    np.testing.assert_allclose(step_ours, step_theirs, rtol=5e-4)


def test_sgd_momentum_in_keras_reproduces_numpy_reference_mlp():
    """Cross-check with tfnets.nn.reference: a Keras Dense MLP trained with the notMNIST momentum
    conversion follows NumpyMLP.train_step (v <- gamma v + alpha grad; w <- w - v) from identical weights."""
    from tfnets.nn.reference import NumpyMLP

    rng = np.random.default_rng(0)
    x = rng.random((40, 12)).astype(np.float32)
    y = rng.integers(0, 5, size=40)
    ref = NumpyMLP(input_dim=12, hidden_units=16, num_classes=5, seed=2)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(5)])
    model.set_weights([ref.params[k] for k in ("W1", "b1", "W2", "b2")])
    alpha, gamma = 0.5, 0.9
    model.compile(
        optim.SGDMomentum.from_notmnist_form(alpha, gamma), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    history = model.fit(x, y, batch_size=len(x), epochs=5, shuffle=False, verbose=0)
    losses = [ref.train_step(x, y, learning_rate=alpha, momentum=gamma) for _ in range(5)]
    np.testing.assert_allclose(history.history["loss"], losses, rtol=1e-5)
    for got, name in zip(model.get_weights(), ("W1", "b1", "W2", "b2")):
        np.testing.assert_allclose(got, ref.params[name], rtol=1e-4, atol=1e-5)

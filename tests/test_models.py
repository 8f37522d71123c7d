"""FullyConnectedNet / TwoLayerNet: CS231n loss contract, manual gradients vs numeric ones, Keras fit, SVM loss."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnets.errors import ConfigError
from tfnets.nn import optim
from tfnets.nn.losses import SoftmaxCrossEntropy
from tfnets.nn.models import FullyConnectedModel, FullyConnectedNet, TwoLayerNet, svm_loss


def rel_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def assert_grads_close(analytic, numeric, name, tol=1e-6):
    """CS231n relative error <= tol; entries that are zero up to rounding (e.g. a bias feeding batch norm, whose
    gradient is exactly 0) are compared absolutely, since central differences only resolve them to ~1e-10."""
    a, b = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    assert a.shape == b.shape, name
    significant = np.abs(a) + np.abs(b) > 1e-7
    assert rel_error(a[significant], b[significant]) <= tol if significant.any() else True, name
    assert np.max(np.abs(a - b)[~significant], initial=0.0) <= 1e-9, name


def numeric_param_grads(net, X, y, eps=1e-5):
    """Central differences of net.loss(X, y)[0] w.r.t. every parameter (independent of any backward pass)."""
    grads = {}
    for name, variable in net.params.items():
        value = variable.numpy().copy()
        grad = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            original = value[i]
            value[i] = original + eps
            variable.assign(value)
            plus = float(net.loss(X, y)[0])
            value[i] = original - eps
            variable.assign(value)
            minus = float(net.loss(X, y)[0])
            value[i] = original
            grad[i] = (plus - minus) / (2 * eps)
        variable.assign(value)
        grads[name] = grad
    return grads


def randomize_biases(net, seed=0):
    """Non-zero biases keep ReLU inputs away from the kink at 0 (e.g. for an example whose units all dropped)."""
    rng = np.random.default_rng(seed)
    for name, variable in net.params.items():
        if name.startswith(("b", "beta")):
            variable.assign(rng.uniform(-0.5, 0.5, size=variable.shape))


def numpy_loss(net, X, y):
    """An independent NumPy forward pass of the training-time loss (no dropout)."""
    p = {k: v.numpy() for k, v in net.params.items()}
    h = X.reshape(len(X), -1)
    for layer in range(1, net.num_layers):
        h = h @ p[f"W{layer}"] + p[f"b{layer}"]
        if net.normalization == "batchnorm":
            h = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5) * p[f"gamma{layer}"] + p[f"beta{layer}"]
        elif net.normalization == "layernorm":
            mu, var = h.mean(1, keepdims=True), h.var(1, keepdims=True)
            h = (h - mu) / np.sqrt(var + 1e-5) * p[f"gamma{layer}"] + p[f"beta{layer}"]
        h = np.maximum(h, 0)
    scores = h @ p[f"W{net.num_layers}"] + p[f"b{net.num_layers}"]
    shifted = scores - scores.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    data_loss = -log_probs[np.arange(len(y)), y].mean()
    reg_loss = 0.5 * net.reg * sum((p[f"W{i}"] ** 2).sum() for i in range(1, net.num_layers + 1))
    return data_loss + reg_loss


@pytest.fixture
def small_problem():
    rng = np.random.default_rng(231)
    N, D, C = 4, 5, 4
    return rng.standard_normal((N, D)), rng.integers(0, C, size=N), D, C


def test_initial_loss_is_log_num_classes():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 3 * 32 * 32)), rng.integers(0, 10, size=50)
    net = FullyConnectedNet([100, 100], weight_scale=1e-3, dtype=tf.float64, seed=0)
    loss, _ = net.loss(X, y)
    assert abs(float(loss) - np.log(10)) < 0.01


@pytest.mark.parametrize("reg", [0.0, 3.14])
@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_gradients_match_numeric_in_float64(small_problem, reg, normalization):
    X, y, D, C = small_problem
    net = FullyConnectedNet(
        [6, 5],
        input_dim=D,
        num_classes=C,
        reg=reg,
        normalization=normalization,
        weight_scale=5e-1,
        dtype=tf.float64,
        seed=1,
    )
    randomize_biases(net)
    loss, grads = net.loss(X, y)
    np.testing.assert_allclose(float(loss), numpy_loss(net, X, y), rtol=1e-10)
    numeric = numeric_param_grads(net, X, y)
    assert set(grads) == set(net.params)
    for name in net.params:
        assert grads[name].shape == net.params[name].shape
        assert_grads_close(grads[name], numeric[name], name)


@pytest.mark.parametrize("normalization", [None, "batchnorm"])
def test_dropout_gradients_match_numeric_with_fixed_seed(small_problem, normalization):
    X, y, D, C = small_problem
    net = FullyConnectedNet(
        [5, 4],
        input_dim=D,
        num_classes=C,
        dropout_keep_ratio=0.5,
        reg=0.3,
        normalization=normalization,
        weight_scale=5e-1,
        dtype=tf.float64,
        seed=123,
    )
    randomize_biases(net)
    loss_a, grads = net.loss(X, y)
    loss_b, _ = net.loss(X, y)
    assert float(loss_a) == float(loss_b)  # a fixed seed gives the same masks on every call
    numeric = numeric_param_grads(net, X, y)
    for name in net.params:
        assert_grads_close(grads[name], numeric[name], name)


def test_dropout_is_identity_at_test_time_and_varies_in_training_without_seed(small_problem):
    X, y, D, C = small_problem
    keep = FullyConnectedNet([50], input_dim=D, num_classes=C, dropout_keep_ratio=0.25, dtype=tf.float64, seed=3)
    full = FullyConnectedNet([50], input_dim=D, num_classes=C, dtype=tf.float64, seed=3)
    np.testing.assert_allclose(keep.loss(X), full.loss(X))
    unseeded = FullyConnectedNet([50], input_dim=D, num_classes=C, dropout_keep_ratio=0.25, dtype=tf.float64)
    assert float(unseeded.loss(X, y)[0]) != float(unseeded.loss(X, y)[0])


def test_two_layer_net_matches_cs231n_reference_values():
    """The CS231n assignment's own check (known scores and losses for linspace weights)."""
    N, D, H, C = 3, 5, 50, 7
    model = TwoLayerNet(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=1e-3, dtype=tf.float64)
    assert list(model.params) == ["W1", "b1", "W2", "b2"]
    W1_std = abs(model.params["W1"].numpy().std() - 1e-3)
    assert W1_std < 1e-3 / 10 and np.all(model.params["b1"].numpy() == 0)
    model.params["W1"].assign(np.linspace(-0.7, 0.3, num=D * H).reshape(D, H))
    model.params["b1"].assign(np.linspace(-0.1, 0.9, num=H))
    model.params["W2"].assign(np.linspace(-0.3, 0.4, num=H * C).reshape(H, C))
    model.params["b2"].assign(np.linspace(-0.9, 0.1, num=C))
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    scores = np.asarray(model.loss(X))
    correct_scores = np.asarray(
        [
            [11.53165108, 12.2917344, 13.05181771, 13.81190102, 14.57198434, 15.33206765, 16.09215096],
            [12.05769098, 12.74614105, 13.43459113, 14.1230412, 14.81149128, 15.49994135, 16.18839143],
            [12.58373087, 13.20054771, 13.81736455, 14.43418138, 15.05099822, 15.66781506, 16.2846319],
        ]
    )
    assert np.abs(scores - correct_scores).sum() < 1e-6
    y = np.asarray([0, 5, 1])
    assert abs(float(model.loss(X, y)[0]) - 3.4702243556) < 1e-10
    model.reg = 1.0  # read at loss time
    assert abs(float(model.loss(X, y)[0]) - 26.5948426952) < 1e-10


def test_two_layer_net_gradients_match_numeric():
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((3, 5)), rng.integers(0, 4, size=3)
    net = TwoLayerNet(input_dim=5, hidden_dim=8, num_classes=4, weight_scale=0.5, reg=0.7, dtype=tf.float64, seed=0)
    _, grads = net.loss(X, y)
    numeric = numeric_param_grads(net, X, y)
    for name in net.params:
        assert_grads_close(grads[name], numeric[name], name)


def test_any_float_input_dtype_and_numpy_outputs(small_problem):
    X, y, D, C = small_problem
    net = FullyConnectedNet([6], input_dim=D, num_classes=C, seed=0)  # float32 net
    for dtype in (np.float16, np.float32, np.float64):
        scores = np.asarray(net.loss(X.astype(dtype)))
        loss, grads = net.loss(X.astype(dtype), y)
        assert scores.shape == (len(X), C) and scores.dtype == np.float32
        assert np.isfinite(float(loss)) and np.asarray(grads["W1"]).shape == (D, 6)
    images = np.random.default_rng(0).standard_normal((2, 2, 2, 3)).astype(np.float32)
    image_net = FullyConnectedNet([4], input_dim=12, num_classes=3, seed=0)
    np.testing.assert_allclose(image_net.loss(images), image_net.loss(images.reshape(2, 12)), rtol=1e-6)


def test_batchnorm_updates_running_statistics_and_uses_them_at_test_time(small_problem):
    X, y, D, C = small_problem
    net = FullyConnectedNet([6], input_dim=D, num_classes=C, normalization="batchnorm", dtype=tf.float64, seed=2)
    hidden = X @ net.params["W1"].numpy() + net.params["b1"].numpy()
    net.loss(X, y)
    np.testing.assert_allclose(net.bn_stats["running_mean1"].numpy(), 0.1 * hidden.mean(0), rtol=1e-10)
    np.testing.assert_allclose(net.bn_stats["running_var1"].numpy(), 0.9 + 0.1 * hidden.var(0), rtol=1e-10)
    h = (hidden - net.bn_stats["running_mean1"].numpy()) / np.sqrt(net.bn_stats["running_var1"].numpy() + 1e-5)
    expected = np.maximum(h, 0) @ net.params["W2"].numpy() + net.params["b2"].numpy()
    np.testing.assert_allclose(net.loss(X), expected, rtol=1e-10)


def test_keras_fit_step_uses_the_manual_gradients(small_problem):
    X, y, D, C = small_problem
    X = X.astype(np.float32).astype(np.float64)  # Keras' data adapter hands fit float32 inputs
    net = FullyConnectedNet(
        [6, 5],
        input_dim=D,
        num_classes=C,
        reg=0.1,
        normalization="layernorm",
        weight_scale=0.5,
        dtype=tf.float64,
        seed=4,
    )
    before = {k: v.numpy() for k, v in net.params.items()}
    _, grads = net.loss(X, y)
    model = net.as_keras_model()
    model.compile(optimizer=optim.SGD(learning_rate=0.1), loss=SoftmaxCrossEntropy(), metrics=["accuracy"])
    model.fit(X, y, batch_size=len(X), epochs=1, shuffle=False, verbose=0)
    for name, value in before.items():
        # Keras keeps the learning rate in float32: 0.1 is 0.100000001490116...
        expected = value - float(np.float32(0.1)) * grads[name].numpy()
        np.testing.assert_allclose(net.params[name].numpy(), expected, rtol=1e-12, atol=1e-14, err_msg=name)


def test_keras_fit_learns_and_evaluate_includes_the_l2_term():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 10)) * 3
    y = rng.integers(0, 3, size=300)
    X = (centers[y] + rng.standard_normal((300, 10))).astype(np.float32)
    keras.utils.set_random_seed(0)
    net = FullyConnectedNet(
        [32], input_dim=10, num_classes=3, normalization="batchnorm", dropout_keep_ratio=0.8, reg=1e-3, weight_scale=0.1
    )
    model = net.as_keras_model()
    model.compile(optimizer=optim.Adam(learning_rate=1e-2), loss=SoftmaxCrossEntropy(), metrics=["accuracy"])
    history = model.fit(X, y, batch_size=50, epochs=5, verbose=0).history
    assert history["loss"][-1] < history["loss"][0] and history["accuracy"][-1] > 0.9
    evaluated = model.evaluate(X, y, verbose=0, return_dict=True)
    scores = np.asarray(net.loss(X))
    shifted = scores - scores.max(1, keepdims=True)
    data_loss = -(shifted - np.log(np.exp(shifted).sum(1, keepdims=True)))[np.arange(300), y].mean()
    assert evaluated["loss"] == pytest.approx(data_loss + float(net.regularization_loss()), rel=1e-4)


def test_keras_model_saves_and_reloads(tmp_path, small_problem):
    X, _, D, C = small_problem
    net = FullyConnectedNet([6], input_dim=D, num_classes=C, normalization="batchnorm", dropout_keep_ratio=0.5)
    model = net.as_keras_model()
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(reloaded, FullyConnectedModel)
    np.testing.assert_allclose(reloaded.predict(X, verbose=0), np.asarray(net.loss(X)), rtol=1e-6)
    again = FullyConnectedNet.from_keras_model(reloaded)
    assert set(again.params) == set(net.params) and again.dropout_keep_ratio == 0.5


def test_flip_augmentation_flips_whole_images():
    images = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    model = FullyConnectedModel([3], input_dim=48, num_classes=2, augmentation="flip", image_shape=(4, 4, 3))
    out = model.augment(tf.constant(images.reshape(2, -1)), tf.constant([1, 2])).numpy().reshape(images.shape)
    for original, augmented in zip(images, out):
        assert np.array_equal(augmented, original) or np.array_equal(augmented, original[:, ::-1])
    crop = FullyConnectedModel(
        [3], input_dim=48, num_classes=2, augmentation="flip_crop", image_shape=(4, 4, 3), crop_padding=1
    )
    out = crop.augment(tf.constant(images.reshape(2, -1)), tf.constant([3, 4])).numpy().reshape(images.shape)
    # Every output pixel is zero padding or a pixel of the same image.
    for original, augmented in zip(images, out):
        assert set(augmented.ravel()) <= set(original.ravel()) | {0.0}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"normalization": "groupnorm"}, "normalization"),
        ({"dropout_keep_ratio": 0.0}, "dropout_keep_ratio"),
        ({"augmentation": "flip"}, "image_shape"),
    ],
)
def test_bad_settings_raise_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        FullyConnectedNet([4], input_dim=12, **kwargs)


def test_wrong_input_size_is_a_config_error():
    net = FullyConnectedNet([4], input_dim=12)
    with pytest.raises(ConfigError, match="12 features"):
        net.loss(np.zeros((2, 13), np.float32))


def svm_loss_naive(scores, y):
    """CS231n's loop implementation of the multiclass SVM loss and its gradient w.r.t. the scores."""
    N, C = scores.shape
    loss, dscores = 0.0, np.zeros_like(scores)
    for i in range(N):
        for j in range(C):
            if j == y[i]:
                continue
            margin = scores[i, j] - scores[i, y[i]] + 1
            if margin > 0:
                loss += margin
                dscores[i, j] += 1
                dscores[i, y[i]] -= 1
    return loss / N, dscores / N


def test_svm_loss_and_gradient_match_the_naive_loops_and_numeric():
    rng = np.random.default_rng(7)
    scores, y = rng.standard_normal((6, 5)), rng.integers(0, 5, size=6)
    expected_loss, expected_grad = svm_loss_naive(scores, y)
    s = tf.constant(scores)
    with tf.GradientTape() as tape:
        tape.watch(s)
        loss = svm_loss(s, tf.constant(y))
    analytic = tape.gradient(loss, s).numpy()
    assert float(loss) == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(analytic, expected_grad, atol=1e-12)
    numeric = np.zeros_like(scores)
    for i in np.ndindex(scores.shape):
        plus, minus = scores.copy(), scores.copy()
        plus[i] += 1e-6
        minus[i] -= 1e-6
        numeric[i] = (float(svm_loss(plus, y)) - float(svm_loss(minus, y))) / 2e-6
    assert_grads_close(analytic, numeric, "dscores")


@pytest.mark.parametrize("kwargs", [{"normalization": "batchnorm", "reg": 0.5}, {"dropout_keep_ratio": 0.5}])
def test_gradient_check_helper_reports_small_errors_and_flags_a_wrong_gradient(small_problem, kwargs, monkeypatch):
    from tfnets.nn import models

    X, y, D, C = small_problem
    net = FullyConnectedNet([6, 5], input_dim=D, num_classes=C, weight_scale=0.5, dtype=tf.float64, seed=3, **kwargs)
    randomize_biases(net)
    errors = models.gradient_check(net, X, y)
    assert {k.split(" ")[0] for k in errors} == set(net.params)  # b1/b2 feeding batch norm: zero entries only
    assert max(v for k, v in errors.items() if "zero" not in k) <= 1e-6
    assert max([v for k, v in errors.items() if "zero" in k], default=0.0) <= 1e-9
    # A backward pass that forgets the L2 term (or any other term) must be caught.
    original = net.model.training_pass

    def wrong_training_pass(*args, **kw):
        loss, grads, scores = original(*args, **kw)
        return loss, {**grads, "W1": grads["W1"] * 1.01}, scores

    monkeypatch.setattr(net.model, "training_pass", wrong_training_pass)
    assert models.gradient_check(net, X, y)["W1"] > 1e-3

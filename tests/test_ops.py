"""Hand-written ops: gradients vs central differences and vs autodiff of independent code,
forward values vs NumPy, and behaviour in eager / tf.function / XLA and in float32/float16."""

import numpy as np
import pytest
import tensorflow as tf

from tfnets.errors import ConfigError
from tfnets.nn import ops
from tfnets.nn import reference_ops as ref
from tfnets.nn.gradcheck import check_gradients

NUMERIC_TOL = 1e-7  # float64 central differences
AUTODIFF_TOL = 1e-10  # same math, different code: agreement up to round-off
# The 4-point central difference with h = 1e-3 has ~1e-12 absolute error, so even gradient
# elements of size ~1e-4 are measured far below the 1e-7 bar. The CS231n 2-point formula with
# h = 1e-6 has ~1e-10 absolute round-off noise, i.e. up to ~1e-7 relative on such small elements;
# it is checked too, against its own noise floor. Inputs stay > 2h away from every kink.
NUMERIC = dict(eps=1e-3, stencil=4)
CS231N_NUMERIC, CS231N_TOL = dict(eps=1e-6, stencil=2), 1e-6

N, D, M, C, V = 4, 5, 3, 6, 7


def _rng(seed=0):
    return np.random.default_rng(seed)


def away_from_zero(shape, rng, margin=0.1):
    """Normal samples pushed at least `margin` from 0, so +-eps never crosses the ReLU kink."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


def _away_from_hinge(scores, labels, margin=0.05):
    """Assert no SVM margin s_j - s_y + 1 sits within `margin` of the hinge (it would be a kink)."""
    margins = scores - scores[np.arange(len(labels)), labels][:, None] + 1
    margins[np.arange(len(labels)), labels] = 1.0
    assert np.min(np.abs(margins)) > margin, "pick another seed: an SVM margin is at the kink"
    return scores


DROPOUT_SEED = (3, 4)


def _dropout_keep_mask(shape, rate):
    # Built independently of ops.dropout from the documented contract: keep where u >= rate.
    u = tf.random.stateless_uniform(shape, seed=DROPOUT_SEED, dtype=tf.float32, alg="philox")
    return (u >= rate).numpy()


def _cases():
    rng = _rng(0)
    labels = rng.integers(0, C, N)
    running_mean, running_var = rng.standard_normal(D), rng.random(D) + 0.5
    return {
        "affine": (
            ops.affine,
            ref.affine,
            [rng.standard_normal((N, D)), rng.standard_normal((D, M)), rng.standard_normal(M)],
            None,
        ),
        "relu": (ops.relu, ref.relu, [away_from_zero((N, D), rng)], None),
        "tanh": (ops.tanh, ref.tanh, [rng.standard_normal((N, D))], None),
        "sigmoid": (ops.sigmoid, ref.sigmoid, [rng.standard_normal((N, D))], None),
        "softmax": (ops.softmax, ref.softmax, [rng.standard_normal((N, C))], None),
        "softmax_cross_entropy_int": (
            ops.softmax_cross_entropy,
            ref.softmax_cross_entropy,
            [rng.standard_normal((N, C)), labels],
            None,
        ),
        "softmax_cross_entropy_onehot": (
            ops.softmax_cross_entropy,
            ref.softmax_cross_entropy,
            [rng.standard_normal((N, C)), np.eye(C)[labels]],
            [0],
        ),
        "softmax_cross_entropy_per_example": (
            ops.softmax_cross_entropy_per_example,
            ref.softmax_cross_entropy_per_example,
            [rng.standard_normal((N, C)), labels],
            None,
        ),
        "mean_squared_error": (
            ops.mean_squared_error,
            ref.mean_squared_error,
            [rng.standard_normal((N, M)), rng.standard_normal((N, M))],
            None,
        ),
        "mean_squared_error_per_example": (
            ops.mean_squared_error_per_example,
            ref.mean_squared_error_per_example,
            [rng.standard_normal((N, M, 2)), rng.standard_normal((N, M, 2))],
            None,
        ),
        "svm_loss": (ops.svm_loss, ref.svm_loss, [_away_from_hinge(rng.standard_normal((N, C)), labels), labels], None),
        "dropout": (
            lambda x: ops.dropout(x, 0.3, training=True, seed=tf.constant(DROPOUT_SEED)),
            lambda x: ref.dropout_with_mask(x, _dropout_keep_mask((N, D), 0.3), 0.3),
            [rng.standard_normal((N, D))],
            None,
        ),
        "batch_norm_train": (
            lambda x, g, b: ops.batch_norm(x, g, b, running_mean, running_var, training=True)[0],
            lambda x, g, b: ref.batch_norm_train(x, g, b)[0],
            [2 * rng.standard_normal((N, D)) + 1, rng.standard_normal(D), rng.standard_normal(D)],
            None,
        ),
        "batch_norm_train_4d": (
            lambda x, g, b: ops.batch_norm(x, g, b, np.zeros(3), np.ones(3), training=True)[0],
            lambda x, g, b: ref.batch_norm_train(x, g, b)[0],
            [rng.standard_normal((2, 2, 2, 3)), rng.standard_normal(3), rng.standard_normal(3)],
            None,
        ),
        "batch_norm_infer": (
            lambda x, g, b: ops.batch_norm(x, g, b, running_mean, running_var, training=False)[0],
            lambda x, g, b: ref.batch_norm_infer(x, g, b, running_mean, running_var),
            [rng.standard_normal((N, D)), rng.standard_normal(D), rng.standard_normal(D)],
            None,
        ),
        "layer_norm": (
            ops.layer_norm,
            ref.layer_norm,
            [rng.standard_normal((N, D)), rng.standard_normal(D), rng.standard_normal(D)],
            None,
        ),
        "embedding_lookup": (
            ops.embedding_lookup,
            ref.embedding_lookup,
            [np.array([[1, 3, 1], [0, 1, 6]]), rng.standard_normal((V, D))],
            None,
        ),
    }


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_match_numeric_and_autodiff_float64(name):
    f, reference_f, inputs, wrt = CASES[name]
    report = check_gradients(f, inputs, reference_f, wrt=wrt, **NUMERIC)
    assert report, "nothing was checked"
    for input_name, errors in report.items():
        assert errors["numeric"] <= NUMERIC_TOL, (name, input_name, errors)
        assert errors["reference"] <= AUTODIFF_TOL, (name, input_name, errors)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_match_cs231n_two_point_differences(name):
    f, _, inputs, wrt = CASES[name]
    for input_name, errors in check_gradients(f, inputs, wrt=wrt, **CS231N_NUMERIC).items():
        assert errors["numeric"] <= CS231N_TOL, (name, input_name, errors)


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_reference(name):
    f, reference_f, inputs, _ = CASES[name]
    tensors = [tf.constant(v) for v in inputs]
    np.testing.assert_allclose(f(*tensors).numpy(), reference_f(*tensors).numpy(), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ forward values vs NumPy
def test_forward_values_match_numpy_formulas():
    rng = _rng(1)
    x, w, b = rng.standard_normal((N, D)), rng.standard_normal((D, M)), rng.standard_normal(M)
    np.testing.assert_allclose(ops.affine(x, w, b).numpy(), x @ w + b, rtol=1e-12)
    np.testing.assert_allclose(ops.relu(x).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(ops.tanh(x).numpy(), np.tanh(x), rtol=1e-12)
    np.testing.assert_allclose(ops.sigmoid(x).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-12)

    logits, labels = rng.standard_normal((N, C)), rng.integers(0, C, N)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(ops.softmax(logits).numpy(), probs, rtol=1e-12)
    per_example = -np.log(probs[np.arange(N), labels])
    np.testing.assert_allclose(ops.softmax_cross_entropy_per_example(logits, labels).numpy(), per_example, rtol=1e-12)
    np.testing.assert_allclose(ops.softmax_cross_entropy(logits, labels).numpy(), per_example.mean(), rtol=1e-12)

    pred, target = rng.standard_normal((N, M)), rng.standard_normal((N, M))
    np.testing.assert_allclose(ops.mean_squared_error(pred, target).numpy(), ((pred - target) ** 2).mean(), rtol=1e-12)
    np.testing.assert_allclose(
        ops.mean_squared_error_per_example(pred, target).numpy(), ((pred - target) ** 2).mean(axis=1), rtol=1e-12
    )
    np.testing.assert_allclose(
        ops.mean_squared_error_per_example(pred[:, 0], target[:, 0]).numpy(), (pred[:, 0] - target[:, 0]) ** 2
    )


def _svm_loss_naive(scores, labels):
    """CS231n svm_loss_naive: explicit loops."""
    loss = 0.0
    for i in range(scores.shape[0]):
        for j in range(scores.shape[1]):
            if j != labels[i]:
                loss += max(0.0, scores[i, j] - scores[i, labels[i]] + 1)
    return loss / scores.shape[0]


def test_svm_loss_matches_naive_loops():
    rng = _rng(2)
    scores, labels = rng.standard_normal((8, 5)), rng.integers(0, 5, 8)
    np.testing.assert_allclose(ops.svm_loss(scores, labels).numpy(), _svm_loss_naive(scores, labels), rtol=1e-12)


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    rng = _rng(3)
    logits, labels = tf.constant(rng.standard_normal((N, C))), rng.integers(0, C, N)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = ops.softmax_cross_entropy(logits, labels)
    probs = tf.nn.softmax(logits).numpy()
    np.testing.assert_allclose(tape.gradient(loss, logits).numpy(), (probs - np.eye(C)[labels]) / N, rtol=1e-12)


def test_int_and_onehot_labels_agree():
    rng = _rng(4)
    logits, labels = rng.standard_normal((N, C)), rng.integers(0, C, N)
    onehot = np.eye(C)[labels]
    assert ops.softmax_cross_entropy(logits, labels).numpy() == pytest.approx(
        ops.softmax_cross_entropy(logits, onehot).numpy(), rel=1e-14
    )


def test_softmax_and_cross_entropy_are_stable_for_huge_logits():
    logits = tf.constant([[1000.0, 0.0, -1000.0], [-1000.0, 0.0, 1000.0]], dtype=tf.float32)
    labels = tf.constant([2, 0])  # confidently wrong: log(p) would be log(0) = -inf
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = ops.softmax_cross_entropy(logits, labels)
    grad = tape.gradient(loss, logits)
    np.testing.assert_allclose(ops.softmax(logits).numpy(), [[1, 0, 0], [0, 0, 1]], atol=1e-30)
    assert loss.numpy() == pytest.approx(2000.0)
    np.testing.assert_allclose(grad.numpy(), [[0.5, 0, -0.5], [-0.5, 0, 0.5]], atol=1e-7)


# ------------------------------------------------------------------ dropout
def test_dropout_training_zeros_rate_and_scales_kept_units():
    rate, x = 0.3, tf.ones((200, 500))
    out = ops.dropout(x, rate, training=True, seed=7).numpy()
    assert np.mean(out == 0) == pytest.approx(rate, abs=0.01)
    np.testing.assert_allclose(out[out != 0], 1 / (1 - rate), rtol=1e-6)


def test_dropout_is_identity_in_inference_and_deterministic_with_seed():
    x = tf.constant(_rng(5).standard_normal((20, 30)), dtype=tf.float32)
    assert ops.dropout(x, 0.5, training=False) is not None
    np.testing.assert_array_equal(ops.dropout(x, 0.5, training=False).numpy(), x.numpy())
    np.testing.assert_array_equal(ops.dropout(x, 0.5, training=tf.constant(False), seed=1).numpy(), x.numpy())
    first = ops.dropout(x, 0.5, training=True, seed=(1, 2)).numpy()
    np.testing.assert_array_equal(first, ops.dropout(x, 0.5, training=True, seed=(1, 2)).numpy())
    assert not np.array_equal(first, ops.dropout(x, 0.5, training=True, seed=(1, 3)).numpy())


def test_dropout_gradient_uses_the_forward_mask():
    x = tf.constant(_rng(6).standard_normal((10, 40)) + 5.0)  # nonzero everywhere
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = ops.dropout(x, 0.4, training=True)  # unseeded: mask must still be shared
    grad = tape.gradient(out, x).numpy()
    kept = out.numpy() != 0
    np.testing.assert_allclose(grad[kept], 1 / 0.6, rtol=1e-12)
    assert np.all(grad[~kept] == 0)


def test_keep_prob_conversion_and_validation():
    assert ops.keep_prob_to_rate(0.75) == pytest.approx(0.25)
    assert ops.keep_prob_to_rate(1.0) == 0.0
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ConfigError, match="keep probability"):
            ops.keep_prob_to_rate(bad)
    with pytest.raises(ConfigError, match="DROP probability"):
        ops.dropout(tf.ones((2, 2)), 1.0, training=True)


# ------------------------------------------------------------------ batch norm / layer norm
def test_batch_norm_training_normalises_and_updates_running_stats():
    rng = _rng(7)
    x = 3 * rng.standard_normal((50, D)) + 2
    gamma, beta = np.ones(D), np.zeros(D)
    running_mean, running_var = rng.standard_normal(D), rng.random(D) + 0.5
    out, new_mean, new_var = ops.batch_norm(x, gamma, beta, running_mean, running_var, training=True, momentum=0.8)
    np.testing.assert_allclose(out.numpy().mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.numpy().std(axis=0), 1, rtol=1e-5)  # epsilon shrinks it a hair
    np.testing.assert_allclose(new_mean.numpy(), 0.8 * running_mean + 0.2 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(new_var.numpy(), 0.8 * running_var + 0.2 * x.var(axis=0), rtol=1e-12)


def test_batch_norm_inference_uses_running_stats():
    rng = _rng(8)
    x, gamma, beta = rng.standard_normal((N, D)), rng.standard_normal(D), rng.standard_normal(D)
    running_mean, running_var = rng.standard_normal(D), rng.random(D) + 0.5
    out, same_mean, same_var = ops.batch_norm(x, gamma, beta, running_mean, running_var, training=False, epsilon=1e-3)
    expected = gamma * (x - running_mean) / np.sqrt(running_var + 1e-3) + beta
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    np.testing.assert_array_equal(same_mean.numpy(), running_mean)
    np.testing.assert_array_equal(same_var.numpy(), running_var)


def test_layer_norm_matches_numpy():
    rng = _rng(9)
    x, gamma, beta = rng.standard_normal((N, D)), rng.standard_normal(D), rng.standard_normal(D)
    mean, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    np.testing.assert_allclose(
        ops.layer_norm(x, gamma, beta).numpy(), gamma * (x - mean) / np.sqrt(var + 1e-5) + beta, rtol=1e-12
    )


# ------------------------------------------------------------------ embedding
def test_embedding_backward_sums_repeated_ids():
    rng = _rng(10)
    ids = np.array([[2, 2, 5], [2, 0, 5]])
    table = tf.constant(rng.standard_normal((V, D)))
    upstream = rng.standard_normal((2, 3, D))
    with tf.GradientTape() as tape:
        tape.watch(table)
        out = ops.embedding_lookup(ids, table)
        value = tf.reduce_sum(out * upstream)
    expected = np.zeros((V, D))
    np.add.at(expected, ids.reshape(-1), upstream.reshape(-1, D))
    grad = tape.gradient(value, table)
    assert isinstance(grad, tf.Tensor)  # dense, not IndexedSlices
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-12)
    np.testing.assert_array_equal(out.numpy(), table.numpy()[ids])


# ------------------------------------------------------------------ execution modes and dtypes
def _float32_case(name):
    f, _, inputs, _ = CASES[name]
    return f, [v.astype(np.float32) if np.issubdtype(v.dtype, np.floating) else v for v in inputs]


def _value_and_grads(f, inputs):
    tensors = [tf.convert_to_tensor(v) for v in inputs]
    floats = [t for t in tensors if t.dtype.is_floating]
    with tf.GradientTape() as tape:
        tape.watch(floats)
        out = f(*tensors)
        value = tf.reduce_sum(out * out)  # a non-trivial upstream gradient
    return [out] + [tf.convert_to_tensor(g) for g in tape.gradient(value, floats) if g is not None]


@pytest.mark.parametrize("name", sorted(CASES))
def test_ops_agree_in_eager_tf_function_and_xla_float32(name):
    f, inputs = _float32_case(name)
    eager = _value_and_grads(f, inputs)
    for jit in (False, True):
        compiled = tf.function(lambda *v: _value_and_grads(f, v), jit_compile=jit)
        results = compiled(*inputs)
        assert len(results) == len(eager)
        for got, want in zip(results, eager):
            assert got.dtype == tf.float32
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_ops_keep_float16_dtypes_and_stay_close_to_float32(name):
    f, inputs = _float32_case(name)
    half = [v.astype(np.float16) if v.dtype == np.float32 else v for v in inputs]
    full_results, half_results = _value_and_grads(f, inputs), _value_and_grads(f, half)
    for full, h in zip(full_results, half_results):
        assert h.dtype == tf.float16
        assert np.all(np.isfinite(h.numpy()))
        np.testing.assert_allclose(h.numpy().astype(np.float32), full.numpy(), rtol=2e-2, atol=2e-2)


def test_bad_shapes_raise_config_error():
    with pytest.raises(ConfigError, match="flatten"):
        ops.affine(tf.ones((2, 3, 4)), tf.ones((4, 2)), tf.ones(2))
    with pytest.raises(ConfigError, match="labels"):
        ops.softmax_cross_entropy(tf.ones((2, 3)), tf.constant([[0], [1]]))
    with pytest.raises(ConfigError, match="integer labels"):
        ops.svm_loss(tf.ones((2, 3)), tf.ones((2,)))

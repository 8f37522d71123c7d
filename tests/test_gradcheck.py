"""The gradient checker itself: known derivatives, and it must flag a wrong backward pass."""

import numpy as np
import pytest
import tensorflow as tf

from tfnets.nn.gradcheck import (
    autodiff_gradient,
    check_gradients,
    format_report,
    max_errors,
    numeric_gradient,
    rel_error,
    worst_entry,
)


def test_rel_error_is_the_cs231n_elementwise_formula():
    assert rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert rel_error([1.0, 0.0], [3.0, 0.0]) == pytest.approx(0.5)  # |1-3| / (1+3); 0/0 counts as 0
    assert rel_error([[1e-3]], [[2e-3]]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        rel_error(np.ones(2), np.ones(3))


def test_numeric_gradient_matches_calculus():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    upstream = rng.standard_normal((3, 2))
    dx, dw = numeric_gradient(lambda a, b: tf.matmul(a, b), [x, w], upstream=upstream)
    np.testing.assert_allclose(dx, upstream @ w.T, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dw, x.T @ upstream, rtol=1e-7, atol=1e-9)
    (dcube,) = numeric_gradient(lambda a: tf.reduce_sum(a**3), [x])
    np.testing.assert_allclose(dcube, 3 * x**2, rtol=1e-7)


def test_integer_inputs_are_not_perturbed():
    labels = np.array([0, 2, 1])
    grads = numeric_gradient(lambda x, y: tf.gather(x, y, axis=1, batch_dims=1), [np.ones((3, 3)), labels])
    assert grads[1] is None
    np.testing.assert_allclose(grads[0], np.eye(3)[labels], atol=1e-9)
    assert autodiff_gradient(lambda x, y: tf.gather(x, y, axis=1, batch_dims=1), [np.ones((3, 3)), labels])[1] is None


@tf.custom_gradient
def _square_with_wrong_backward(x):
    def backward(dout):
        return dout * 2.2 * x  # should be 2 * x: a 10 % bug

    return x * x, backward


@tf.custom_gradient
def _square_with_right_backward(x):
    def backward(dout):
        return dout * 2 * x

    return x * x, backward


def test_checker_flags_a_wrong_backward_and_passes_a_right_one():
    x = np.random.default_rng(1).standard_normal((3, 4))
    plain = lambda v: v * v  # noqa: E731
    bad = check_gradients(_square_with_wrong_backward, [x], plain)
    good = check_gradients(_square_with_right_backward, [x], plain)
    assert bad["input_0"]["numeric"] > 1e-2 and bad["input_0"]["reference"] > 1e-2
    assert good["input_0"]["numeric"] < 1e-8 and good["input_0"]["reference"] < 1e-12


def test_report_names_wrt_and_formatting():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    f = lambda a, b: tf.matmul(a, b)  # noqa: E731
    report = check_gradients(f, [x, w], names=["x", "kernel"], wrt=[1])
    assert list(report) == ["kernel"] and report["kernel"]["reference"] is None
    numeric, reference = max_errors(report)
    assert numeric < 1e-8 and reference is None
    text = format_report(report, "matmul")
    assert text.startswith("matmul:") and "kernel" in text and "vs numeric" in text


def test_four_point_stencil_is_more_accurate_for_small_gradients():
    x = np.random.default_rng(3).standard_normal((2, 3))
    f = lambda v: 1e-3 * tf.reduce_sum(tf.sin(v))  # noqa: E731  gradient elements ~1e-3
    (two_point,) = numeric_gradient(f, [x])
    (four_point,) = numeric_gradient(f, [x], eps=1e-3, stencil=4)
    exact = 1e-3 * np.cos(x)
    assert rel_error(four_point, exact) < 1e-9
    assert rel_error(four_point, exact) < rel_error(two_point, exact)
    with pytest.raises(ValueError, match="stencil"):
        numeric_gradient(f, [x], stencil=3)


def test_kinks_are_reported_where_one_sided_slopes_disagree():
    # ReLU at exactly 0: slopes 0 and 1 on either side, so the central difference (0.5) is neither; the other
    # entries are smooth. The whole-input scale keeps smooth curvature (h * f'') far below the 1e-3 threshold.
    kinks = []
    numeric_gradient(lambda x: tf.nn.relu(x) + x**3, [np.array([[-1.0, 0.0, 2.0]])], eps=1e-5, kinks=kinks)
    assert [(position, tuple(map(int, index))) for position, index in kinks] == [(0, (0, 1))]
    with pytest.raises(ValueError):
        numeric_gradient(tf.nn.relu, [np.zeros(2)], stencil=4, kinks=[])


def test_worst_entry_and_a_scale_floor():
    error, index = worst_entry(np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert index == (1, 1) and error == pytest.approx(1 / 9)
    # A 1e-9 entry off by 100 % next to entries of size 1: counted fully with the default floor, not with a floor
    # at 1e-6 of the largest entry.
    a, b = np.array([1.0, 1e-9]), np.array([1.0, 2e-9])
    assert rel_error(a, b) == pytest.approx(1 / 3)
    assert rel_error(a, b, floor=1e-6) == pytest.approx(1e-3)  # |1e-9 - 2e-9| / 1e-6

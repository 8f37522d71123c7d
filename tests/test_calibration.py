"""Temperature scaling and the expected calibration error (`tfnets.nn.calibration`), in NumPy only.

The synthetic data have a known calibration: labels are drawn from softmax(z), so logits z are calibrated and
logits a*z are overconfident (a > 1) or underconfident (a < 1); the fitted temperature must find a.
"""

import numpy as np
import pytest

from tfnets.nn.calibration import (
    as_logits,
    calibration_summary,
    expected_calibration_error,
    fit_temperature,
    nll,
    softmax,
)


def synthetic(n=6000, classes=10, seed=0):
    """Calibrated logits z (N, C) and labels drawn from softmax(z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.0, size=(n, classes))
    p = softmax(z)
    labels = (p.cumsum(axis=1) > rng.uniform(size=(n, 1))).argmax(axis=1)
    return z, labels


@pytest.mark.parametrize("scale", [3.0, 0.5])
def test_the_fitted_temperature_undoes_a_known_over_or_underconfidence(scale):
    z, labels = synthetic()
    logits = scale * z
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(scale, rel=0.1)
    before = expected_calibration_error(softmax(logits), labels)
    after = expected_calibration_error(softmax(logits, temperature), labels)
    assert after < before / 3
    assert nll(logits, labels, temperature) < nll(logits, labels)
    # Only the confidences change: every row keeps its ranking, so accuracy is the same.
    assert np.array_equal(softmax(logits, temperature).argmax(1), logits.argmax(1))


def test_the_fit_is_the_minimum_of_the_nll():
    z, labels = synthetic(n=2000, seed=1)
    logits = 2.0 * z
    temperature = fit_temperature(logits, labels)
    best = nll(logits, labels, temperature)
    for factor in (0.97, 1.03):
        assert nll(logits, labels, temperature * factor) > best


def test_ece_by_hand():
    # Bin (14/15, 1]: confidences 0.95 and 0.95, one right -> |0.5 - 0.95| for 2 of 4 examples.
    # Bin (8/15, 9/15]: confidences 0.55 and 0.55, both right -> |1 - 0.55| for 2 of 4 examples.
    p = np.array([[0.95, 0.05], [0.95, 0.05], [0.45, 0.55], [0.55, 0.45]])
    labels = np.array([0, 1, 1, 0])
    assert expected_calibration_error(p, labels) == pytest.approx(0.5 * 0.45 + 0.5 * 0.45)
    # Perfect agreement of confidence and accuracy in every bin: zero.
    assert expected_calibration_error(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])) == 0.0


def test_outputs_of_every_export_kind_become_logits_of_the_same_probabilities():
    y = np.array([[-1.0], [-0.5], [0.0], [0.8], [1.0]])  # one tanh unit, saturated at both ends
    p = softmax(as_logits(y, "tanh"))
    np.testing.assert_allclose(p, np.hstack([(1 - y) / 2, (1 + y) / 2]), atol=1e-7)
    assert np.isfinite(as_logits(y, "tanh")).all()
    probabilities = np.array([[0.7, 0.3, 0.0], [0.2, 0.2, 0.6]], np.float32)
    np.testing.assert_allclose(softmax(as_logits(probabilities, "probabilities")), probabilities, atol=1e-7)
    with pytest.raises(ValueError, match="unknown output kind"):
        as_logits(y, "sigmoid")


def test_summary_reports_both_splits_before_and_after():
    z, labels = synthetic(n=4000, seed=2)
    valid, test = slice(0, 2000), slice(2000, 4000)
    summary = calibration_summary(3 * z[valid], labels[valid], 3 * z[test], labels[test])
    assert summary["temperature"] == pytest.approx(fit_temperature(3 * z[valid], labels[valid]))
    assert summary["valid_examples"] == summary["test_examples"] == 2000 and summary["ece_bins"] == 15
    assert summary["test_ece_after"] < summary["test_ece_before"]
    assert summary["test_nll_after"] < summary["test_nll_before"]
    assert summary["test_nll_before"] == pytest.approx(nll(3 * z[test], labels[test]))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="need logits"):
        fit_temperature(np.zeros((3, 2)), np.zeros(4, int))

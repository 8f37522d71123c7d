"""Temperature scaling and the expected calibration error, in NumPy (Guo et al. 2017, "On Calibration of Modern
Neural Networks").

A classifier's confidence (its top softmax probability) is calibrated when, of the examples it gives confidence
0.9, 90 % are right. Networks trained to a near-zero training loss are overconfident. Temperature scaling
divides the logits by one scalar T > 0 fitted on held-out data by minimising the negative log-likelihood:
T > 1 softens overconfident probabilities, T < 1 sharpens underconfident ones. Dividing by T keeps each row's
ranking, so the predicted class and the accuracy never change.

Every function takes logits `(N, C)` (float; any real values) and labels `(N,)` (class indices).
`as_logits` turns the other outputs an export may have (probabilities, one tanh unit) into logits whose
softmax is the probabilities those outputs stand for.
"""

import numpy as np

ECE_BINS = 15  # Guo et al.'s number of equal-width confidence bins
# The fitted temperature is searched in [1/100, 100] (log-spaced golden-section): a value at either end means
# the validation data say nothing useful (e.g. every example right with near-certainty).
T_RANGE = (1e-2, 1e2)
# A tanh output of exactly +-1 (saturated float32) would be an infinite logit; clipping keeps it finite.
TANH_LIMIT = 1 - 1e-7


def softmax(logits, temperature=1.0):
    """Row-wise softmax of `logits / temperature` (N, C) in float64, shifted by the row maximum so that it cannot
    overflow."""
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def as_logits(outputs, kind):
    """A model's raw outputs -> (N, C) float64 logits, for `kind` in `logits`, `probabilities`, `tanh`.

    `probabilities`: their logarithm (a zero becomes the smallest float32, so the log stays finite).
    `tanh` (a single unit y in [-1, 1] whose sign picks class 1): the two-class logits (-atanh y, atanh y), whose
    softmax is exactly ((1 - y) / 2, (1 + y) / 2), the probabilities such an export has always reported.
    """
    y = np.asarray(outputs, np.float64)
    if kind == "logits":
        return y
    if kind == "probabilities":
        return np.log(np.maximum(y, np.finfo(np.float32).tiny))
    if kind == "tanh":
        half = np.arctanh(np.clip(y.reshape(-1), -TANH_LIMIT, TANH_LIMIT))
        return np.stack([-half, half], axis=1)
    raise ValueError(f"unknown output kind {kind!r}; expected logits, probabilities or tanh")


def nll(logits, labels, temperature=1.0):
    """Mean negative log-likelihood of `labels` under softmax(logits / T), computed stably (log-sum-exp)."""
    z = np.asarray(logits, np.float64) / float(temperature)
    top = z.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(z - top).sum(axis=-1)) + top[:, 0]
    picked = z[np.arange(len(z)), np.asarray(labels, np.int64)]
    return float(np.mean(log_norm - picked))


def fit_temperature(logits, labels, tolerance=1e-4):
    """The T > 0 that minimises `nll(logits, labels, T)`; golden-section search over log T in `T_RANGE`.

    The NLL is convex in 1/T (a log-sum-exp of a linear function minus a linear function), so it has one
    minimum along log T too and the search finds it to within a factor `1 + tolerance`.
    """
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise ValueError(f"need logits (N, C) and N labels with N > 0, got {logits.shape} and {labels.shape}")
    low, high = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    ratio = (np.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = nll(logits, labels, np.exp(a)), nll(logits, labels, np.exp(b))
    while high - low > tolerance:
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll(logits, labels, np.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll(logits, labels, np.exp(b))
    return float(np.exp((low + high) / 2))


def expected_calibration_error(probabilities, labels, bins=ECE_BINS):
    """ECE: the top-class confidences in `bins` equal-width bins of (0, 1]; the mean over examples of
    |accuracy - mean confidence| of their bin (Guo et al.'s eq. 3). 0 is perfectly calibrated."""
    p = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels, np.int64).reshape(-1)
    confidence = p.max(axis=-1)
    correct = (p.argmax(axis=-1) == labels).astype(np.float64)
    # Bin k holds confidences in (k/bins, (k+1)/bins]; ceil puts a confidence on an edge in the lower bin.
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for k in range(bins):
        members = which == k
        if members.any():
            total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / len(p))


def calibration_summary(valid_logits, valid_labels, test_logits=None, test_labels=None, bins=ECE_BINS):
    """Fit T on the validation logits; return it with the NLL/ECE before (T = 1) and after, on both splits.

    Returns a JSON-ready dict: `temperature`, `fitted_on` ("validation"), `valid_examples`, `ece_bins`, and
    `valid_nll_before/after`, `valid_ece_before/after`, and the same for `test_*` when test data are given.
    """
    temperature = fit_temperature(valid_logits, valid_labels)
    summary = {
        "method": "temperature scaling",
        "temperature": temperature,
        "fitted_on": "validation",
        "valid_examples": int(len(valid_labels)),
        "ece_bins": int(bins),
    }
    splits = [("valid", valid_logits, valid_labels)]
    if test_logits is not None:
        splits.append(("test", test_logits, test_labels))
        summary["test_examples"] = int(len(test_labels))
    for name, logits, labels in splits:
        for when, t in (("before", 1.0), ("after", temperature)):
            summary[f"{name}_nll_{when}"] = nll(logits, labels, t)
            summary[f"{name}_ece_{when}"] = expected_calibration_error(softmax(logits, t), labels, bins)
    return summary

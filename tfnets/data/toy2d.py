"""TensorFlow-Playground 2-D classification sets: circle, XOR, Gaussian, spiral.

Port of `dataset.ts` of tensorflow/playground (radius 5 plane, points in about [-6, 6]^2). Playground's
labels +1/-1 become 1/0 here. `noise` is Playground's slider value divided by 100 (slider 0..50 -> 0..0.5).
As in Playground, circle and XOR labels are computed from a noise-perturbed copy of each point while the
clean point is stored, so noise shows up as label flips near the boundary; Gaussian noise widens the blobs
(variance 0.5..4) and spiral noise jitters the points.
"""

import numpy as np

from tfnets.errors import ConfigError

NAMES = ("circle", "xor", "gaussian", "spiral")
RADIUS = 5.0


def make_toy_dataset(name, n=500, noise=0.0, seed=0):
    """Generate `n` points of a Playground dataset.

    Returns:
        x: float32 (n, 2) points; y: int64 (n,) labels in {0, 1}. Circle, Gaussian and spiral give n // 2
        points of each class first positive (1) then negative (0) -- shuffle before mini-batching.
    """
    if name not in NAMES:
        raise ConfigError(f"unknown toy dataset {name!r}; choose one of {', '.join(NAMES)}")
    if n < 2:
        raise ConfigError(f"n={n}: a toy dataset needs at least 2 points")
    if not 0.0 <= noise <= 1.0:
        raise ConfigError(f"noise={noise}: use Playground's slider value / 100, between 0 and 0.5")
    rng = np.random.default_rng(seed)
    x, positive = {"circle": _circle, "xor": _xor, "gaussian": _gaussian, "spiral": _spiral}[name](rng, n, noise)
    return x.astype(np.float32), positive.astype(np.int64)


def _circle(rng, n, noise):
    """Inner disc (radius 0..0.5R) is class 1, ring 0.7R..R is class 0; labels from the noisy point."""
    half = n // 2
    radius = np.concatenate([rng.uniform(0, RADIUS * 0.5, half), rng.uniform(RADIUS * 0.7, RADIUS, n - half)])
    angle = rng.uniform(0, 2 * np.pi, n)
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    noisy = x + rng.uniform(-RADIUS, RADIUS, (n, 2)) * noise
    return x, np.hypot(noisy[:, 0], noisy[:, 1]) < RADIUS * 0.5


def _xor(rng, n, noise):
    """Uniform points in [-5, 5]^2 pushed 0.3 away from the axes; class 1 where x*y >= 0 (noisy point)."""
    x = rng.uniform(-5, 5, (n, 2))
    x += np.where(x > 0, 0.3, -0.3)
    noisy = x + rng.uniform(-5, 5, (n, 2)) * noise
    return x, noisy[:, 0] * noisy[:, 1] >= 0


def _gaussian(rng, n, noise):
    """Two isotropic blobs at (2, 2) (class 1) and (-2, -2) (class 0), variance 0.5 + 7 * noise."""
    variance = 0.5 + (4.0 - 0.5) * noise / 0.5  # d3.scale.linear().domain([0, .5]).range([0.5, 4])
    half = n // 2
    centres = np.concatenate([np.full((half, 2), 2.0), np.full((n - half, 2), -2.0)])
    x = centres + rng.normal(0.0, np.sqrt(variance), (n, 2))
    return x, np.arange(n) < half


def _spiral(rng, n, noise):
    """Two interleaved spirals (1.75 turns, radius 0..5), the second rotated by pi; uniform jitter * noise."""
    half = n // 2
    points, labels = [], []
    for count, delta, label in ((half, 0.0, True), (n - half, np.pi, False)):
        i = np.arange(count)
        r = i / count * RADIUS
        t = 1.75 * i / count * 2 * np.pi + delta
        jitter = rng.uniform(-1, 1, (count, 2)) * noise
        points.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1) + jitter)
        labels.append(np.full(count, label))
    return np.concatenate(points), np.concatenate(labels)


def train_test_split(x, y, test_fraction=0.5, seed=0):
    """Shuffle with `seed` and split; Playground's default "ratio of training to test data" is 50 %.

    Returns (x_train, y_train, x_test, y_test); the test size is round(n * test_fraction).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction={test_fraction} must be between 0 and 1")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]

"""Playground toy sets, `Splits.subset` and the `tf.data` pipeline helper."""

import numpy as np
import pytest

from tfnets.data import Splits, make_toy_dataset, train_test_split
from tfnets.data.splits import split_by_fractions
from tfnets.errors import ConfigError


@pytest.mark.parametrize("name", ["circle", "xor", "gaussian", "spiral"])
def test_toy_shapes_balance_and_seed(name):
    x, y = make_toy_dataset(name, n=400, noise=0.2, seed=3)
    assert x.shape == (400, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1}
    assert 0.35 < y.mean() < 0.65
    x2, y2 = make_toy_dataset(name, n=400, noise=0.2, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(x, make_toy_dataset(name, n=400, noise=0.2, seed=4)[0])


def test_toy_geometry_without_noise():
    x, y = make_toy_dataset("circle", n=1000, seed=0)
    r = np.hypot(x[:, 0], x[:, 1])
    assert np.all(r[y == 1] <= 2.5) and np.all((r[y == 0] >= 3.5) & (r[y == 0] <= 5.0))
    x, y = make_toy_dataset("xor", n=1000, seed=0)
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] >= 0).astype(int))
    assert np.all(np.abs(x) >= 0.3) and np.all(np.abs(x) <= 5.3)
    x, y = make_toy_dataset("gaussian", n=20000, seed=0)
    np.testing.assert_allclose(x[y == 1].mean(axis=0), [2, 2], atol=0.05)
    np.testing.assert_allclose(x[y == 0].mean(axis=0), [-2, -2], atol=0.05)
    np.testing.assert_allclose(x[y == 1].var(axis=0), [0.5, 0.5], rtol=0.05)  # Playground variance at noise 0
    x, y = make_toy_dataset("spiral", n=1000, seed=0)
    np.testing.assert_allclose(x[y == 0], -x[y == 1], atol=1e-5)  # second arm = first rotated by pi
    assert np.hypot(x[:, 0], x[:, 1]).max() < 5.0


def test_toy_noise_flips_labels_near_the_boundary():
    x, y = make_toy_dataset("xor", n=2000, noise=0.5, seed=0)
    disagree = np.mean(y != (x[:, 0] * x[:, 1] >= 0))
    assert 0.05 < disagree < 0.5
    with pytest.raises(ConfigError):
        make_toy_dataset("moons")


def test_train_test_split():
    x, y = np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10)
    x_train, y_train, x_test, y_test = train_test_split(x, y, test_fraction=0.3, seed=1)
    assert len(y_test) == 3 and len(y_train) == 7
    assert sorted(np.concatenate([y_train, y_test]).tolist()) == list(range(10))
    np.testing.assert_array_equal(x_train[:, 0] / 2, y_train)  # rows stay paired


def _splits(n=100):
    x = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    y = np.arange(n) % 10
    return Splits(x, y, x[:30] + 1000, y[:30], x[:40] + 2000, y[:40], class_names=tuple("abcdefghij"))


def test_subset_is_seeded_and_keeps_pairs():
    splits = _splits()
    small = splits.subset(12, 5, seed=7)
    assert small.sizes() == {"train": 12, "valid": 5, "test": 5}
    np.testing.assert_array_equal(small.x_train[:, 0].astype(int) % 10, small.y_train)
    assert len(set(small.x_train[:, 0].tolist())) == 12  # without replacement
    np.testing.assert_array_equal(small.x_test, splits.subset(12, 5, seed=7).x_test)
    assert not np.array_equal(small.x_train, splits.subset(12, 5, seed=8).x_train)
    assert splits.subset(500).sizes() == splits.sizes()  # larger than available: kept whole


def test_split_by_fractions():
    assert split_by_fractions(18724, 10000 / 18724, 6000 / 18724) == (10000, 6000, 2724)
    assert split_by_fractions(10, 0.8, 0.1) == (8, 1, 1)

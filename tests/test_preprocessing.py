"""tfnets.nn.preprocessing: ZCA whitening against its defining properties, and the Keras layer against the NumPy map."""

import keras
import numpy as np
import pytest

from tfnets.nn.preprocessing import ZCAWhitening, fit_zca


def correlated_images(n=4000, shape=(4, 4, 2), seed=0):
    """Pixels in [0, 255] with strong correlations (a random mixing of independent sources) and a non-zero mean."""
    rng = np.random.default_rng(seed)
    dim = int(np.prod(shape))
    mixing = rng.normal(size=(dim, dim)) * np.linspace(0.2, 3.0, dim)
    x = 120 + 8 * rng.normal(size=(n, dim)) @ mixing.T
    return x.reshape(n, *shape).astype(np.float32)


def test_tiny_epsilon_whitens_the_training_set_and_the_map_is_symmetric():
    x = correlated_images()
    zca = fit_zca(x, epsilon=1e-9)
    y = zca.apply(x).reshape(len(x), -1).astype(np.float64)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.cov(y, rowvar=False, bias=True), np.eye(y.shape[1]), atol=1e-4)
    # ZCA (unlike PCA whitening) is the symmetric whitening matrix: the one closest to the identity.
    np.testing.assert_allclose(zca.matrix, zca.matrix.T, atol=1e-12)


def test_epsilon_shrinks_each_direction_to_s_over_s_plus_epsilon_and_the_scale_gives_unit_std():
    x = correlated_images(seed=1)
    epsilon, input_scale = 0.01, 1 / 255
    zca = fit_zca(x, epsilon=epsilon, input_scale=input_scale)
    flat = x.reshape(len(x), -1).astype(np.float64) * input_scale
    s, u = np.linalg.eigh(np.cov(flat, rowvar=False, bias=True))
    y = zca.apply(x).reshape(len(x), -1).astype(np.float64)
    variances = np.var(y @ u, axis=0) / zca.output_scale**2  # variance along each principal direction
    np.testing.assert_allclose(variances, s / (s + epsilon), rtol=1e-4, atol=1e-6)
    assert float(np.std(y)) == pytest.approx(1.0, rel=1e-4)


def test_fewer_images_than_pixels_give_the_map_of_the_full_eigendecomposition():
    # N < D: the map is built from an SVD of the images instead of the D x D covariance's eigendecomposition; the
    # directions the images do not span (variance 0) get 1 / sqrt(epsilon) either way.
    x = correlated_images(n=20, shape=(4, 4, 2), seed=3)
    flat = x.reshape(len(x), -1).astype(np.float64) / 255
    s, u = np.linalg.eigh(np.cov(flat, rowvar=False, bias=True))
    s = np.clip(s, 0, None)
    expected = (u * (1 / 255 / np.sqrt(s + 0.1))) @ u.T
    zca = fit_zca(x, epsilon=0.1, input_scale=1 / 255)
    np.testing.assert_allclose(zca.matrix, expected, rtol=1e-9, atol=1e-12)
    assert zca.output_scale == pytest.approx(1 / np.sqrt(np.mean(s / (s + 0.1))), rel=1e-9)


def test_layer_matches_the_numpy_map_and_survives_a_keras_save(tmp_path):
    x = correlated_images(n=500, seed=2)
    zca = fit_zca(x[:400], epsilon=0.1, input_scale=1 / 255)
    model = keras.Sequential([keras.Input(x.shape[1:]), zca.layer()])
    expected = zca.apply(x[400:]).reshape(100, -1)
    np.testing.assert_allclose(model(x[400:]).numpy(), expected, rtol=1e-4, atol=1e-4)
    model.save(tmp_path / "zca.keras")
    reloaded = keras.models.load_model(tmp_path / "zca.keras")
    assert isinstance(reloaded.layers[0], ZCAWhitening) and not reloaded.trainable_weights
    np.testing.assert_allclose(reloaded(x[400:]).numpy(), model(x[400:]).numpy(), rtol=0, atol=0)


def test_epsilon_must_be_positive():
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        fit_zca(correlated_images(n=10), epsilon=0)

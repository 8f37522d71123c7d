"""ZCA whitening: a fixed linear map that decorrelates pixels, fitted once on the training images.

Fully-connected nets see an image as 3,072 unrelated numbers; most of their variance is the smooth, strongly
correlated low-frequency content of natural images. ZCA whitening (Bell & Sejnowski 1997; Krizhevsky 2009, ch. 2)
rescales every principal direction of the training pixels to unit variance and rotates back to pixel space,

    y = (x - mean) @ W,    W = U diag(1 / sqrt(s + epsilon)) U^T,    cov(x) = U diag(s) U^T,

so the result still looks like an image (edges, not blobs: flips and translations stay meaningful augmentations),
and `epsilon` keeps the noise-dominated directions (s << epsilon) from being blown up.

`fit_zca` computes the map from images; `ZCAWhitening` is the Keras layer that applies it inside an exported
model, so that `apps.predict` can feed raw pixels.
"""

import dataclasses

import keras
import numpy as np
from keras import ops


@dataclasses.dataclass(frozen=True)
class ZCA:
    """A fitted whitening map on flat inputs of size D: `apply(x) = ((x - mean) @ matrix) * output_scale`."""

    mean: np.ndarray  # (D,)
    matrix: np.ndarray  # (D, D), symmetric
    output_scale: float  # makes the whitened training set's overall std 1

    def apply(self, x, chunk=4096):
        """x (N, ...) with prod(...) = D -> float32 array of x's shape, whitened."""
        x = np.asarray(x)
        flat = x.reshape(len(x), -1)
        out = np.empty(flat.shape, np.float32)
        for start in range(0, len(flat), chunk):  # chunks: a float64 copy of all of CIFAR's 49,000 images is 1.2 GB
            block = flat[start : start + chunk].astype(np.float64) - self.mean
            out[start : start + chunk] = (block @ self.matrix) * self.output_scale
        return out.reshape(x.shape)

    def layer(self, name="zca_whitening"):
        return ZCAWhitening(self.mean, self.matrix, self.output_scale, name=name)


def fit_zca(x, epsilon=0.1, input_scale=1.0, chunk=4096):
    """Fit ZCA on training images x (N, ...) (D = prod(...) features per image).

    `epsilon` is in units of `x * input_scale` (e.g. `input_scale=1/255` makes it relative to pixels in [0, 1],
    where 0.1 is a common choice); the returned map takes x in its original units. Costs one D x D covariance and
    one symmetric eigendecomposition (seconds for D = 3,072), or, with fewer images than features (N < D), one
    N x D singular value decomposition: the covariance then has rank < N, and every direction outside the images'
    span has variance 0 (factor 1 / sqrt(epsilon)).
    """
    if epsilon <= 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    flat = np.asarray(x).reshape(len(x), -1)
    n, dim = flat.shape
    mean = flat.mean(axis=0, dtype=np.float64)
    if n < dim:
        _, singular, directions = np.linalg.svd(flat.astype(np.float64) - mean, full_matrices=False)
        eigenvalues = singular**2 * input_scale**2 / n  # (n,), the only non-zero ones
        factors = input_scale / np.sqrt(eigenvalues + epsilon)
        null_factor = input_scale / np.sqrt(epsilon)
        # U diag(f) U^T over all D directions = null_factor * I + U_r diag(f_r - null_factor) U_r^T.
        matrix = (directions.T * (factors - null_factor)) @ directions
        matrix[np.diag_indices(dim)] += null_factor
    else:
        cov = np.zeros((dim, dim))
        for start in range(0, n, chunk):
            block = flat[start : start + chunk].astype(np.float64) - mean
            cov += block.T @ block
        cov *= input_scale**2 / n
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        eigenvalues = np.clip(eigenvalues, 0.0, None)  # round-off can make the null directions slightly negative
        matrix = (eigenvectors * (input_scale / np.sqrt(eigenvalues + epsilon))) @ eigenvectors.T
    # Variance of the whitened training data along eigenvector i is s_i / (s_i + epsilon); their mean over the D
    # directions (zero for the null ones) is the whitened data's overall variance, which the output scale brings to 1.
    whitened_variance = float(np.sum(eigenvalues / (eigenvalues + epsilon)) / dim)
    return ZCA(mean=mean, matrix=matrix, output_scale=1.0 / np.sqrt(whitened_variance))


@keras.saving.register_keras_serializable(package="tfnets")
class ZCAWhitening(keras.layers.Layer):
    """Applies a fitted ZCA map: inputs (N, ...) of D values each -> outputs (N, D), float32.

    The mean (D,) and matrix (D, D) are non-trainable weights, so they are saved with the model (`.keras` and
    SavedModel) rather than in the config.
    """

    def __init__(self, mean=None, matrix=None, output_scale=1.0, dim=None, **kwargs):
        super().__init__(**kwargs)
        if mean is not None:
            dim = int(np.asarray(mean).size)
        if dim is None:
            raise ValueError("ZCAWhitening needs a fitted mean/matrix, or dim when loading")
        self.dim, self.output_scale = int(dim), float(output_scale)
        self._initial = (mean, matrix)

    def build(self, input_shape):
        mean, matrix = self._initial
        self.mean = self.add_weight(
            name="mean",
            shape=(self.dim,),
            trainable=False,
            initializer="zeros" if mean is None else keras.initializers.Constant(np.asarray(mean, np.float32)),
        )
        self.matrix = self.add_weight(
            name="matrix",
            shape=(self.dim, self.dim),
            trainable=False,
            initializer="identity" if matrix is None else keras.initializers.Constant(np.asarray(matrix, np.float32)),
        )
        self._initial = (None, None)  # do not keep a second copy of a 36 MB matrix

    def call(self, inputs):
        flat = ops.reshape(ops.cast(inputs, "float32"), (-1, self.dim))
        return ops.matmul(flat - self.mean, self.matrix) * self.output_scale

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "output_scale": self.output_scale}

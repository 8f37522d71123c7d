"""Manual Keras layers and losses: gradient checks vs numeric and vs Keras's own layers (float64),
a whole 2-hidden-layer model vs a Keras Dense twin, fit in graph mode / XLA / mixed precision,
initializers and regularizers, `.keras` save/reload and SavedModel export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnets.errors import ConfigError
from tfnets.nn import layers as L
from tfnets.nn import losses
from tfnets.nn.gradcheck import check_gradients, rel_error

NUMERIC_TOL = 1e-7
AUTODIFF_TOL = 1e-10
NUMERIC = dict(eps=1e-3, stencil=4)  # accurate to ~1e-12 absolute; see tests/test_ops.py


def _stateless(layer, non_trainable=(), **call_kwargs):
    """f(x, *trainable_weights) -> layer output, so weights can be gradient-checked as inputs."""
    return lambda x, *weights: layer.stateless_call(list(weights), list(non_trainable), x, **call_kwargs)[0]


def _assert_report(report):
    for name, errors in report.items():
        assert errors["numeric"] <= NUMERIC_TOL, (name, errors)
        assert errors["reference"] is None or errors["reference"] <= AUTODIFF_TOL, (name, errors)


# ------------------------------------------------------------------ per-layer gradient checks
@pytest.mark.parametrize("activation", [None, "relu", "tanh", "sigmoid"])
def test_manual_dense_gradients_match_keras_dense(activation):
    rng = np.random.default_rng(0)
    manual = L.ManualDense(3, activation=activation, dtype="float64")
    twin = keras.layers.Dense(3, activation=activation or "linear", dtype="float64")
    manual.build((4, 5))
    twin.build((4, 5))
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    if activation == "relu":  # +-2 * eps moves a pre-activation by < 0.02: stay clear of the kink
        assert np.min(np.abs(x @ w + b)) > 0.05, "pick another seed: a pre-activation is at the kink"
    report = check_gradients(_stateless(manual), [x, w, b], _stateless(twin), names=["x", "kernel", "bias"], **NUMERIC)
    _assert_report(report)


def test_manual_dense_without_bias():
    rng = np.random.default_rng(1)
    layer = L.ManualDense(2, use_bias=False, dtype="float64")
    layer.build((3, 4))
    assert [v.name for v in layer.trainable_variables] == ["kernel"]
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    _assert_report(check_gradients(_stateless(layer), [x, w], lambda x, w: tf.matmul(x, w), **NUMERIC))


def test_manual_embedding_gradients_match_keras_embedding():
    rng = np.random.default_rng(2)
    manual, twin = L.ManualEmbedding(6, 4, dtype="float64"), keras.layers.Embedding(6, 4, dtype="float64")
    manual.build((2, 3))
    twin.build((2, 3))
    ids, table = np.array([[1, 5, 1], [0, 1, 3]]), rng.standard_normal((6, 4))
    report = check_gradients(
        lambda t: manual.stateless_call([t], [], ids)[0],
        [table],
        lambda t: twin.stateless_call([t], [], ids)[0],
        names=["embeddings"],
        **NUMERIC,
    )
    _assert_report(report)


def test_manual_batch_norm_gradients_and_moving_stats_match_keras():
    rng = np.random.default_rng(3)
    manual = L.ManualBatchNormalization(momentum=0.8, epsilon=1e-3, dtype="float64")
    twin = keras.layers.BatchNormalization(momentum=0.8, epsilon=1e-3, dtype="float64")
    manual.build((6, 4))
    twin.build((6, 4))
    stats = [rng.standard_normal(4), rng.random(4) + 0.5]
    x, gamma, beta = 2 * rng.standard_normal((6, 4)) + 1, rng.standard_normal(4), rng.standard_normal(4)
    for training in (True, False):
        report = check_gradients(
            _stateless(manual, stats, training=training),
            [x, gamma, beta],
            _stateless(twin, stats, training=training),
            names=["x", "gamma", "beta"],
            **NUMERIC,
        )
        _assert_report(report)
    _, manual_stats = manual.stateless_call([gamma, beta], stats, x, training=True)
    _, keras_stats = twin.stateless_call([gamma, beta], stats, x, training=True)
    for got, want in zip(manual_stats, keras_stats):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


def test_manual_batch_norm_updates_moving_stats_in_training_and_uses_them_in_inference():
    rng = np.random.default_rng(4)
    layer = L.ManualBatchNormalization(momentum=0.9)
    x = (3 * rng.standard_normal((32, 5)) + 2).astype("float32")
    layer(x, training=False)  # builds; inference must not touch the statistics
    np.testing.assert_array_equal(layer.moving_mean.numpy(), 0)
    layer(x, training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * x.var(axis=0), rtol=1e-5)
    expected = (x - layer.moving_mean.numpy()) / np.sqrt(layer.moving_variance.numpy() + 1e-5)
    np.testing.assert_allclose(layer(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_manual_layer_norm_gradients_match_keras():
    rng = np.random.default_rng(5)
    manual = L.ManualLayerNormalization(epsilon=1e-3, dtype="float64")
    twin = keras.layers.LayerNormalization(epsilon=1e-3, dtype="float64")
    manual.build((3, 2, 4))
    twin.build((3, 2, 4))
    x, gamma, beta = rng.standard_normal((3, 2, 4)), rng.standard_normal(4), rng.standard_normal(4)
    report = check_gradients(
        _stateless(manual), [x, gamma, beta], _stateless(twin), names=["x", "gamma", "beta"], **NUMERIC
    )
    _assert_report(report)


def test_manual_dropout_layer():
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((40, 50)) + 10).astype("float32")
    layer = L.ManualDropout.from_keep_prob(0.75, seed=3)
    assert layer.rate == pytest.approx(0.25)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    out = layer(x, training=True).numpy()
    assert np.mean(out == 0) == pytest.approx(0.25, abs=0.04)
    np.testing.assert_allclose(out[out != 0], x[out != 0] / 0.75, rtol=1e-6)
    # Same seed, fresh layer: same sequence of masks; successive calls draw new masks.
    again = L.ManualDropout(0.25, seed=3)
    np.testing.assert_array_equal(again(x, training=True).numpy(), out)
    assert not np.array_equal(again(x, training=True).numpy(), out)
    with pytest.raises(ConfigError):
        L.ManualDropout(1.0)
    # Gradient check with a fixed mask: a fixed stateless seed through the op.
    from tfnets.nn import ops

    x64 = rng.standard_normal((4, 5))
    f = lambda v: ops.dropout(v, 0.5, training=True, seed=11)  # noqa: E731
    mask = (f(tf.ones((4, 5), tf.float64)).numpy() != 0) * 2.0
    _assert_report(check_gradients(f, [x64], lambda v: v * mask, **NUMERIC))


# ------------------------------------------------------------------ losses
def test_softmax_cross_entropy_loss_matches_keras_for_all_label_forms():
    rng = np.random.default_rng(7)
    logits, labels = rng.standard_normal((8, 5)).astype("float32"), rng.integers(0, 5, 8)
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits).numpy()
    loss = losses.SoftmaxCrossEntropy()
    for y in (labels, labels[:, None], np.eye(5, dtype="float32")[labels]):
        assert loss(y, logits).numpy() == pytest.approx(expected, rel=1e-6)
    probs = tf.nn.softmax(logits).numpy()
    assert losses.SoftmaxCrossEntropy(from_logits=False)(labels, probs).numpy() == pytest.approx(expected, rel=1e-5)
    per_example = losses.SoftmaxCrossEntropy(reduction=None)(labels, logits)
    assert per_example.shape == (8,)
    weights = rng.random(8)
    weighted = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits, sample_weight=weights)
    assert loss(labels, logits, sample_weight=weights).numpy() == pytest.approx(weighted.numpy(), rel=1e-6)


def test_mean_squared_error_loss_matches_keras():
    rng = np.random.default_rng(8)
    pred, target = rng.standard_normal((6, 3)).astype("float32"), rng.standard_normal((6, 3)).astype("float32")
    assert losses.MeanSquaredError()(target, pred).numpy() == pytest.approx(
        keras.losses.MeanSquaredError()(target, pred).numpy(), rel=1e-6
    )
    assert losses.MeanSquaredError(reduction=None)(target, pred).shape == (6,)
    # (N,) targets against (N, 1) predictions
    assert losses.MeanSquaredError()(target[:, 0], pred[:, :1]).numpy() == pytest.approx(
        np.mean((target[:, 0] - pred[:, 0]) ** 2), rel=1e-6
    )


# ------------------------------------------------------------------ whole model vs Keras twin
def _two_hidden_layer_models(dtype="float64"):
    keras.utils.set_random_seed(0)
    manual = keras.Sequential(
        [
            keras.Input((6,), dtype=dtype),
            L.ManualDense(5, activation="relu", dtype=dtype),
            L.ManualDense(4, activation="tanh", dtype=dtype),
            L.ManualDense(3, dtype=dtype),
        ]
    )
    twin = keras.Sequential(
        [
            keras.Input((6,), dtype=dtype),
            keras.layers.Dense(5, activation="relu", dtype=dtype),
            keras.layers.Dense(4, activation="tanh", dtype=dtype),
            keras.layers.Dense(3, dtype=dtype),
        ]
    )
    twin.set_weights(manual.get_weights())
    return manual, twin


def test_two_hidden_layer_model_gradients_match_keras_dense_twin_and_numeric():
    manual, twin = _two_hidden_layer_models()
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((5, 6)), rng.integers(0, 3, 5)
    first_pre_activation = x @ manual.get_weights()[0] + manual.get_weights()[1]
    # The 4-point stencil below moves inputs by up to 2 * eps = 2e-3: stay clear of the ReLU kink.
    assert np.min(np.abs(first_pre_activation)) > 0.05

    # Keras losses compute in float32 unless told otherwise.
    manual_loss = losses.SoftmaxCrossEntropy(dtype="float64")
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")

    def model_loss(model, loss_fn):
        return lambda x, *weights: loss_fn(y, model.stateless_call(list(weights), [], x)[0])

    weights = manual.get_weights()
    names = ["x"] + [f"{v.path}" for v in manual.trainable_variables]
    # Mean-over-batch losses have gradient elements ~1e-4, where the 2-point formula's ~1e-10
    # round-off alone is ~1e-6 relative; the 4-point formula with h = 1e-3 measures them to ~1e-10.
    report = check_gradients(
        model_loss(manual, manual_loss), [x] + weights, model_loss(twin, keras_loss), names=names, **NUMERIC
    )
    assert len(report) == 7
    _assert_report(report)
    np.testing.assert_allclose(manual(x).numpy(), twin(x).numpy(), rtol=1e-12)


# ------------------------------------------------------------------ training
def _blobs(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 6)).astype("float32") + 3 * np.eye(3, 6, dtype="float32")[y]
    return x, y


def _small_model(dropout=True):
    keras.utils.set_random_seed(1)
    layers_ = [
        keras.Input((6,)),
        L.ManualDense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-4)),
        L.ManualBatchNormalization(),
        L.ManualLayerNormalization(),
    ]
    if dropout:
        layers_.append(L.ManualDropout(0.2, seed=2))
    layers_.append(L.ManualDense(3))
    return keras.Sequential(layers_)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_learns_in_graph_mode_and_under_xla(jit_compile):
    x, y = _blobs()
    model = _small_model()
    model.compile(
        keras.optimizers.Adam(0.02), losses.SoftmaxCrossEntropy(), metrics=["accuracy"], jit_compile=jit_compile
    )
    history = model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.8
    assert np.all(np.isfinite(model.predict(x, verbose=0)))


def test_embedding_model_fits_with_mse_under_xla():
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 10, (64, 4))
    target = rng.standard_normal((10, 2)).astype("float32")[ids].mean(axis=1)
    model = keras.Sequential(
        [keras.Input((4,), dtype="int32"), L.ManualEmbedding(10, 2), keras.layers.GlobalAveragePooling1D()]
    )
    model.compile(keras.optimizers.Adam(0.1), losses.MeanSquaredError(), jit_compile=True)
    history = model.fit(ids, target, batch_size=16, epochs=10, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]


@pytest.fixture
def mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_fit_under_mixed_precision(mixed_precision):
    x, y = _blobs(seed=4)
    model = _small_model()
    model.compile(keras.optimizers.Adam(0.02), losses.SoftmaxCrossEntropy())
    history = model.fit(x, y, batch_size=32, epochs=5, verbose=0)
    assert model(x[:2]).dtype == "float16"
    assert all(v.dtype == "float32" for v in model.weights)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < history.history["loss"][0]

    ids = np.random.default_rng(5).integers(0, 10, (32, 4))
    embedder = keras.Sequential(
        [keras.Input((4,), dtype="int32"), L.ManualEmbedding(10, 3), keras.layers.Flatten(), L.ManualDense(1)]
    )
    embedder.compile(keras.optimizers.SGD(0.05), losses.MeanSquaredError())
    before = embedder.layers[0].embeddings.numpy().copy()
    embedder.fit(ids, np.ones((32, 1), "float32"), epochs=1, batch_size=8, verbose=0)
    assert embedder(ids[:2]).dtype == "float16"
    assert embedder.layers[0].embeddings.dtype == "float32"
    assert not np.allclose(embedder.layers[0].embeddings.numpy(), before)


# ------------------------------------------------------------------ initializers, regularizers, config
def test_initializers_and_regularizers_are_accepted():
    layer = L.ManualDense(
        3,
        kernel_initializer=keras.initializers.Constant(0.5),
        bias_initializer="ones",
        kernel_regularizer=keras.regularizers.L2(0.1),
        bias_regularizer="l1",
    )
    model = keras.Sequential([keras.Input((4,)), layer])
    np.testing.assert_array_equal(layer.kernel.numpy(), 0.5)
    np.testing.assert_array_equal(layer.bias.numpy(), 1.0)
    reg = sorted(float(v) for v in model.losses)
    assert reg == pytest.approx(sorted([0.1 * 12 * 0.25, 0.01 * 3]))  # l1 default factor 0.01

    emb = L.ManualEmbedding(5, 2, embeddings_initializer="zeros", embeddings_regularizer=keras.regularizers.L2(1.0))
    emb_model = keras.Sequential([keras.Input((3,), dtype="int32"), emb])
    assert float(emb_model.losses[0]) == 0.0
    norm = L.ManualLayerNormalization(gamma_regularizer=keras.regularizers.L2(1.0))
    keras.Sequential([keras.Input((4,)), norm])
    assert float(norm.losses[0]) == pytest.approx(4.0)  # gamma initialised to ones


@pytest.mark.parametrize(
    "layer",
    [
        L.ManualDense(3, activation="tanh", kernel_regularizer="l2", use_bias=False),
        L.ManualEmbedding(7, 2, embeddings_initializer="he_normal"),
        L.ManualDropout(0.3, seed=5),
        L.ManualBatchNormalization(momentum=0.7, epsilon=1e-3),
        L.ManualLayerNormalization(epsilon=1e-4),
        losses.SoftmaxCrossEntropy(from_logits=False),
        losses.MeanSquaredError(),
    ],
    ids=lambda obj: type(obj).__name__,
)
def test_get_config_round_trips_through_keras_serialization(layer):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()


def test_unknown_activation_is_a_config_error():
    with pytest.raises(ConfigError, match="activation"):
        L.ManualDense(3, activation="gelu")


# ------------------------------------------------------------------ save / export
def test_keras_save_reload_and_saved_model_export_give_identical_outputs(tmp_path):
    x, y = _blobs(n=32, seed=5)
    model = _small_model()
    model.compile("adam", losses.SoftmaxCrossEntropy())
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    expected = model.predict(x, verbose=0)

    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(reloaded.layers[0], L.ManualDense)
    assert isinstance(reloaded.loss, losses.SoftmaxCrossEntropy)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), expected)

    model.export(tmp_path / "exported", verbose=False)
    serving = tf.saved_model.load(str(tmp_path / "exported")).signatures["serving_default"]
    served = serving(tf.constant(x))["output_0"].numpy()
    assert rel_error(served, expected) < 1e-4 and np.max(np.abs(served - expected)) < 1e-5

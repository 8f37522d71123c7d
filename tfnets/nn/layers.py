"""Keras 3 layers whose backward passes are the hand-written ones in `tfnets.nn.ops`.

They behave like their Keras namesakes inside `model.fit` (graph mode and `jit_compile=True`),
accept Keras initializers and regularizers, work under mixed precision, and serialise
(`get_config`, registered under the "tfnets" package): import `tfnets.nn.layers` before
`keras.models.load_model` (or use `tfnets.load_model`, which does that).

Weights are passed into the ops as tensors (`variable.value`), never as `keras.Variable`s: a
`keras.Variable` is not a `tf.Variable`, and reading `.value` inside `call` also applies the mixed
precision autocast.
"""

import math

import keras
import tensorflow as tf

from tfnets.errors import ConfigError
from tfnets.nn import ops

_ACTIVATIONS = {
    None: lambda x: x,
    "linear": lambda x: x,
    "relu": ops.relu,
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "softmax": ops.softmax,
}


def _activation_fn(name):
    if name not in _ACTIVATIONS:
        choices = ", ".join(repr(k) for k in _ACTIVATIONS)
        raise ConfigError(f"unknown activation {name!r} for a manual layer; use one of {choices}")
    return _ACTIVATIONS[name]


@keras.saving.register_keras_serializable(package="tfnets")
class ManualDense(keras.layers.Layer):
    """Fully connected layer `activation(x @ kernel + bias)` with a hand-written backward.

    Input (N, D) -> output (N, units). Unlike `keras.layers.Dense`, inputs with more than two
    dimensions are not applied along the last axis: put a `keras.layers.Flatten` in front.
    activation: None/"linear", "relu", "tanh", "sigmoid" or "softmax" (all hand-written ops).
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(units) <= 0:
            raise ConfigError(f"ManualDense units must be a positive integer; got {units}")
        self.units = int(units)
        self.activation = activation
        self._activation_fn = _activation_fn(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.input_spec = keras.layers.InputSpec(ndim=2)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_dim, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
            )
        self.input_spec = keras.layers.InputSpec(ndim=2, axes={-1: input_dim})

    def call(self, inputs):
        kernel = self.kernel.value
        # Without a bias the affine op still needs one; a constant zero gets no gradient update.
        bias = self.bias.value if self.use_bias else tf.zeros((self.units,), dtype=kernel.dtype)
        return self._activation_fn(ops.affine(inputs, kernel, bias))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=self.activation,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=keras.regularizers.serialize(self.bias_regularizer),
        )
        return config


@keras.saving.register_keras_serializable(package="tfnets")
class ManualEmbedding(keras.layers.Layer):
    """Embedding table lookup with a scatter-add backward. ids (N, ...) -> (N, ..., output_dim).

    The table is kept in the variable dtype (float32 under mixed precision, like Keras's
    Embedding) and the looked-up rows are cast to the compute dtype.
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(input_dim) <= 0 or int(output_dim) <= 0:
            raise ConfigError(f"ManualEmbedding needs positive input_dim and output_dim; got {input_dim}, {output_dim}")
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            autocast=False,
        )

    def call(self, inputs):
        if inputs.dtype not in (tf.int32, tf.int64):
            inputs = tf.cast(inputs, tf.int32)  # ids may arrive as floats from a float Input
        rows = ops.embedding_lookup(inputs, self.embeddings.value)
        return tf.cast(rows, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
            embeddings_regularizer=keras.regularizers.serialize(self.embeddings_regularizer),
        )
        return config


@keras.saving.register_keras_serializable(package="tfnets")
class ManualDropout(keras.layers.Layer):
    """Inverted dropout; `rate` is the DROP probability (Keras convention, rate = 1 - keep_prob).

    Use `ManualDropout.from_keep_prob(p)` for the notMNIST assignment's keep probability p.
    Identity at inference. With `seed`, masks come from a keras `SeedGenerator` through a stateless
    RNG, so a seeded model reproduces its masks run to run.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ConfigError(
                f"ManualDropout rate is the drop probability and must be in [0, 1); got {rate} "
                "(for a keep probability use ManualDropout.from_keep_prob)"
            )
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    @classmethod
    def from_keep_prob(cls, keep_prob, seed=None, **kwargs):
        """Build from a keep probability p in (0, 1] (rate = 1 - p)."""
        return cls(rate=ops.keep_prob_to_rate(keep_prob), seed=seed, **kwargs)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        return ops.dropout(inputs, self.rate, training=True, seed=self.seed_generator.next())

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config


def _feature_weights(layer, input_shape, trainable_specs, stat_specs=()):
    dim = input_shape[-1]
    if dim is None:
        raise ConfigError(f"{layer.__class__.__name__} needs a known last (feature) dimension")
    for name, initializer, regularizer in trainable_specs:
        setattr(
            layer,
            name,
            layer.add_weight(name=name, shape=(dim,), initializer=initializer, regularizer=regularizer),
        )
    for name, initializer in stat_specs:
        setattr(
            layer,
            name,
            layer.add_weight(name=name, shape=(dim,), initializer=initializer, trainable=False, autocast=False),
        )


@keras.saving.register_keras_serializable(package="tfnets")
class ManualBatchNormalization(keras.layers.Layer):
    """Batch normalisation over every axis but the last, with a hand-written backward.

    Training: normalises with batch statistics and updates the non-trainable moving statistics
    `moving = momentum * moving + (1 - momentum) * batch` (same form as Keras). Inference:
    normalises with the moving statistics. Moving statistics stay float32 under mixed precision.
    """

    def __init__(
        self,
        momentum=0.9,
        epsilon=1e-5,
        gamma_initializer="ones",
        beta_initializer="zeros",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        gamma_regularizer=None,
        beta_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= float(momentum) < 1.0 or float(epsilon) <= 0:
            raise ConfigError(
                f"ManualBatchNormalization needs 0 <= momentum < 1 and epsilon > 0; got {momentum}, {epsilon}"
            )
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.moving_mean_initializer = keras.initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = keras.initializers.get(moving_variance_initializer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)

    def build(self, input_shape):
        _feature_weights(
            self,
            input_shape,
            [
                ("gamma", self.gamma_initializer, self.gamma_regularizer),
                ("beta", self.beta_initializer, self.beta_regularizer),
            ],
            [
                ("moving_mean", self.moving_mean_initializer),
                ("moving_variance", self.moving_variance_initializer),
            ],
        )

    def call(self, inputs, training=False):
        out, new_mean, new_var = ops.batch_norm(
            inputs,
            self.gamma.value,
            self.beta.value,
            self.moving_mean.value,
            self.moving_variance.value,
            training=bool(training),
            momentum=self.momentum,
            epsilon=self.epsilon,
        )
        if training:
            self.moving_mean.assign(new_mean)
            self.moving_variance.assign(new_var)
        return out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            momentum=self.momentum,
            epsilon=self.epsilon,
            gamma_initializer=keras.initializers.serialize(self.gamma_initializer),
            beta_initializer=keras.initializers.serialize(self.beta_initializer),
            moving_mean_initializer=keras.initializers.serialize(self.moving_mean_initializer),
            moving_variance_initializer=keras.initializers.serialize(self.moving_variance_initializer),
            gamma_regularizer=keras.regularizers.serialize(self.gamma_regularizer),
            beta_regularizer=keras.regularizers.serialize(self.beta_regularizer),
        )
        return config


@keras.saving.register_keras_serializable(package="tfnets")
class ManualLayerNormalization(keras.layers.Layer):
    """Layer normalisation over the last axis (same in training and inference); hand-written backward."""

    def __init__(
        self,
        epsilon=1e-5,
        gamma_initializer="ones",
        beta_initializer="zeros",
        gamma_regularizer=None,
        beta_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if float(epsilon) <= 0:
            raise ConfigError(f"ManualLayerNormalization needs epsilon > 0; got {epsilon}")
        self.epsilon = float(epsilon)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)

    def build(self, input_shape):
        _feature_weights(
            self,
            input_shape,
            [
                ("gamma", self.gamma_initializer, self.gamma_regularizer),
                ("beta", self.beta_initializer, self.beta_regularizer),
            ],
        )

    def call(self, inputs):
        return ops.layer_norm(inputs, self.gamma.value, self.beta.value, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            epsilon=self.epsilon,
            gamma_initializer=keras.initializers.serialize(self.gamma_initializer),
            beta_initializer=keras.initializers.serialize(self.beta_initializer),
            gamma_regularizer=keras.regularizers.serialize(self.gamma_regularizer),
            beta_regularizer=keras.regularizers.serialize(self.beta_regularizer),
        )
        return config


# The merge and ensemble layers of `apps.trigram_embedding`.


@keras.saving.register_keras_serializable(package="tfnets")
class SumOverWords(keras.layers.Layer):
    """(N, 3, D) word vectors -> (N, D) their sum: the order-free merge."""

    def call(self, inputs):
        return keras.ops.sum(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="tfnets")
class MeanProbabilityLogits(keras.layers.Layer):
    """[(N, V) logits of each net] -> (N, V) log of the nets' mean softmax probability.

    Its softmax IS the mean probability, so an ensemble is scored, served and exported like one net whose
    output is logits. Computed as a log-sum-exp of log-softmaxes: no probability underflows to log(0).
    """

    def call(self, inputs):
        log_probabilities = keras.ops.stack([keras.ops.log_softmax(x, axis=-1) for x in inputs], axis=0)
        return keras.ops.logsumexp(log_probabilities, axis=0) - math.log(len(inputs))

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

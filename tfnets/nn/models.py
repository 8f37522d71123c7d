"""CS231n-style fully-connected nets whose gradients come from the hand-written backward passes.

    net = FullyConnectedNet([100, 100], dropout_keep_ratio=0.5, normalization="batchnorm", reg=1e-3)
    scores = net.loss(X)                 # test-time forward: class scores (N, C)
    loss, grads = net.loss(X, y)         # training-time pass: scalar loss, grads keyed like net.params
    net.params["W1"].assign(...)         # parameters are assignable variables
    net.reg = 0.1                        # read at loss time

Architecture: `{affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax`.

Gradients. `loss(X, y)` runs the forward pass through the `tfnets.nn.ops` custom-gradient ops (affine, relu,
batch_norm, layer_norm, dropout, softmax_cross_entropy) and asks a `tf.GradientTape` for the gradient of the
DATA loss: the tape only chains the ops' hand-written backward functions (no op is differentiated
automatically). The regularisation gradient `reg * W` is added by hand.

Each net is backed by a Keras model: `model = net.as_keras_model()`, `model.compile(optimizer=tfnets.nn.optim.Adam(1e-3),
loss=SoftmaxCrossEntropy(), metrics=["accuracy"])` then `model.fit(...)` trains with the same manual gradients (see `train_step`), including the
running batch-norm statistics and the optional training-time augmentation (`augmentation="flip"`/`"flip_crop"`).
"""

import keras
import numpy as np
import tensorflow as tf

from tfnets.errors import ConfigError
from tfnets.nn import ops
from tfnets.nn.gradcheck import numeric_gradient

NORMALIZATIONS = (None, "batchnorm", "layernorm")
AUGMENTATIONS = (None, "flip", "flip_crop")


def _dtype_name(dtype):
    return tf.as_dtype(dtype).name


@keras.saving.register_keras_serializable(package="tfnets")
class FullyConnectedModel(keras.Model):
    """The Keras model behind `FullyConnectedNet`: variables, forward pass, manual-gradient `train_step`.

    Use it through `FullyConnectedNet(...).as_keras_model()` (or directly) for `compile`/`fit`/`evaluate`/`export`;
    its arguments are those of `FullyConnectedNet`.

    Args:
      hidden_dims: hidden layer sizes, e.g. `[100, 100]` (L - 1 hidden layers for an L-layer net).
      input_dim: features per example; inputs of any shape (N, ...) are flattened to (N, input_dim).
      num_classes: C, the number of class scores.
      dropout_keep_ratio: keep probability of the dropout after each hidden ReLU; 1 means no dropout.
      normalization: None, "batchnorm" or "layernorm" (between each hidden affine layer and its ReLU).
      reg: L2 strength; the loss adds `0.5 * reg * sum(W**2)` over the weight matrices. Read at loss time.
      weight_scale: standard deviation of the normal initialisation of the weights; biases start at 0.
      dtype: float32 or float64 (use float64 for gradient checks).
      seed: if given, the initial weights come from this seed and dropout uses the SAME masks on every call
        (CS231n's convention, for gradient checks); leave None for training (masks then come from a seeded
        generator that advances each step and is part of the model's state).
      augmentation: training-time augmentation applied by the trainers (Keras `fit` and `tfnets.nn.solver.Solver`),
        never by `loss()`: None, "flip" (random horizontal flips) or "flip_crop" (flips and random translations
        by up to `crop_padding` pixels, with zero padding); needs `image_shape`.
      image_shape: (H, W, C) of the images behind the flat inputs; needed for augmentation.
    """

    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        dropout_keep_ratio=1.0,
        normalization=None,
        reg=0.0,
        weight_scale=1e-2,
        dtype=tf.float32,
        seed=None,
        augmentation=None,
        image_shape=None,
        crop_padding=4,
        **kwargs,
    ):
        dtype_name = _dtype_name(dtype)
        kwargs.pop("dtype", None)
        super().__init__(dtype=dtype_name, **kwargs)
        hidden_dims = [int(h) for h in hidden_dims]
        if any(h < 1 for h in hidden_dims) or int(input_dim) < 1 or int(num_classes) < 2:
            raise ConfigError(
                f"FullyConnectedNet needs positive sizes; got hidden_dims={hidden_dims}, "
                f"input_dim={input_dim}, num_classes={num_classes}"
            )
        if normalization not in NORMALIZATIONS:
            raise ConfigError(f"normalization must be None, 'batchnorm' or 'layernorm'; got {normalization!r}")
        if not 0.0 < float(dropout_keep_ratio) <= 1.0:
            raise ConfigError(f"dropout_keep_ratio must be in (0, 1]; got {dropout_keep_ratio}")
        if augmentation not in AUGMENTATIONS:
            raise ConfigError(f"augmentation must be None, 'flip' or 'flip_crop'; got {augmentation!r}")
        if augmentation is not None and (image_shape is None or int(np.prod(image_shape)) != int(input_dim)):
            raise ConfigError(
                f"augmentation {augmentation!r} needs image_shape (H, W, C) with H*W*C = input_dim "
                f"({input_dim}); got {image_shape}"
            )
        self.hidden_dims = hidden_dims
        self.input_dim, self.num_classes = int(input_dim), int(num_classes)
        self.dropout_keep_ratio = float(dropout_keep_ratio)
        self.normalization = normalization
        self.reg = float(reg)
        self.weight_scale = float(weight_scale)
        self.param_dtype = tf.as_dtype(dtype_name)
        self.seed = seed
        self.augmentation = augmentation
        self.image_shape = None if image_shape is None else [int(d) for d in image_shape]
        self.crop_padding = int(crop_padding)
        self.num_layers = len(hidden_dims) + 1
        self._create_variables()
        self.built = True

    # -- variables -------------------------------------------------------------------------------------
    def _create_variables(self):
        """W1..WL ~ N(0, weight_scale^2), b1..bL = 0, gamma/beta = 1/0 and running statistics per norm layer."""
        dims = [self.input_dim, *self.hidden_dims, self.num_classes]
        self.params = {}
        self.bn_stats = {}
        for layer in range(1, self.num_layers + 1):
            fan_in, fan_out = dims[layer - 1], dims[layer]
            seed = None if self.seed is None else self.seed * 1000 + layer
            init = keras.initializers.RandomNormal(stddev=self.weight_scale, seed=seed)
            self.params[f"W{layer}"] = self._weight(f"W{layer}", (fan_in, fan_out), init)
            self.params[f"b{layer}"] = self._weight(f"b{layer}", (fan_out,), "zeros")
            if self.normalization and layer < self.num_layers:
                self.params[f"gamma{layer}"] = self._weight(f"gamma{layer}", (fan_out,), "ones")
                self.params[f"beta{layer}"] = self._weight(f"beta{layer}", (fan_out,), "zeros")
                if self.normalization == "batchnorm":
                    self.bn_stats[f"running_mean{layer}"] = self._weight(
                        f"running_mean{layer}", (fan_out,), "zeros", trainable=False
                    )
                    self.bn_stats[f"running_var{layer}"] = self._weight(
                        f"running_var{layer}", (fan_out,), "ones", trainable=False
                    )
        # Advances once per training step, so dropout masks and augmentations differ step to step yet are
        # reproducible (and checkpointed with the model's variables).
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def _weight(self, name, shape, initializer, trainable=True):
        return self.add_weight(
            name=name, shape=shape, initializer=initializer, dtype=self.param_dtype, trainable=trainable
        )

    def _param_tensors(self):
        return {name: tf.convert_to_tensor(v.value) for name, v in self.params.items()}

    # -- forward pass ----------------------------------------------------------------------------------
    def _flatten(self, x):
        x = tf.cast(tf.convert_to_tensor(x), self.param_dtype)
        if x.shape.rank is not None and x.shape.rank >= 2 and None not in x.shape[1:]:
            features = int(np.prod(x.shape[1:]))
            if features != self.input_dim:
                raise ConfigError(
                    f"the net takes {self.input_dim} features per example; got input shape {tuple(x.shape)}"
                )
        return tf.reshape(x, [-1, self.input_dim])

    def _dropout_seed(self, layer, step_seed):
        if self.seed is not None:  # CS231n: a fixed seed means the same mask every call
            return tf.constant([self.seed, layer], tf.int32)
        return tf.cast(step_seed, tf.int32) + tf.constant([0, 7919], tf.int32) * layer

    def forward(self, x, weights, training, step_seed=None, relu_inputs=None):
        """Scores (N, C) and the new batch-norm running statistics `{name: tensor}` (training only).

        x: (N, input_dim) in the net's dtype; weights: `{name: tensor}` like `params`. If `relu_inputs` is a list,
        each hidden ReLU's input (N, H) is appended to it (gradient checks look for inputs close to the kink).
        """
        updates = {}
        hidden = x
        for layer in range(1, self.num_layers):
            hidden = ops.affine(hidden, weights[f"W{layer}"], weights[f"b{layer}"])
            if self.normalization == "batchnorm":
                hidden, mean, var = ops.batch_norm(
                    hidden,
                    weights[f"gamma{layer}"],
                    weights[f"beta{layer}"],
                    self.bn_stats[f"running_mean{layer}"].value,
                    self.bn_stats[f"running_var{layer}"].value,
                    training=training,
                )
                if training:
                    updates[f"running_mean{layer}"], updates[f"running_var{layer}"] = mean, var
            elif self.normalization == "layernorm":
                hidden = ops.layer_norm(hidden, weights[f"gamma{layer}"], weights[f"beta{layer}"])
            if relu_inputs is not None:
                relu_inputs.append(hidden)
            hidden = ops.relu(hidden)
            if training and self.dropout_keep_ratio < 1.0:
                hidden = ops.dropout(
                    hidden, rate=1.0 - self.dropout_keep_ratio, training=True, seed=self._dropout_seed(layer, step_seed)
                )
        last = self.num_layers
        scores = ops.affine(hidden, weights[f"W{last}"], weights[f"b{last}"])
        return scores, updates

    def regularization_loss(self):
        """0.5 * reg * sum of squared weight matrices (biases and norm parameters are not regularised)."""
        total = tf.zeros((), self.param_dtype)
        for layer in range(1, self.num_layers + 1):
            w = tf.convert_to_tensor(self.params[f"W{layer}"].value)
            total += tf.reduce_sum(w * w)
        return 0.5 * tf.constant(self.reg, self.param_dtype) * total

    def training_pass(self, x, y, step_seed=None, augment=False):
        """One training-time pass: `(loss, grads, scores)`; also stores the new running statistics.

        x: (N, ...) flattened to (N, input_dim); y: int (N,). `grads` is keyed like `params`. The data-loss
        gradient chains the hand-written backward passes of `tfnets.nn.ops`; `reg * W` is added by hand.
        """
        x = self._flatten(x)
        y = tf.cast(tf.convert_to_tensor(y), tf.int32)
        if step_seed is None:
            step_seed = self.seed_generator.next()
        if augment and self.augmentation:
            x = self.augment(x, step_seed)
        weights = self._param_tensors()
        with tf.GradientTape() as tape:
            tape.watch(list(weights.values()))
            scores, updates = self.forward(x, weights, training=True, step_seed=step_seed)
            data_loss = ops.softmax_cross_entropy(scores, y)
        grads = dict(zip(weights, tape.gradient(data_loss, list(weights.values()))))
        reg = tf.constant(self.reg, self.param_dtype)
        for layer in range(1, self.num_layers + 1):
            grads[f"W{layer}"] = grads[f"W{layer}"] + reg * weights[f"W{layer}"]
        loss = data_loss + self.regularization_loss()
        for name, value in updates.items():
            self.bn_stats[name].assign(value)
        return loss, grads, scores

    def augment(self, x, step_seed):
        """Random horizontal flips (and translations for "flip_crop") of flat images x (N, H*W*C)."""
        height, width, channels = self.image_shape
        images = tf.reshape(x, [-1, height, width, channels])
        seed = tf.cast(step_seed, tf.int32)
        flip = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed=seed, alg="philox") < 0.5
        images = tf.where(flip, tf.reverse(images, axis=[2]), images)
        if self.augmentation == "flip_crop" and self.crop_padding > 0:
            pad = self.crop_padding
            padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
            offsets = tf.random.stateless_uniform(
                [tf.shape(images)[0], 2], seed=seed + 1, minval=0, maxval=2 * pad + 1, dtype=tf.int32, alg="philox"
            )
            # One random window per image: gather rows then columns with per-example offsets.
            rows = offsets[:, :1] + tf.range(height)[None, :]
            cols = offsets[:, 1:] + tf.range(width)[None, :]
            images = tf.gather(padded, rows, axis=1, batch_dims=1)
            images = tf.gather(images, cols, axis=2, batch_dims=1)
        return tf.reshape(images, [-1, self.input_dim])

    # -- Keras integration -----------------------------------------------------------------------------
    def call(self, inputs, training=False):
        """Class scores (N, C) for inputs (N, ...); Keras calls this in evaluate/predict and in export."""
        x = self._flatten(inputs)
        if training:
            scores, updates = self.forward(
                x, self._param_tensors(), training=True, step_seed=self.seed_generator.next()
            )
            for name, value in updates.items():
                self.bn_stats[name].assign(value)
            return scores
        scores, _ = self.forward(x, self._param_tensors(), training=False)
        return scores

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Evaluation loss consistent with training: mean softmax cross-entropy + the L2 term.

        Under a strategy with R replicas Keras expects each replica's share (the loss / R; it multiplies by R again
        for the reported value), as its own `compute_loss` returns."""
        del x, sample_weight, training
        loss = ops.softmax_cross_entropy(y_pred, tf.cast(tf.reshape(y, [-1]), tf.int32)) + self.regularization_loss()
        return loss / tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, loss.dtype)

    def train_step(self, data):
        """One `fit` step with the manual gradients; the compiled optimizer applies them."""
        x, y = data[0], data[1]
        loss, grads, scores = self.training_pass(x, tf.reshape(y, [-1]), augment=True)
        variables = list(self.params.values())
        self.optimizer.apply([grads[name] for name in self.params], variables)
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(scores)[0])
        return self.compute_metrics(x, y, scores)

    def get_config(self):
        return {
            "hidden_dims": self.hidden_dims,
            "input_dim": self.input_dim,
            "num_classes": self.num_classes,
            "dropout_keep_ratio": self.dropout_keep_ratio,
            "normalization": self.normalization,
            "reg": self.reg,
            "weight_scale": self.weight_scale,
            "dtype": self.param_dtype.name,
            "seed": self.seed,
            "augmentation": self.augmentation,
            "image_shape": self.image_shape,
            "crop_padding": self.crop_padding,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class FullyConnectedNet:
    """A fully-connected net with any number of hidden layers (CS231n assignment 2), CS231n API.

    Args (see `FullyConnectedModel` for the training-only extras `augmentation`, `image_shape`):
      hidden_dims: hidden layer sizes, e.g. `[100, 100]` (L - 1 hidden layers for an L-layer net).
      input_dim: features per example; inputs of any shape (N, ...) are flattened to (N, input_dim).
      num_classes: C, the number of class scores.
      dropout_keep_ratio: keep probability of the dropout after each hidden ReLU; 1 means no dropout.
      normalization: None, "batchnorm" or "layernorm".
      reg: L2 strength (`0.5 * reg * sum(W**2)` over weight matrices); read at loss time, so assignable.
      weight_scale: standard deviation of the normal weight initialisation; biases start at 0.
      dtype: float32 or float64 (use float64 for gradient checks).
      seed: fixes the initial weights and makes dropout use the same masks on every call (for gradient checks).

    Attributes: `params` ({"W1", "b1", ..., "gamma1", "beta1", ...} -> assignable variables), `bn_stats` (running
    batch-norm statistics), `num_layers`. `as_keras_model()` gives the Keras model that owns these variables.
    """

    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        dropout_keep_ratio=1.0,
        normalization=None,
        reg=0.0,
        weight_scale=1e-2,
        dtype=tf.float32,
        seed=None,
        **model_kwargs,
    ):
        self.model = FullyConnectedModel(
            hidden_dims,
            input_dim=input_dim,
            num_classes=num_classes,
            dropout_keep_ratio=dropout_keep_ratio,
            normalization=normalization,
            reg=reg,
            weight_scale=weight_scale,
            dtype=dtype,
            seed=seed,
            **model_kwargs,
        )

    @classmethod
    def from_keras_model(cls, model):
        """Wrap an existing `FullyConnectedModel` (e.g. one reloaded from `model.keras`)."""
        net = cls.__new__(cls)
        net.model = model
        return net

    def as_keras_model(self):
        """The `keras.Model` sharing this net's variables: compile and `fit` it to train the net."""
        return self.model

    @property
    def params(self):
        return self.model.params

    @property
    def bn_stats(self):
        return self.model.bn_stats

    @property
    def reg(self):
        return self.model.reg

    @reg.setter
    def reg(self, value):
        self.model.reg = float(value)

    @property
    def dtype(self):
        return self.model.param_dtype

    @property
    def num_layers(self):
        return self.model.num_layers

    @property
    def normalization(self):
        return self.model.normalization

    @property
    def dropout_keep_ratio(self):
        return self.model.dropout_keep_ratio

    def regularization_loss(self):
        return self.model.regularization_loss()

    # -- the CS231n API --------------------------------------------------------------------------------
    def loss(self, X, y=None):
        """CS231n `loss`: scores (N, C) when `y` is None, else `(loss, grads)`.

        X: array (N, d_1, ..., d_k) of any float dtype with prod(d_i) = input_dim (cast to the net's dtype);
        y: int labels (N,). `grads[name]` has the shape of `params[name]`. Outputs are eager tensors
        (call `.numpy()` or `np.asarray`). A training-time pass also updates the batch-norm running statistics.
        """
        if y is None:
            scores, _ = self.model.forward(self.model._flatten(X), self.model._param_tensors(), training=False)
            return scores
        loss, grads, _ = self.model.training_pass(X, y)
        return loss, grads


class TwoLayerNet(FullyConnectedNet):
    """`affine - relu - affine - softmax` (CS231n's TwoLayerNet): params W1, b1, W2, b2; same `loss` contract."""

    def __init__(
        self,
        input_dim=3 * 32 * 32,
        hidden_dim=100,
        num_classes=10,
        weight_scale=1e-3,
        reg=0.0,
        dtype=tf.float32,
        seed=None,
    ):
        super().__init__(
            [hidden_dim],
            input_dim=input_dim,
            num_classes=num_classes,
            reg=reg,
            weight_scale=weight_scale,
            dtype=dtype,
            seed=seed,
        )
        self.hidden_dim = int(hidden_dim)


def svm_loss(scores, labels):
    """Multiclass SVM (hinge) loss with its hand-written gradient: `tfnets.nn.ops.svm_loss` (re-exported here)."""
    return ops.svm_loss(scores, labels)


def kink_margin(net, X):
    """Smallest |input| of any hidden ReLU in a training-time forward pass of X: numeric gradients with a step
    larger than this may straddle the kink at 0 and disagree with the (correct) analytic gradient."""
    model = net.as_keras_model()
    inputs = []
    model.forward(model._flatten(X), model._param_tensors(), training=True, relu_inputs=inputs)
    return float(min(np.min(np.abs(z.numpy())) for z in inputs)) if inputs else float("inf")


def gradient_check(net, X, y, eps=1e-4, zero_tol=1e-8):
    """Compare `net.loss(X, y)`'s gradients with central differences; returns `{param: max relative error}`.

    The numeric gradient is `gradcheck.numeric_gradient`'s 4-point central difference
    `(f(-2h) - 8 f(-h) + 8 f(h) - f(2h)) / 12h` (truncation error O(h^4), rounding error ~1e-16 |f| / h): with h = 1e-4 in float64 rounding dominates at ~1e-11 absolute.
    Keep ReLU inputs away from 0 (`kink_margin`; e.g. draw non-zero biases), or a difference straddles the kink.

    Use a float64 net (and a fixed `seed` when it has dropout, so every evaluation uses the same masks). The
    numeric side evaluates the training-time loss (forward pass + L2 term, written independently of the backward
    passes) in one traced graph. The relative error is CS231n's `|a - n| / (|a| + |n|)` over the entries whose
    gradient is not zero; entries that are zero up to rounding (`|a| + |n| < zero_tol`, e.g. a bias feeding batch
    norm, whose true gradient is exactly 0) are reported as the largest absolute difference under the key
    `"<param> (zero entries, abs)"`.
    """
    model = net.as_keras_model()
    if model.dropout_keep_ratio < 1.0 and model.seed is None:
        raise ConfigError("gradient_check needs a net built with a fixed seed when it uses dropout")
    x = model._flatten(X)
    labels = tf.cast(tf.convert_to_tensor(y), tf.int32)
    names = list(net.params)
    reg = tf.constant(model.reg, model.param_dtype)

    @tf.function(autograph=False)  # no Python control flow on tensors: nothing to convert
    def loss_terms(*values):
        """(data loss, L2 term): differenced separately, so the large L2 term's rounding cannot swamp the data
        loss's small differences (the sum of the two differences is the difference of the total loss)."""
        weights = dict(zip(names, values))
        scores, _ = model.forward(x, weights, training=True)
        log_probs = tf.nn.log_softmax(scores)
        data_loss = -tf.reduce_mean(tf.gather(log_probs, labels, axis=1, batch_dims=1))
        l2 = sum(tf.reduce_sum(weights[f"W{i}"] ** 2) for i in range(1, model.num_layers + 1))
        return tf.stack([data_loss, 0.5 * reg * l2])

    _, grads = net.loss(X, y)
    numerics = numeric_gradient(loss_terms, [p.numpy() for p in net.params.values()], eps=eps, stencil=4)
    errors = {}
    for name, numeric in zip(names, numerics):
        analytic = np.asarray(grads[name], np.float64)
        size = np.abs(analytic) + np.abs(numeric)
        significant = size >= zero_tol
        if significant.any():
            errors[name] = float(np.max(np.abs(analytic - numeric)[significant] / size[significant]))
        if (~significant).any():
            errors[f"{name} (zero entries, abs)"] = float(np.max(np.abs(analytic - numeric)[~significant]))
    return errors

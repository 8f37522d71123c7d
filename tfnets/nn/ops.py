"""Hand-written forward and backward passes (CS231n style).

Every differentiable op below is a `tf.custom_gradient` whose backward pass is written out by hand
from the assignment derivations: no autodiff runs inside a backward function. Forward and backward
sit next to each other so the math can be read (and checked) in one place.

Conventions
-----------
* Shapes are stated in each docstring: N is the batch size, D the feature size, C the number of
  classes, V the vocabulary size.
* Python-level options (rates, flags, epsilons) are handled by the public function; the inner
  `tf.custom_gradient` function only takes the tensors it differentiates, so it works the same in
  eager mode, inside `tf.function` and under `jit_compile=True` (graph-mode `custom_gradient`
  converts every positional argument to a tensor and accepts no keyword arguments).
* Integer arguments (labels, ids) are captured by closure and never differentiated.
* float16/bfloat16 inputs (mixed precision) are computed in float32 where statistics are involved
  (softmax, losses, normalisation) and cast back, like Keras's own layers do.
* Tests: `tests/test_ops.py` gradient-checks every op in float64 against central differences and
  against TensorFlow autodiff of the independent plain implementations in `tfnets.nn.reference_ops`.
"""

import tensorflow as tf

from tfnets.errors import ConfigError

_HALF_DTYPES = (tf.float16, tf.bfloat16)


def _compute_dtype(dtype):
    """float32 for half-precision inputs (stable statistics), otherwise the input dtype."""
    return tf.float32 if dtype in _HALF_DTYPES else dtype


def _static_rank(x, name):
    rank = x.shape.rank
    if rank is None:
        raise ConfigError(f"{name} needs a known rank; got a tensor of unknown shape")
    return rank


# --------------------------------------------------------------------------------------------
# Affine layer
# --------------------------------------------------------------------------------------------
def affine(x, w, b):
    """Fully connected layer `out = x @ w + b`.

    x: (N, D), w: (D, M), b: (M,) -> out: (N, M). Inputs must already be 2-D (flatten first).
    """
    x, w, b = tf.convert_to_tensor(x), tf.convert_to_tensor(w), tf.convert_to_tensor(b)
    if _static_rank(x, "affine input x") != 2:
        raise ConfigError(f"affine expects x of shape (N, D); got shape {x.shape} (flatten it first)")

    @tf.custom_gradient
    def _affine(x, w, b):
        out = tf.matmul(x, w) + b

        def backward(dout):
            dx = tf.matmul(dout, w, transpose_b=True)  # (N, M) @ (M, D)
            dw = tf.matmul(x, dout, transpose_a=True)  # (D, N) @ (N, M)
            db = tf.reduce_sum(dout, axis=0)  # b is broadcast over the batch
            return dx, dw, db

        return out, backward

    return _affine(x, w, b)


# --------------------------------------------------------------------------------------------
# Activations (elementwise, any shape)
# --------------------------------------------------------------------------------------------
def relu(x):
    """max(0, x); the gradient at exactly 0 is taken as 0 (subgradient)."""

    @tf.custom_gradient
    def _relu(x):
        out = tf.maximum(x, tf.zeros_like(x))

        def backward(dout):
            return dout * tf.cast(x > 0, dout.dtype)

        return out, backward

    return _relu(tf.convert_to_tensor(x))


def tanh(x):
    """tanh(x); d/dx = 1 - tanh(x)^2, reusing the forward output."""

    @tf.custom_gradient
    def _tanh(x):
        out = tf.math.tanh(x)

        def backward(dout):
            return dout * (1 - out * out)

        return out, backward

    return _tanh(tf.convert_to_tensor(x))


def sigmoid(x):
    """1 / (1 + exp(-x)); d/dx = s * (1 - s), reusing the forward output."""

    @tf.custom_gradient
    def _sigmoid(x):
        out = tf.math.sigmoid(x)  # numerically stable for large |x|

        def backward(dout):
            return dout * out * (1 - out)

        return out, backward

    return _sigmoid(tf.convert_to_tensor(x))


# --------------------------------------------------------------------------------------------
# Softmax and losses
# --------------------------------------------------------------------------------------------
def _log_softmax_forward(logits):
    """Stable log-softmax over the last axis: shift by the max so exp never overflows."""
    shifted = logits - tf.reduce_max(logits, axis=-1, keepdims=True)
    return shifted - tf.math.log(tf.reduce_sum(tf.exp(shifted), axis=-1, keepdims=True))


def softmax(logits):
    """Softmax over the last axis. logits: (..., C) -> probabilities (..., C).

    Backward (Jacobian-vector product): dx = p * (dout - sum(dout * p)).
    """
    logits = tf.convert_to_tensor(logits)
    work_dtype = _compute_dtype(logits.dtype)

    @tf.custom_gradient
    def _softmax(logits):
        probs = tf.exp(_log_softmax_forward(tf.cast(logits, work_dtype)))

        def backward(dout):
            dout = tf.cast(dout, work_dtype)
            dx = probs * (dout - tf.reduce_sum(dout * probs, axis=-1, keepdims=True))
            return tf.cast(dx, logits.dtype)

        return tf.cast(probs, logits.dtype), backward

    return _softmax(logits)


def _one_hot_targets(labels, num_classes, dtype, batch_rank):
    """Integer labels (N,) or one-hot/probability labels (N, C) -> dense targets (N, C)."""
    labels = tf.convert_to_tensor(labels)
    if labels.dtype.is_integer:
        if labels.shape.rank != batch_rank:
            raise ConfigError(f"integer labels must have shape (N,) to match logits (N, C); got {labels.shape}")
        return tf.one_hot(labels, num_classes, dtype=dtype)
    if labels.shape.rank != batch_rank + 1:
        raise ConfigError(f"float labels must be one-hot of shape (N, C); got {labels.shape}")
    return tf.cast(labels, dtype)


def _check_logits(logits, name):
    if _static_rank(logits, name) != 2:
        raise ConfigError(f"{name} expects logits of shape (N, C); got {logits.shape}")


def softmax_cross_entropy_per_example(logits, labels):
    """Per-example softmax cross-entropy. logits: (N, C); labels: int (N,) or one-hot (N, C).

    Returns losses (N,) = -sum_c onehot * log_softmax(logits). Uses log-softmax, so there is no
    log(0) even for very confident wrong predictions. Backward: dlogits = dloss[:, None] * (p - y).
    This is the form a Keras `Loss.call` must return (Keras reduces; correct under tf.distribute).
    """
    logits = tf.convert_to_tensor(logits)
    _check_logits(logits, "softmax_cross_entropy_per_example")
    work_dtype = _compute_dtype(logits.dtype)
    targets = _one_hot_targets(labels, tf.shape(logits)[-1], work_dtype, batch_rank=1)

    @tf.custom_gradient
    def _xent(logits):
        log_probs = _log_softmax_forward(tf.cast(logits, work_dtype))
        losses = -tf.reduce_sum(targets * log_probs, axis=-1)

        def backward(dlosses):
            dlosses = tf.cast(dlosses, work_dtype)
            # sum(targets) is 1 for one-hot labels; keeping it makes soft labels exact too.
            grad = dlosses[:, None] * (tf.exp(log_probs) * tf.reduce_sum(targets, axis=-1, keepdims=True) - targets)
            return tf.cast(grad, logits.dtype)

        return tf.cast(losses, logits.dtype), backward

    return _xent(logits)


def softmax_cross_entropy(logits, labels):
    """Mean softmax cross-entropy over the batch. logits: (N, C); labels: int (N,) or one-hot (N, C).

    Returns a scalar. Backward: dlogits = dloss * (softmax(logits) - onehot) / N.
    """
    logits = tf.convert_to_tensor(logits)
    _check_logits(logits, "softmax_cross_entropy")
    work_dtype = _compute_dtype(logits.dtype)
    targets = _one_hot_targets(labels, tf.shape(logits)[-1], work_dtype, batch_rank=1)

    @tf.custom_gradient
    def _xent(logits):
        log_probs = _log_softmax_forward(tf.cast(logits, work_dtype))
        num_examples = tf.cast(tf.shape(logits)[0], work_dtype)
        loss = -tf.reduce_sum(targets * log_probs) / num_examples

        def backward(dloss):
            dloss = tf.cast(dloss, work_dtype)
            probs_times_mass = tf.exp(log_probs) * tf.reduce_sum(targets, axis=-1, keepdims=True)
            grad = dloss * (probs_times_mass - targets) / num_examples
            return tf.cast(grad, logits.dtype)

        return tf.cast(loss, logits.dtype), backward

    return _xent(logits)


def mean_squared_error(pred, target):
    """mean((pred - target)^2) over ALL elements; pred and target have the same shape.

    Returns a scalar. Backward: dpred = dloss * 2 (pred - target) / size, dtarget = -dpred.
    """
    pred = tf.convert_to_tensor(pred)
    target = tf.cast(tf.convert_to_tensor(target), pred.dtype)

    @tf.custom_gradient
    def _mse(pred, target):
        diff = pred - target
        size = tf.cast(tf.size(diff), pred.dtype)
        loss = tf.reduce_sum(diff * diff) / size

        def backward(dloss):
            dpred = dloss * 2 * diff / size
            return dpred, -dpred

        return loss, backward

    return _mse(pred, target)


def mean_squared_error_per_example(pred, target):
    """Per-example MSE: mean over every non-batch axis. pred, target: (N, ...) -> (N,).

    For 1-D inputs (N,) each example's loss is its squared error. Backward:
    dpred = dloss[:, None, ...] * 2 (pred - target) / K with K the number of non-batch elements.
    """
    pred = tf.convert_to_tensor(pred)
    target = tf.cast(tf.convert_to_tensor(target), pred.dtype)
    rank = _static_rank(pred, "mean_squared_error_per_example")
    feature_axes = list(range(1, rank))

    @tf.custom_gradient
    def _mse(pred, target):
        diff = pred - target
        per_example_size = tf.cast(tf.size(diff) // tf.shape(diff)[0], pred.dtype)
        losses = tf.reduce_sum(diff * diff, axis=feature_axes) / per_example_size

        def backward(dlosses):
            dlosses = tf.reshape(dlosses, [-1] + [1] * (rank - 1))  # broadcast over features
            dpred = dlosses * 2 * diff / per_example_size
            return dpred, -dpred

        return losses, backward

    return _mse(pred, target)


def svm_loss(scores, labels):
    """Multiclass SVM (hinge) loss, margin 1, mean over the batch (CS231n convention).

    scores: (N, C); labels: int (N,). loss = 1/N sum_i sum_{j != y_i} max(0, s_j - s_{y_i} + 1).
    Backward: each positive margin adds +1 to its class and -1 to the correct class, times dloss/N.
    """
    scores = tf.convert_to_tensor(scores)
    _check_logits(scores, "svm_loss")
    labels = tf.convert_to_tensor(labels)
    if not labels.dtype.is_integer:
        raise ConfigError(f"svm_loss expects integer labels of shape (N,); got dtype {labels.dtype.name}")
    work_dtype = _compute_dtype(scores.dtype)
    correct_mask = tf.one_hot(labels, tf.shape(scores)[-1], dtype=work_dtype)

    @tf.custom_gradient
    def _svm(scores):
        s = tf.cast(scores, work_dtype)
        correct_scores = tf.reduce_sum(s * correct_mask, axis=-1, keepdims=True)
        margins = tf.maximum(0.0, s - correct_scores + 1) * (1 - correct_mask)
        num_examples = tf.cast(tf.shape(scores)[0], work_dtype)
        loss = tf.reduce_sum(margins) / num_examples

        def backward(dloss):
            positive = tf.cast(margins > 0, work_dtype)  # already 0 on the correct class
            num_positive = tf.reduce_sum(positive, axis=-1, keepdims=True)
            grad = (positive - correct_mask * num_positive) * tf.cast(dloss, work_dtype) / num_examples
            return tf.cast(grad, scores.dtype)

        return tf.cast(loss, scores.dtype), backward

    return _svm(scores)


# --------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------
def keep_prob_to_rate(keep_prob):
    """Convert a keep probability p (notMNIST/Hinton convention) to a Keras drop rate 1 - p.

    `keep_prob` must be in (0, 1]; keep_prob=1 means no dropout.
    """
    keep_prob = float(keep_prob)
    if not 0.0 < keep_prob <= 1.0:
        raise ConfigError(f"keep probability must be in (0, 1]; got {keep_prob} (use e.g. 0.5)")
    return 1.0 - keep_prob


def _validate_rate(rate):
    if isinstance(rate, (int, float)) and not 0.0 <= rate < 1.0:
        raise ConfigError(
            f"dropout rate is the DROP probability and must be in [0, 1); got {rate} "
            "(for a keep probability p use keep_prob_to_rate(p))"
        )


def _stateless_seed(seed):
    """An int or a shape-(2,) integer tensor (e.g. from a keras SeedGenerator) -> int32 (2,)."""
    if isinstance(seed, int):
        return tf.constant([seed, 0], dtype=tf.int32)
    seed = tf.convert_to_tensor(seed)
    if seed.dtype != tf.int32:  # keras seeds are int64/uint32 state; fold into int32 range
        seed = tf.cast(tf.math.floormod(tf.cast(seed, tf.int64), 2**31 - 1), tf.int32)
    return seed


def dropout(x, rate, training, seed=None):
    """Inverted dropout. x: any shape; rate: DROP probability in [0, 1) (Keras convention).

    Convention: `rate` is the probability of zeroing a unit, i.e. rate = 1 - keep_prob; the
    notMNIST assignment's keep probability p converts with `keep_prob_to_rate(p)`. In training,
    kept units are scaled by 1 / (1 - rate) so the expected activation is unchanged and inference
    is the identity. With `seed` (int or shape-(2,) tensor) the mask comes from a stateless RNG, so
    the same seed gives the same mask in eager and tf.function; under XLA only for seeds of the form
    `[s, 0]` (an int seed is one): TensorFlow's XLA Philox gives other numbers for e.g. `[1, 1]`, which
    Keras' SeedGenerator produces. Masks are drawn in float32 as `uniform >= rate`. Backward: dx = dout * mask.
    """
    x = tf.convert_to_tensor(x)
    _validate_rate(rate)
    if isinstance(training, bool) or training is None:
        if not training:
            return x
    if isinstance(rate, (int, float)) and rate == 0:
        return x
    # Python floats go straight to x's dtype: tf.cast(0.3, float64) would round through float32.
    rate_t = tf.convert_to_tensor(rate, dtype=x.dtype) if isinstance(rate, (int, float)) else tf.cast(rate, x.dtype)
    if seed is None:
        uniform = tf.random.uniform(tf.shape(x), dtype=tf.float32)
    else:
        # Philox explicitly: "auto_select" gives a different stream under XLA than in eager/graph.
        uniform = tf.random.stateless_uniform(tf.shape(x), seed=_stateless_seed(seed), dtype=tf.float32, alg="philox")
    scale = 1 / (1 - rate_t)
    mask = tf.cast(uniform >= tf.cast(rate, tf.float32), x.dtype) * scale
    if not isinstance(training, bool):  # symbolic flag: the mask collapses to ones in inference
        mask = tf.where(tf.cast(training, tf.bool), mask, tf.ones_like(mask))

    @tf.custom_gradient
    def _dropout(x):
        def backward(dout):
            return dout * mask

        return x * mask, backward

    return _dropout(x)


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------
def _static_training_flag(training):
    if isinstance(training, bool):
        return training
    value = tf.get_static_value(training)
    if value is None:
        raise ConfigError("batch_norm needs `training` as a Python bool (Keras passes one in fit/predict)")
    return bool(value)


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.9, epsilon=1e-5):
    """Batch normalisation over every axis but the last (features).

    x: (N, D) or (N, ..., D); gamma, beta, running_mean, running_var: (D,).
    Returns `(out, new_running_mean, new_running_var)` in BOTH modes (in inference the running
    statistics come back unchanged), so callers need no branching.

    Training: normalise with the batch mean/(biased) variance, and update
    `running = momentum * running + (1 - momentum) * batch_stat` (CS231n; Keras uses the same form).
    Inference: normalise with the running statistics.
    Backward (training, compact CS231n form), with m the number of reduced elements per feature:
        dbeta = sum(dout), dgamma = sum(dout * xhat),
        dx = gamma / (m * std) * (m * dout - dbeta - xhat * dgamma).
    The running statistics are not differentiated.
    """
    x = tf.convert_to_tensor(x)
    gamma, beta = tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta)
    running_mean, running_var = tf.convert_to_tensor(running_mean), tf.convert_to_tensor(running_var)
    reduce_axes = list(range(_static_rank(x, "batch_norm input") - 1))
    work_dtype = _compute_dtype(x.dtype)
    training = _static_training_flag(training)

    def grads_out(dx, dgamma, dbeta):
        return tf.cast(dx, x.dtype), tf.cast(dgamma, gamma.dtype), tf.cast(dbeta, beta.dtype)

    if training:

        @tf.custom_gradient
        def _bn_train(x, gamma, beta):
            xw, g = tf.cast(x, work_dtype), tf.cast(gamma, work_dtype)
            mean = tf.reduce_mean(xw, axis=reduce_axes)
            centered = xw - mean
            var = tf.reduce_mean(centered * centered, axis=reduce_axes)
            inv_std = tf.math.rsqrt(var + epsilon)
            xhat = centered * inv_std
            out = g * xhat + tf.cast(beta, work_dtype)

            def backward(dout, _dmean, _dvar):
                dout = tf.cast(dout, work_dtype)
                m = tf.cast(tf.size(xw) // tf.shape(xw)[-1], work_dtype)
                dbeta = tf.reduce_sum(dout, axis=reduce_axes)
                dgamma = tf.reduce_sum(dout * xhat, axis=reduce_axes)
                dx = (g * inv_std / m) * (m * dout - dbeta - xhat * dgamma)
                return grads_out(dx, dgamma, dbeta)

            return (tf.cast(out, x.dtype), mean, var), backward

        out, batch_mean, batch_var = _bn_train(x, gamma, beta)
        batch_mean = tf.cast(tf.stop_gradient(batch_mean), running_mean.dtype)
        batch_var = tf.cast(tf.stop_gradient(batch_var), running_var.dtype)
        new_mean = momentum * running_mean + (1 - momentum) * batch_mean
        new_var = momentum * running_var + (1 - momentum) * batch_var
        return out, new_mean, new_var

    mean = tf.stop_gradient(tf.cast(running_mean, work_dtype))
    inv_std = tf.stop_gradient(tf.math.rsqrt(tf.cast(running_var, work_dtype) + epsilon))

    @tf.custom_gradient
    def _bn_infer(x, gamma, beta):
        xhat = (tf.cast(x, work_dtype) - mean) * inv_std
        g = tf.cast(gamma, work_dtype)
        out = g * xhat + tf.cast(beta, work_dtype)

        def backward(dout):
            dout = tf.cast(dout, work_dtype)
            # With fixed statistics the layer is a per-feature affine map.
            return grads_out(
                dout * g * inv_std,
                tf.reduce_sum(dout * xhat, axis=reduce_axes),
                tf.reduce_sum(dout, axis=reduce_axes),
            )

        return tf.cast(out, x.dtype), backward

    return _bn_infer(x, gamma, beta), running_mean, running_var


def layer_norm(x, gamma, beta, epsilon=1e-5):
    """Layer normalisation over the last (feature) axis; identical in training and inference.

    x: (N, ..., D); gamma, beta: (D,) -> out with x's shape.
    Backward per example, with D features and dxhat = dout * gamma:
        dx = 1 / (D * std) * (D * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)),
        dgamma = sum_over_batch(dout * xhat), dbeta = sum_over_batch(dout).
    """
    x = tf.convert_to_tensor(x)
    gamma, beta = tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta)
    batch_axes = list(range(_static_rank(x, "layer_norm input") - 1))
    work_dtype = _compute_dtype(x.dtype)

    @tf.custom_gradient
    def _ln(x, gamma, beta):
        xw, g = tf.cast(x, work_dtype), tf.cast(gamma, work_dtype)
        mean = tf.reduce_mean(xw, axis=-1, keepdims=True)
        centered = xw - mean
        var = tf.reduce_mean(centered * centered, axis=-1, keepdims=True)
        inv_std = tf.math.rsqrt(var + epsilon)
        xhat = centered * inv_std
        out = g * xhat + tf.cast(beta, work_dtype)

        def backward(dout):
            dout = tf.cast(dout, work_dtype)
            d = tf.cast(tf.shape(xw)[-1], work_dtype)
            dxhat = dout * g
            dx = (inv_std / d) * (
                d * dxhat
                - tf.reduce_sum(dxhat, axis=-1, keepdims=True)
                - xhat * tf.reduce_sum(dxhat * xhat, axis=-1, keepdims=True)
            )
            dgamma = tf.reduce_sum(dout * xhat, axis=batch_axes)
            dbeta = tf.reduce_sum(dout, axis=batch_axes)
            return tf.cast(dx, x.dtype), tf.cast(dgamma, gamma.dtype), tf.cast(dbeta, beta.dtype)

        return tf.cast(out, x.dtype), backward

    return _ln(x, gamma, beta)


# --------------------------------------------------------------------------------------------
# Embedding
# --------------------------------------------------------------------------------------------
def embedding_lookup(ids, table):
    """Row lookup. ids: int (N, ...) in [0, V); table: (V, D) -> (N, ..., D).

    Backward: a scatter-add of the upstream rows into a dense (V, D) gradient, so an id that
    appears k times receives the sum of its k upstream rows. Out-of-range ids are undefined
    behaviour on CPU/GPU (as with tf.gather); validate ids at the data boundary.
    """
    ids = tf.convert_to_tensor(ids)
    if not ids.dtype.is_integer:
        ids = tf.cast(ids, tf.int32)
    table = tf.convert_to_tensor(table)

    @tf.custom_gradient
    def _lookup(table):
        out = tf.gather(table, ids)

        def backward(dout):
            flat_ids = tf.reshape(ids, [-1])
            flat_rows = tf.reshape(dout, [-1, tf.shape(table)[-1]])
            return tf.math.unsorted_segment_sum(flat_rows, flat_ids, num_segments=tf.shape(table)[0])

        return out, backward

    return _lookup(table)

"""Plain forward implementations for gradient checking, differentiated by TensorFlow autodiff.

These deliberately share NO code with `tfnets.nn.ops`: they use TensorFlow's built-ins (`tf.nn.*`,
`tf.gather`, ...) or the most literal formula, so agreement with the hand-written backward passes is
evidence, not a tautology. They are for tests and `tfnets.nn.gradcheck`; use `tfnets.nn.ops` in models.
"""

import tensorflow as tf


def affine(x, w, b):
    return tf.linalg.matvec(tf.transpose(w), x) + b  # (N, D) x (D, M): row-wise w^T x + b


def relu(x):
    return tf.nn.relu(x)


def tanh(x):
    return (tf.exp(x) - tf.exp(-x)) / (tf.exp(x) + tf.exp(-x))


def sigmoid(x):
    return tf.nn.sigmoid(x)


def softmax(logits):
    return tf.nn.softmax(logits, axis=-1)


def _dense_labels(labels, logits):
    labels = tf.convert_to_tensor(labels)
    if labels.dtype.is_integer:
        return tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype)
    return tf.cast(labels, logits.dtype)


def softmax_cross_entropy_per_example(logits, labels):
    return tf.nn.softmax_cross_entropy_with_logits(labels=_dense_labels(labels, logits), logits=logits)


def softmax_cross_entropy(logits, labels):
    return tf.reduce_mean(softmax_cross_entropy_per_example(logits, labels))


def mean_squared_error(pred, target):
    return tf.reduce_mean(tf.math.squared_difference(pred, target))


def mean_squared_error_per_example(pred, target):
    sq = tf.math.squared_difference(pred, target)
    if sq.shape.rank == 1:
        return sq
    return tf.reduce_mean(tf.reshape(sq, [tf.shape(sq)[0], -1]), axis=1)


def svm_loss(scores, labels):
    correct = tf.gather(scores, labels, axis=1, batch_dims=1)[:, None]
    margins = tf.nn.relu(scores - correct + 1.0)
    # The correct class contributes exactly max(0, 1) = 1 per example; remove it.
    return (tf.reduce_sum(margins) - tf.cast(tf.shape(scores)[0], scores.dtype)) / tf.cast(
        tf.shape(scores)[0], scores.dtype
    )


def dropout_with_mask(x, keep_mask, rate):
    """Inverted dropout with an explicit 0/1 keep mask (tests build the mask independently)."""
    return x * tf.cast(keep_mask, x.dtype) / (1.0 - rate)


def batch_norm_train(x, gamma, beta, epsilon=1e-5):
    axes = list(range(x.shape.rank - 1))
    mean, var = tf.nn.moments(x, axes=axes)
    return tf.nn.batch_normalization(x, mean, var, beta, gamma, epsilon), mean, var


def batch_norm_infer(x, gamma, beta, running_mean, running_var, epsilon=1e-5):
    return tf.nn.batch_normalization(x, running_mean, running_var, beta, gamma, epsilon)


def layer_norm(x, gamma, beta, epsilon=1e-5):
    mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
    return tf.nn.batch_normalization(x, mean, var, beta, gamma, epsilon)


def embedding_lookup(ids, table):
    return tf.nn.embedding_lookup(table, ids)

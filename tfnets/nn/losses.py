"""Keras `Loss` classes built on the hand-written loss ops.

`call` returns PER-EXAMPLE losses of shape (batch,) and lets Keras apply the reduction and
sample weights. A `call` returning the batch mean would not be rescaled across replicas under
`tf.distribute` (training silently diverges from single-device training), see the pitfalls notes.
"""

import keras
import tensorflow as tf

from tfnets.nn import ops


def _class_indices_or_one_hot(y_true, logits):
    """Keras casts y_true to the loss dtype, so integer labels arrive as floats: (N,) or (N, 1).

    Returns int32 ids (N,) for sparse labels and float targets (N, C) for one-hot labels.
    """
    num_classes = logits.shape[-1]
    sparse = y_true.shape.rank == logits.shape.rank - 1 or (
        y_true.shape.rank == logits.shape.rank and y_true.shape[-1] == 1 and num_classes != 1
    )
    if sparse:
        return tf.cast(tf.reshape(y_true, [-1]), tf.int32)
    return y_true


@keras.saving.register_keras_serializable(package="tfnets")
class SoftmaxCrossEntropy(keras.losses.Loss):
    """Softmax cross-entropy with integer (N,)/(N, 1) or one-hot (N, C) labels.

    from_logits=True (default): y_pred are logits (N, C), the numerically safe choice.
    from_logits=False: y_pred are probabilities; they are clipped to [1e-7, 1] and their log is
    used as logits (softmax(log p) = p for normalised p), so the hand-written op still applies.
    """

    def __init__(self, from_logits=True, reduction="sum_over_batch_size", name="softmax_cross_entropy", **kwargs):
        super().__init__(reduction=reduction, name=name, **kwargs)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        logits = y_pred if self.from_logits else tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1.0))
        labels = _class_indices_or_one_hot(y_true, logits)
        return ops.softmax_cross_entropy_per_example(logits, labels)

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits)
        return config


@keras.saving.register_keras_serializable(package="tfnets")
class MeanSquaredError(keras.losses.Loss):
    """Mean squared error, averaged over each example's elements; (N, ...) -> per-example (N,)."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", **kwargs):
        super().__init__(reduction=reduction, name=name, **kwargs)

    def call(self, y_true, y_pred):
        if y_true.shape.rank == y_pred.shape.rank - 1:  # (N,) targets for (N, 1) predictions
            y_true = tf.reshape(y_true, tf.shape(y_pred))
        return ops.mean_squared_error_per_example(y_pred, y_true)

"""Metrics for models whose output is one tanh unit with -1/+1 targets (the cat-vs-car MLP).

The class is the sign of the output: `> 0` means class 1 (+1), anything else class 0 (-1) -- the same
rule `tfnets.experiment.export` uses for `output="tanh"`, so a reported accuracy is what `apps.predict` would get.

    model.compile(loss=MeanSquaredError(), metrics=[SignAccuracy(), ClassificationError()])
    # logs: loss, accuracy, mce (and val_/test_ versions)

`ClassificationError` is the assignment's MCE: the percentage of misclassified examples (0..100).
For top-k accuracy of a softmax model use `keras.metrics.SparseTopKCategoricalAccuracy`.
"""

import keras
from keras import ops


def _signs_agree(y_true, y_pred):
    """(N,) or (N, 1) targets in {-1, +1} and tanh outputs -> (N,) float: 1 where the signs agree."""
    y_true = ops.reshape(y_true, (-1,))
    y_pred = ops.reshape(y_pred, (-1,))
    predicted_positive = ops.greater(y_pred, 0)
    target_positive = ops.greater(y_true, 0)
    return ops.cast(ops.equal(predicted_positive, target_positive), "float32")


def sign_accuracy(y_true, y_pred):
    """Per-example correctness (1.0 / 0.0) of `sign(y_pred)` against -1/+1 targets, shape (N,)."""
    return _signs_agree(y_true, y_pred)


def classification_error_percent(y_true, y_pred):
    """Per-example misclassification in percent (100.0 / 0.0); its mean is the MCE in %."""
    return 100.0 * (1.0 - _signs_agree(y_true, y_pred))


@keras.saving.register_keras_serializable(package="tfnets")
class SignAccuracy(keras.metrics.MeanMetricWrapper):
    """Fraction of examples whose output sign matches the -1/+1 target (logged as `accuracy`)."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(fn=sign_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="tfnets")
class ClassificationError(keras.metrics.MeanMetricWrapper):
    """Mean classification error in percent, the assignment's MCE (logged as `mce`)."""

    def __init__(self, name="mce", dtype=None):
        super().__init__(fn=classification_error_percent, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

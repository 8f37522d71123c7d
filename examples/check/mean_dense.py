"""BUG: the weight and bias gradients average over the batch where the forward (and so the loss) sums.

`python -m tfnets.check examples/check/mean_dense.py:MeanDense --kwargs '{"units": 8}'` fails the gradient check
("1/4 of the numbers"), batch consistency and two replicas (a replica averages over its half of the batch).
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="check_examples")
class MeanDense(keras.layers.Layer):
    """x (N, D) -> x @ kernel + bias (N, units)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        @tf.custom_gradient
        def dense(x, w, b):
            def backward(dout):
                dx = tf.matmul(dout, w, transpose_b=True)  # (N, M) @ (M, D)
                n = tf.cast(tf.shape(x)[0], x.dtype)
                dw = tf.matmul(x, dout, transpose_a=True) / n  # BUG: the loss already averages; this divides again
                db = tf.reduce_mean(dout, axis=0)  # BUG: mean where the broadcast bias sums
                return dx, dw, db

            return tf.matmul(x, w) + b, backward

        return dense(inputs, self.kernel.value, self.bias.value)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}

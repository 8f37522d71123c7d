"""A correct hand-written fully connected layer: `python -m tfnets.check examples/check/good_dense.py:GoodDense
--kwargs '{"units": 8}'` passes every check.

The weights enter the `tf.custom_gradient` function as arguments (tensors read with `.value`), so the backward
returns one gradient per argument and no `variables=` bookkeeping is needed.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="check_examples")
class GoodDense(keras.layers.Layer):
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
                dw = tf.matmul(x, dout, transpose_a=True)  # (D, N) @ (N, M): a SUM over the batch
                db = tf.reduce_sum(dout, axis=0)  # b is broadcast over the batch: its gradient sums
                return dx, dw, db

            return tf.matmul(x, w) + b, backward

        return dense(inputs, self.kernel.value, self.bias.value)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}

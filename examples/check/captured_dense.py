"""BUG: the bias is read outside the `tf.custom_gradient` function and captured by it instead of being one of its
arguments: the backward cannot return its gradient, so none reaches the bias variable and it never updates. No
error, no warning: TensorFlow gives the bias a `None` gradient and Keras' optimizers skip it.

`python -m tfnets.check examples/check/captured_dense.py:CapturedDense --kwargs '{"units": 8}'` fails "variables
reached" (and the gradient check, where the bias gradient is missing). The fix: pass the bias as an argument, or
accept `variables=None` in the backward and return its gradient there.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="check_examples")
class CapturedDense(keras.layers.Layer):
    """x (N, D) -> x @ kernel + bias (N, units)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        bias = tf.convert_to_tensor(self.bias)  # BUG: a tensor read outside, captured inside: no gradient path

        @tf.custom_gradient
        def dense(x, w):
            def backward(dout):
                dx = tf.matmul(dout, w, transpose_b=True)  # (N, M) @ (M, D)
                dw = tf.matmul(x, dout, transpose_a=True)  # (D, N) @ (N, M): a SUM over the batch
                return dx, dw

            return tf.matmul(x, w) + bias, backward  # `bias` is captured, not an argument

        return dense(inputs, self.kernel.value)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}

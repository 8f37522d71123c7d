"""Plain NumPy reference for the notMNIST MLP (ECE421 part 1): 784 -> H (ReLU) -> 10 (softmax).

An independent implementation (no TensorFlow) used two ways:
* tests cross-check the TensorFlow/hand-written-backprop model against it from identical weights;
* the benchmark uses it as the baseline to beat, so it is written for speed: float32 throughout,
  BLAS matmuls writing into preallocated buffers, in-place element-wise ops, no loop over samples.

Network and training, as in the assignment:
    h = relu(x @ W1 + b1)              x: (N, 784)   W1: (784, H)  b1: (H,)
    logits = h @ W2 + b2               W2: (H, 10)   b2: (10,)
    loss = mean_n( -log softmax(logits_n)[y_n] )
    v <- gamma * v + alpha * grad;  w <- w - v       (gamma = 0.9; v starts at zero)
Xavier init: zero-mean Gaussian with variance 2 / (fan_in + fan_out) (not truncated, unlike
`keras.initializers.GlorotNormal`), zero biases.
"""

import numpy as np

from tfnets.errors import DataError

__all__ = ["NumpyMLP", "xavier_normal"]

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def xavier_normal(rng, fan_in, fan_out, dtype=np.float32):
    """(fan_in, fan_out) Gaussian weights with mean 0 and variance 2 / (fan_in + fan_out)."""
    std = np.sqrt(2.0 / (fan_in + fan_out))
    w = rng.standard_normal((fan_in, fan_out), dtype=np.float64) * std
    return w.astype(dtype)


class NumpyMLP:
    """784 -> hidden_units (ReLU) -> num_classes, softmax cross-entropy, momentum GD.

    Attributes:
      params: dict W1 (D, H), b1 (H,), W2 (H, C), b2 (C,), all `dtype`.
      velocities: dict of the same shapes, the notMNIST-form velocity `v` (starts at zero).
    """

    def __init__(self, input_dim=784, hidden_units=1000, num_classes=10, seed=0, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self.input_dim, self.hidden_units, self.num_classes = input_dim, hidden_units, num_classes
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": xavier_normal(rng, input_dim, hidden_units, self.dtype),
            "b1": np.zeros(hidden_units, self.dtype),
            "W2": xavier_normal(rng, hidden_units, num_classes, self.dtype),
            "b2": np.zeros(num_classes, self.dtype),
        }
        self.velocities = {k: np.zeros_like(p) for k, p in self.params.items()}
        self._grads = {k: np.empty_like(p) for k, p in self.params.items()}
        self._buffers = {}  # batch size -> (hidden, probs) work arrays, reused across steps

    # ---- parameters -------------------------------------------------------------------------

    def set_params(self, params, reset_velocities=True):
        """Copy weights in (e.g. from a Keras model) so both start from identical values.

        `params` maps W1/b1/W2/b2 to arrays of the shapes in `self.params`.
        """
        for name in PARAM_NAMES:
            if name not in params:
                raise DataError(f"set_params: missing {name!r}; pass a dict with keys {PARAM_NAMES}")
            value = np.asarray(params[name])
            if value.shape != self.params[name].shape:
                raise DataError(f"set_params: {name} has shape {value.shape}, expected {self.params[name].shape}")
            self.params[name][...] = value
        if reset_velocities:
            for v in self.velocities.values():
                v.fill(0)

    def get_params(self):
        """A copy of the weights, dict W1/b1/W2/b2."""
        return {k: p.copy() for k, p in self.params.items()}

    # ---- forward / backward -------------------------------------------------------------------

    def _inputs(self, x, y=None):
        x = np.asarray(x)
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.input_dim:
            raise DataError(f"inputs have {x.shape[1]} features per sample, expected {self.input_dim}")
        x = np.ascontiguousarray(x, dtype=self.dtype)  # no copy when already float32 C-order
        if y is None:
            return x, None
        y = np.asarray(y)
        if y.ndim == 2:  # one-hot
            y = y.argmax(axis=1)
        if y.shape != (x.shape[0],):
            raise DataError(f"labels have shape {y.shape}, expected ({x.shape[0]},) or one-hot")
        return x, y.astype(np.intp, copy=False)

    def _work(self, n):
        if n not in self._buffers:
            self._buffers = {
                n: (np.empty((n, self.hidden_units), self.dtype), np.empty((n, self.num_classes), self.dtype))
            }
        return self._buffers[n]

    def _forward_into(self, x, hidden, logits):
        p = self.params
        np.matmul(x, p["W1"], out=hidden)
        hidden += p["b1"]
        np.maximum(hidden, 0, out=hidden)
        np.matmul(hidden, p["W2"], out=logits)
        logits += p["b2"]

    def forward(self, x):
        """Logits (N, num_classes) for inputs x (N, 784) or (N, 28, 28)."""
        x, _ = self._inputs(x)
        hidden = np.empty((x.shape[0], self.hidden_units), self.dtype)
        logits = np.empty((x.shape[0], self.num_classes), self.dtype)
        self._forward_into(x, hidden, logits)
        return logits

    @staticmethod
    def _softmax_xent_(logits, y):
        """Turn `logits` IN PLACE into softmax probabilities; return the mean cross-entropy."""
        n = logits.shape[0]
        logits -= logits.max(axis=1, keepdims=True)  # stable: largest logit becomes 0
        picked = logits[np.arange(n), y].astype(np.float64)
        np.exp(logits, out=logits)
        sums = logits.sum(axis=1, keepdims=True)
        logits /= sums
        # -log p_y = log(sum exp) - (logit_y - max); never log(0) since sums >= 1.
        return float(np.mean(np.log(sums[:, 0], dtype=np.float64) - picked))

    def loss_and_grads(self, x, y):
        """Mean softmax cross-entropy and its gradients.

        Args:
          x: (N, 784) or (N, 28, 28) inputs; y: (N,) integer labels or (N, C) one-hot.
        Returns:
          (loss: float, grads: dict W1/b1/W2/b2). The grads arrays are internal buffers that the
          next call overwrites; copy them to keep them.
        """
        x, y = self._inputs(x, y)
        n = x.shape[0]
        hidden, probs = self._work(n)
        self._forward_into(x, hidden, probs)
        loss = self._softmax_xent_(probs, y)
        dlogits = probs  # reuse: (softmax - onehot) / N
        dlogits[np.arange(n), y] -= 1
        dlogits *= 1.0 / n
        g, p = self._grads, self.params
        np.matmul(hidden.T, dlogits, out=g["W2"])
        np.sum(dlogits, axis=0, out=g["b2"])
        dhidden = np.matmul(dlogits, p["W2"].T)  # (N, H)
        dhidden *= hidden > 0  # ReLU: pass gradient where the unit was active
        np.matmul(x.T, dhidden, out=g["W1"])
        np.sum(dhidden, axis=0, out=g["b1"])
        return loss, g

    def train_step(self, x, y, learning_rate, momentum=0.9):
        """One momentum step `v <- momentum*v + learning_rate*grad; w <- w - v`.

        Returns the loss at the weights BEFORE the update.
        """
        loss, grads = self.loss_and_grads(x, y)
        for name, w in self.params.items():
            v, g = self.velocities[name], grads[name]
            v *= momentum
            g *= learning_rate  # grads are scratch buffers, safe to scale in place
            v += g
            w -= v
        return loss

    def evaluate(self, x, y, chunk_size=8192):
        """(mean cross-entropy loss, accuracy) over (x, y), computed in chunks to bound memory."""
        x, y = self._inputs(x, y)
        total_loss, correct = 0.0, 0
        for start in range(0, x.shape[0], chunk_size):
            xs, ys = x[start : start + chunk_size], y[start : start + chunk_size]
            logits = self.forward(xs)
            correct += int(np.count_nonzero(logits.argmax(axis=1) == ys))
            total_loss += self._softmax_xent_(logits, ys) * xs.shape[0]
        n = x.shape[0]
        return total_loss / n, correct / n

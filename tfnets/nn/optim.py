"""Update rules: pure functions plus Keras optimizers built on them.

The pure functions follow CS231n's `optim.py` conventions and work on NumPy arrays and on
TensorFlow tensors alike (anything with arithmetic operators; `sqrt` is dispatched to NumPy or
`keras.ops`). They never modify their inputs: each returns the next weights and the next state.

    sgd(w, dw, learning_rate=1e-2) -> next_w
    sgd_momentum(w, dw, velocity, learning_rate=1e-2, momentum=0.9) -> (next_w, next_velocity)
    rmsprop(w, dw, cache, learning_rate=1e-2, decay_rate=0.99, epsilon=1e-8) -> (next_w, next_cache)
    adam(w, dw, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8)
        -> (next_w, next_m, next_v, next_t)

A solver can drive any rule generically through `UPDATE_RULES`, `init_state` and `step`:

    state = init_state("adam", w)
    w, state = step("adam", w, dw, state, learning_rate=1e-3)

The Keras optimizers `SGD`, `SGDMomentum`, `RMSProp` and `Adam` call these same functions in
`update_step`, so `model.compile(optimizer=tfnets.nn.optim.Adam(1e-4))` trains with exactly the
formulas above (graph mode, `jit_compile=True` and learning-rate schedules included).

Momentum forms used by the assignments (both map exactly onto `sgd_momentum`):

* notMNIST (ECE421): `v <- gamma*v + alpha*grad; w <- w - v`. This is `sgd_momentum` with
  `momentum=gamma`, `learning_rate=alpha` and `velocity = -v` (the sign of the velocity flips;
  the weights are identical step for step). Use `SGDMomentum.from_notmnist_form(alpha, gamma)`.
* cat-vs-car: `D <- grad_sum + beta*D; w <- w - eta*D/batch` where `grad_sum` is the gradient
  SUMMED over the batch. This is `sgd_momentum` with `momentum=beta`,
  `learning_rate=eta/batch` on the summed gradient, and `velocity = -(eta/batch)*D`. Keras losses
  average over the batch (their gradient is `grad_sum/batch`), so with a Keras loss the same
  trajectory needs `learning_rate=eta`. `SGDMomentum.from_cat_vs_car_form(eta, beta, batch_size,
  summed_gradients=False)` does the conversion for either case.
"""

import keras
import numpy as np
from keras import ops

from tfnets.errors import ConfigError

__all__ = [
    "sgd",
    "sgd_momentum",
    "rmsprop",
    "adam",
    "UPDATE_RULES",
    "init_state",
    "step",
    "SGD",
    "SGDMomentum",
    "RMSProp",
    "Adam",
]


# --------------------------------------------------------------------------------------------
# Pure update rules
# --------------------------------------------------------------------------------------------


def _is_numpy(x):
    return isinstance(x, (np.ndarray, np.generic, float, int))


def _sqrt(x):
    """Element-wise square root that keeps NumPy inputs in NumPy (and their dtype)."""
    return np.sqrt(x) if _is_numpy(x) else ops.sqrt(x)


def _zeros_like(x):
    return np.zeros_like(x) if _is_numpy(x) else ops.zeros_like(x)


def sgd(w, dw, learning_rate=1e-2):
    """Vanilla gradient descent: `next_w = w - learning_rate * dw`.

    Args:
      w: weights, any shape (NumPy array or tensor).
      dw: gradient of the loss w.r.t. `w`, same shape.
    Returns:
      next_w, same shape as `w`.
    """
    return w - learning_rate * dw


def sgd_momentum(w, dw, velocity, learning_rate=1e-2, momentum=0.9):
    """Gradient descent with (heavy-ball) momentum, CS231n convention.

        v = momentum * v - learning_rate * dw
        next_w = w + v

    The velocity points downhill (it holds minus the step). The notMNIST form
    `v <- gamma*v + alpha*grad; w <- w - v` is this rule with momentum=gamma,
    learning_rate=alpha and velocity=-v. The cat-vs-car form `D <- grad_sum + beta*D;
    w <- w - eta*D/batch` is this rule with momentum=beta, learning_rate=eta/batch applied to the
    summed gradient, and velocity=-(eta/batch)*D.

    Args:
      w, dw, velocity: same shape; `velocity` starts at zeros.
    Returns:
      (next_w, next_velocity).
    """
    next_velocity = momentum * velocity - learning_rate * dw
    return w + next_velocity, next_velocity


def rmsprop(w, dw, cache, learning_rate=1e-2, decay_rate=0.99, epsilon=1e-8):
    """RMSProp: scale the step by a running RMS of the gradient.

        cache = decay_rate * cache + (1 - decay_rate) * dw**2
        next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)

    Returns:
      (next_w, next_cache); `cache` starts at zeros, same shape as `w`.
    """
    next_cache = decay_rate * cache + (1 - decay_rate) * (dw * dw)
    next_w = w - learning_rate * dw / (_sqrt(next_cache) + epsilon)
    return next_w, next_cache


def adam(w, dw, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """Adam (Kingma & Ba, 2015, Algorithm 1) with epsilon added to the bias-corrected RMS.

        t = t + 1
        m = beta1 * m + (1 - beta1) * dw;       m_hat = m / (1 - beta1**t)
        v = beta2 * v + (1 - beta2) * dw**2;    v_hat = v / (1 - beta2**t)
        next_w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    Difference from `keras.optimizers.Adam`: Keras uses the paper's "efficient" form with an
    "epsilon hat": `lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)` and
    `w -= lr_t * m / (sqrt(v) + epsilon)`, i.e. epsilon is added to the UNcorrected sqrt(v).
    That equals this rule with a time-varying `epsilon / sqrt(1 - beta2**t)` (about 31.6x
    larger at t=1, tending to epsilon). The two agree when epsilon << sqrt(v_hat) and differ
    noticeably for large epsilon (e.g. 1e-1 or 1.0) or tiny gradients in the first steps.

    Args:
      w, dw, m, v: same shape; `m`, `v` start at zeros.
      t: number of updates done so far (starts at 0); a Python int or a scalar tensor.
    Returns:
      (next_w, next_m, next_v, next_t).
    """
    next_t = t + 1
    next_m = beta1 * m + (1 - beta1) * dw
    next_v = beta2 * v + (1 - beta2) * (dw * dw)
    m_hat = next_m / (1 - beta1**next_t)
    v_hat = next_v / (1 - beta2**next_t)
    next_w = w - learning_rate * m_hat / (_sqrt(v_hat) + epsilon)
    return next_w, next_m, next_v, next_t


UPDATE_RULES = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "rmsprop": rmsprop,
    "adam": adam,
}

# Names of each rule's state arguments, in the order the pure function takes/returns them.
_STATE_NAMES = {
    "sgd": (),
    "sgd_momentum": ("velocity",),
    "rmsprop": ("cache",),
    "adam": ("m", "v", "t"),
}


def _check_rule(rule):
    if rule not in UPDATE_RULES:
        raise ConfigError(f"unknown update rule {rule!r}; choose one of {', '.join(sorted(UPDATE_RULES))}")


def init_state(rule, w):
    """Zero state for `rule` on weights shaped like `w`: a dict keyed by the state's names.

    sgd -> {}, sgd_momentum -> {"velocity"}, rmsprop -> {"cache"}, adam -> {"m", "v", "t": 0}.
    """
    _check_rule(rule)
    return {name: 0 if name == "t" else _zeros_like(w) for name in _STATE_NAMES[rule]}


def step(rule, w, dw, state, **hparams):
    """Apply update rule `rule` once. Returns (next_w, next_state); inputs are not modified.

    `hparams` are the rule's keyword arguments (learning_rate, momentum, ...).
    """
    _check_rule(rule)
    names = _STATE_NAMES[rule]
    try:
        out = UPDATE_RULES[rule](w, dw, *(state[n] for n in names), **hparams)
    except TypeError as err:  # an unknown hyperparameter name
        raise ConfigError(f"bad hyperparameters for update rule {rule!r}: {err}") from None
    if not names:
        return out, {}
    return out[0], dict(zip(names, out[1:]))


# --------------------------------------------------------------------------------------------
# Keras optimizers built on the pure rules
# --------------------------------------------------------------------------------------------


def _check_range(name, value, low, high):
    if not low <= value < high:
        raise ConfigError(f"{name} must be in [{low}, {high}), got {value}")
    return float(value)


class _PureRuleOptimizer(keras.optimizers.Optimizer):
    """Base: slot variables per model variable, update computed by a pure rule."""

    _slot_names = ()

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # One list per state slot, indexed like `variables` (see `_get_variable_index`).
        self._slots = {
            name: [self.add_variable_from_reference(v, name=name) for v in variables] for name in self._slot_names
        }

    def _slot(self, name, variable):
        return self._slots[name][self._get_variable_index(variable)]

    def _tensors(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        return (
            ops.convert_to_tensor(variable),
            ops.cast(gradient, dtype),
            ops.cast(learning_rate, dtype),
        )


@keras.saving.register_keras_serializable(package="tfnets")
class SGD(_PureRuleOptimizer):
    """Plain gradient descent via `tfnets.nn.optim.sgd` (`w <- w - learning_rate * grad`)."""

    def __init__(self, learning_rate=1e-2, name="tfnets_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        w, dw, lr = self._tensors(gradient, variable, learning_rate)
        self.assign(variable, sgd(w, dw, learning_rate=lr))


@keras.saving.register_keras_serializable(package="tfnets")
class SGDMomentum(_PureRuleOptimizer):
    """Momentum SGD via `tfnets.nn.optim.sgd_momentum` (`v = momentum*v - lr*grad; w += v`).

    The assignments' forms convert through the class methods:

    * `from_notmnist_form(alpha, gamma)`: `v <- gamma*v + alpha*grad; w <- w - v`
      -> `SGDMomentum(learning_rate=alpha, momentum=gamma)` (its velocity slot holds -v).
    * `from_cat_vs_car_form(eta, beta, batch_size, summed_gradients=False)`:
      `D <- grad_sum + beta*D; w <- w - eta*D/batch`. Keras losses average over the batch, so the
      gradient Keras hands over is already grad_sum/batch and the rule is
      `SGDMomentum(learning_rate=eta, momentum=beta)`; a loss that SUMS over the batch needs
      `learning_rate=eta/batch_size` instead (`summed_gradients=True`).
    """

    _slot_names = ("velocity",)

    def __init__(self, learning_rate=1e-2, momentum=0.9, name="tfnets_sgd_momentum", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = _check_range("momentum", momentum, 0.0, 1.0)

    @classmethod
    def from_notmnist_form(cls, alpha, gamma=0.9, **kwargs):
        """notMNIST `v <- gamma*v + alpha*grad; w <- w - v` (same weights step for step)."""
        return cls(learning_rate=alpha, momentum=gamma, **kwargs)

    @classmethod
    def from_cat_vs_car_form(cls, eta, beta, batch_size, summed_gradients=False, **kwargs):
        """cat-vs-car `D <- grad_sum + beta*D; w <- w - eta*D/batch` (same weights).

        `summed_gradients=False` (Keras losses, mean over the batch): learning_rate = eta.
        `summed_gradients=True` (a loss summed over the batch): learning_rate = eta/batch_size.
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size}")
        lr = eta / batch_size if summed_gradients else eta
        return cls(learning_rate=lr, momentum=beta, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        w, dw, lr = self._tensors(gradient, variable, learning_rate)
        velocity = self._slot("velocity", variable)
        next_w, next_velocity = sgd_momentum(
            w, dw, ops.convert_to_tensor(velocity), learning_rate=lr, momentum=self.momentum
        )
        self.assign(velocity, next_velocity)
        self.assign(variable, next_w)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum})
        return config


@keras.saving.register_keras_serializable(package="tfnets")
class RMSProp(_PureRuleOptimizer):
    """RMSProp via `tfnets.nn.optim.rmsprop` (CS231n form: epsilon outside the sqrt, no momentum).

    Note `keras.optimizers.RMSprop` defaults to rho=0.9 and epsilon=1e-7; here decay_rate=0.99,
    epsilon=1e-8 as in the assignments.
    """

    _slot_names = ("cache",)

    def __init__(self, learning_rate=1e-2, decay_rate=0.99, epsilon=1e-8, name="tfnets_rmsprop", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.decay_rate = _check_range("decay_rate", decay_rate, 0.0, 1.0)
        self.epsilon = float(epsilon)

    def update_step(self, gradient, variable, learning_rate):
        w, dw, lr = self._tensors(gradient, variable, learning_rate)
        cache = self._slot("cache", variable)
        next_w, next_cache = rmsprop(
            w,
            dw,
            ops.convert_to_tensor(cache),
            learning_rate=lr,
            decay_rate=self.decay_rate,
            epsilon=self.epsilon,
        )
        self.assign(cache, next_cache)
        self.assign(variable, next_w)

    def get_config(self):
        config = super().get_config()
        config.update({"decay_rate": self.decay_rate, "epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package="tfnets")
class Adam(_PureRuleOptimizer):
    """Adam via `tfnets.nn.optim.adam`: epsilon added to sqrt of the BIAS-CORRECTED second moment.

    `keras.optimizers.Adam` instead adds epsilon to the uncorrected sqrt(v) (the paper's
    "epsilon hat" form, lr_t = lr*sqrt(1-beta2^t)/(1-beta1^t)); the two match when epsilon is
    negligible next to sqrt(v_hat) and differ for large epsilon. See `tfnets.nn.optim.adam`.
    """

    _slot_names = ("m", "v")

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, name="tfnets_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta1 = _check_range("beta1", beta1, 0.0, 1.0)
        self.beta2 = _check_range("beta2", beta2, 0.0, 1.0)
        self.epsilon = float(epsilon)

    def update_step(self, gradient, variable, learning_rate):
        w, dw, lr = self._tensors(gradient, variable, learning_rate)
        m, v = self._slot("m", variable), self._slot("v", variable)
        # `iterations` counts the updates already applied; the base class increments it after
        # all variables are updated, so it is `t` before this step (adam adds 1 itself).
        t = ops.cast(self.iterations, variable.dtype)
        next_w, next_m, next_v, _ = adam(
            w,
            dw,
            ops.convert_to_tensor(m),
            ops.convert_to_tensor(v),
            t,
            learning_rate=lr,
            beta1=self.beta1,
            beta2=self.beta2,
            epsilon=self.epsilon,
        )
        self.assign(m, next_m)
        self.assign(v, next_v)
        self.assign(variable, next_w)

    def get_config(self):
        config = super().get_config()
        config.update({"beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon})
        return config

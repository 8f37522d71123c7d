"""Gradient checking: hand-written backward passes vs numbers and vs autodiff.

`check_gradients(f, inputs, reference_f)` compares the gradient TensorFlow obtains through `f`
(which uses the hand-written `tf.custom_gradient` backward passes of `tfnets.nn.ops`) with
  (a) central differences of `f` in float64, and
  (b) TensorFlow autodiff of an independent plain forward `reference_f` (see `tfnets.nn.reference_ops`),
and reports the max elementwise relative error (CS231n `rel_error`) for every input. Pass model
weights as inputs to get a per-weight report.

Non-scalar outputs are reduced to a scalar `sum(f(inputs) * upstream)` with a fixed random
`upstream`, which checks the full vector-Jacobian product rather than just its sum.
"""

import numpy as np
import tensorflow as tf

REL_ERROR_FLOOR = 1e-12


def rel_errors(a, b, floor=REL_ERROR_FLOOR):
    """|a_i - b_i| / max(floor, |a_i| + |b_i|) elementwise, an array shaped like `a`.

    `floor` keeps entries that are zero up to round-off in both from counting as 100 % wrong; a caller that
    knows the gradient's scale can raise it (e.g. 1e-6 of the largest entry) so that tiny entries are judged by
    their absolute error instead.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ {a.shape} vs {b.shape}")
    return np.abs(a - b) / np.maximum(floor, np.abs(a) + np.abs(b))


def rel_error(a, b, floor=REL_ERROR_FLOOR):
    """max_i |a_i - b_i| / max(1e-12, |a_i| + |b_i|)  (CS231n elementwise relative error)."""
    errors = rel_errors(a, b, floor)
    return float(np.max(errors)) if errors.size else 0.0


def worst_entry(a, b, floor=REL_ERROR_FLOOR):
    """(max relative error, the index of the entry where it occurs as a tuple); `()` for an empty array."""
    errors = rel_errors(a, b, floor)
    if not errors.size:
        return 0.0, ()
    index = np.unravel_index(int(np.argmax(errors)), errors.shape)
    return float(errors[index]), tuple(int(i) for i in index)


def _is_differentiable(value):
    return np.issubdtype(np.asarray(value).dtype, np.floating)


def _as_float64_inputs(inputs):
    """Floating inputs become float64 NumPy copies; integer inputs (labels, ids) pass through."""
    return [np.array(v, dtype=np.float64) if _is_differentiable(v) else np.asarray(v) for v in inputs]


def _scalarize(f, upstream):
    """g(inputs) = sum(f(inputs) * upstream): a scalar whose gradient is the VJP with `upstream`."""

    def scalar_f(*tensors):
        out = f(*tensors)
        if upstream is None:
            return tf.reduce_sum(out)
        return tf.reduce_sum(out * tf.cast(upstream, out.dtype))

    return scalar_f


def numeric_gradient(f, inputs, eps=1e-6, upstream=None, stencil=2, kinks=None):
    """Central-difference gradients of sum(f(*inputs) * upstream) in float64.

    Each output element is differenced before the sum, so a large output element (e.g. an L2 term returned
    beside a small data loss) cannot swamp the small differences of the others with its rounding.

    f: callable taking len(inputs) tensors. inputs: list of arrays; floating ones are perturbed one
    element at a time by +-eps, integer ones (labels, ids) are left alone and get `None`.
    upstream: array shaped like f's output (None: all ones). Returns a list of arrays / None.
    stencil: 2 -> (f(x+h) - f(x-h)) / 2h, error O(h^2) + O(1e-16 / h) round-off (CS231n);
        4 -> (8 (f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))) / 12h, error O(h^4), which allows a larger h
        (e.g. 1e-3) and so ~100x less round-off: use it when gradients have tiny elements, whose
        elementwise relative error the 2-point formula's ~1e-10 absolute noise would dominate.
        Inputs must then stay differentiable within +-2h (e.g. ReLU pre-activations away from 0).
    kinks: None, or a list that receives `(input index, entry index)` for every entry whose one-sided
        differences (f(x+h) - f(x)) / h and (f(x) - f(x-h)) / h disagree by more than 1e-3 of the larger
        gradient: the function has a kink (ReLU at 0, a max tie) within +-h there, and the central difference
        is an average of two slopes (stencil 2 only; costs one more evaluation per input).
    """
    if stencil not in (2, 4):
        raise ValueError(f"stencil must be 2 or 4; got {stencil}")
    inputs = _as_float64_inputs(inputs)

    def evaluate():
        """The output times `upstream`, elementwise (summed only after differencing)."""
        out = np.asarray(f(*[tf.constant(v) for v in inputs]), np.float64)
        return out if upstream is None else out * np.asarray(upstream, np.float64)

    if kinks is not None and stencil != 2:
        raise ValueError("kink detection needs stencil=2")
    grads = []
    for position, value in enumerate(inputs):
        if not _is_differentiable(value):
            grads.append(None)
            continue
        grad = np.zeros_like(value)
        gaps = np.zeros_like(value).reshape(-1)
        centre = evaluate() if kinks is not None else None
        flat_value, flat_grad = value.reshape(-1), grad.reshape(-1)  # views into the arrays
        for i in range(flat_value.size):
            original = flat_value[i]

            def shifted(step):
                flat_value[i] = original + step
                return evaluate()

            if stencil == 2:
                up, down = shifted(eps), shifted(-eps)
                flat_grad[i] = np.sum(up - down) / (2 * eps)
                if centre is not None:
                    gaps[i] = abs(np.sum((up - centre) - (centre - down))) / eps
            else:
                near, far = shifted(eps) - shifted(-eps), shifted(2 * eps) - shifted(-2 * eps)
                flat_grad[i] = np.sum(8 * near - far) / (12 * eps)
            flat_value[i] = original
        if centre is not None:
            scale = max(float(np.max(np.abs(flat_grad), initial=0.0)), 1e-12)
            kinks.extend((position, np.unravel_index(i, value.shape)) for i in np.flatnonzero(gaps > 1e-3 * scale))
        grads.append(grad)
    return grads


def autodiff_gradient(f, inputs, upstream=None):
    """Gradients of sum(f(*inputs) * upstream) from tf.GradientTape (float64; None for ints)."""
    tensors = [tf.constant(v) for v in _as_float64_inputs(inputs)]
    watched = [t for t in tensors if t.dtype.is_floating]
    with tf.GradientTape() as tape:
        tape.watch(watched)
        value = _scalarize(f, upstream)(*tensors)
    grads = iter(tape.gradient(value, watched))
    out = []
    for t in tensors:
        if t.dtype.is_floating:
            g = next(grads)
            out.append(np.zeros(t.shape) if g is None else tf.convert_to_tensor(g).numpy())
        else:
            out.append(None)
    return out


def check_gradients(f, inputs, reference_f=None, upstream=None, names=None, eps=1e-6, seed=0, wrt=None, stencil=2):
    """Compare the hand-written gradients of `f` with numeric and reference-autodiff gradients.

    f: callable(*tensors) -> tensor, built from `tfnets.nn.ops` (custom gradients).
    inputs: list of arrays (floating ones are checked; integer labels/ids are skipped).
    reference_f: optional independent plain implementation with the same signature.
    upstream: array shaped like f's output; default a fixed standard-normal draw (seeded).
    names: labels for the report (default "input_0", ...).
    wrt: indices of the inputs to check (default: every floating input). Leave out floating inputs
        the op treats as constants, e.g. one-hot labels.
    eps, stencil: finite-difference step and formula, see `numeric_gradient`.
    Returns {name: {"numeric": max_rel_error, "reference": max_rel_error or None}} for every
    floating input.
    """
    inputs = _as_float64_inputs(inputs)
    if upstream is None:
        out_shape = np.shape(f(*[tf.constant(v) for v in inputs]))
        upstream = np.random.default_rng(seed).standard_normal(out_shape)
    names = names or [f"input_{i}" for i in range(len(inputs))]
    analytic = autodiff_gradient(f, inputs, upstream)
    numeric = numeric_gradient(f, inputs, eps=eps, upstream=upstream, stencil=stencil)
    reference = autodiff_gradient(reference_f, inputs, upstream) if reference_f else [None] * len(inputs)
    report = {}
    for index, (name, a, n, r) in enumerate(zip(names, analytic, numeric, reference)):
        if a is None or (wrt is not None and index not in wrt):
            continue
        report[name] = {"numeric": rel_error(a, n), "reference": None if r is None else rel_error(a, r)}
    return report


def max_errors(report):
    """(max numeric error, max reference error) over all inputs of a `check_gradients` report."""
    numeric = max(entry["numeric"] for entry in report.values())
    refs = [entry["reference"] for entry in report.values() if entry["reference"] is not None]
    return numeric, (max(refs) if refs else None)


def format_report(report, title="gradient check"):
    """A small aligned table: one line per input with both relative errors."""
    lines = [f"{title}:", f"  {'input':<16} {'vs numeric':>12} {'vs autodiff':>12}"]
    for name, entry in report.items():
        ref = "-" if entry["reference"] is None else f"{entry['reference']:.2e}"
        lines.append(f"  {name:<16} {entry['numeric']:>12.2e} {ref:>12}")
    return "\n".join(lines)

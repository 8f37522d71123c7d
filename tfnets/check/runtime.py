"""Checks 1, 5, 6: the forward pass, the same numbers in a graph and under XLA, and mixed precision.

These run in float32 (and float16/bfloat16), the dtypes training uses, so their bounds are float32 round-off
(graph, XLA) or the compute dtype's rounding (mixed precision) rather than the float64 ones of the gradient checks.
"""

import numpy as np
import tensorflow as tf

from tfnets.check.report import FAIL, PASS, SKIP, CheckResult, error_line, norm_error
from tfnets.check.target import first_output
from tfnets.errors import ConfigError

GRAPH_BOUND = 1e-5  # normwise relative difference; float32 round-off of a reordered computation is ~1e-7
# Unit round-off of each compute dtype; mixed-precision gradients may differ from float32 by a few units times the
# length of the sums behind them, so the bound is 16 units (float16: 7.8e-3, bfloat16: 6.3e-2).
UNIT_ROUNDOFF = {"mixed_float16": 2.0**-11, "mixed_bfloat16": 2.0**-8}
PRECISION_UNITS = 16


def forward_check(subject, context):
    """Check 1: runs on the shape; output shape and dtype agree with compute_output_shape / the dtype; finite."""
    rng = np.random.default_rng(subject.seed + 1)
    values = [tf.constant(v) for v in subject.arguments(rng, "float32")]
    layer = subject.layer() if subject.kind == "layer" else None
    try:
        out = subject.call(layer, values)
        again = subject.call(layer, values)
    except ConfigError:
        raise
    except Exception as err:
        if _is_shape_error(err):
            raise ConfigError(
                f"{subject.label} does not run on input {subject.shape_text()}: {error_line(err)}"
            ) from None
        context["broken"] = True
        hint = f"the forward raises {error_line(err)}"
        if "variables" in str(err):
            hint += " (a weight read inside the tf.custom_gradient function: pass it as an argument, or accept variables=None)"
        return CheckResult("forward", FAIL, hint=hint)
    out = tf.convert_to_tensor(out)
    context["stochastic"] = bool(np.any(np.asarray(out) != np.asarray(again)))
    problems, notes = [], [f"output {tuple(out.shape)} {out.dtype.name}"]
    if layer is not None:
        shapes = [a.shape for a in subject.args]
        try:
            declared = layer.compute_output_shape(shapes[0] if len(shapes) == 1 else shapes)
            declared = tuple(first_output(declared)) if isinstance(declared[0], (tuple, list)) else tuple(declared)
            if declared != tuple(out.shape):
                problems.append(f"compute_output_shape says {declared}, the output is {tuple(out.shape)}")
        except NotImplementedError:
            notes.append("no compute_output_shape")
        if out.dtype.name != layer.compute_dtype:
            problems.append(f"output dtype {out.dtype.name}, the layer's compute dtype {layer.compute_dtype}")
    elif out.dtype != tf.float32 and any(a.is_float for a in subject.args):
        problems.append(f"float32 inputs give a {out.dtype.name} output")
    finite = bool(np.all(np.isfinite(np.asarray(out, np.float64))))
    if not finite:
        problems.append("the output has NaN or Inf on standard-normal inputs")
    if context["stochastic"]:
        notes.append("random: two calls differ")
    if problems:
        return CheckResult("forward", FAIL, hint="; ".join(problems))
    return CheckResult("forward", PASS, hint=", ".join(notes))


def _is_shape_error(err):
    """Errors that say the given shapes do not fit (a usage error), rather than that the code is broken."""
    message = str(err).lower()
    shape_words = ("shape", "incompatible", "dimension", "rank", "size")
    return isinstance(err, (ValueError, tf.errors.InvalidArgumentError)) and any(w in message for w in shape_words)


def _gradient_step(f, count, upstream):
    """(output, gradients of sum(output * upstream) w.r.t. the floating arguments) for f(*args)."""

    def step(*args):
        watched = [a for a in args if a.dtype.is_floating]
        with tf.GradientTape() as tape:
            tape.watch(watched)
            out = f(*args)
            loss = tf.reduce_sum(tf.cast(out, tf.float32) * upstream)
        grads = tape.gradient(loss, watched)
        return out, [tf.zeros_like(w) if g is None else tf.convert_to_tensor(g) for w, g in zip(watched, grads)]

    return step


def _max_error(result, reference):
    (out, grads), (ref_out, ref_grads) = result, reference
    return max([norm_error(out, ref_out)] + [norm_error(g, r) for g, r in zip(grads, ref_grads)])


def graph_check(subject, context):
    """Check 5: the same output and gradients eagerly, in `tf.function` and with `jit_compile=True`."""
    f, _ = subject.pure("float32")
    rng = np.random.default_rng(subject.seed + 5)
    args = [tf.constant(v) for v in subject.arguments(rng, "float32")] + [
        tf.constant(w) for w in subject.weights("float32")
    ]
    out = f(*args)
    upstream = tf.constant(rng.standard_normal(out.shape), tf.float32)
    step = _gradient_step(f, len(args), upstream)
    eager = step(*args)
    errors, failures = {}, []
    for mode, jit in (("graph", False), ("xla", True)):
        if jit and not tf.test.is_built_with_xla():
            errors[mode] = "skipped: this TensorFlow is built without XLA"
            continue
        try:
            result = tf.function(step, jit_compile=jit, autograph=True)(*args)
        except Exception as err:
            failures.append(f"{mode}: {error_line(err)}")
            errors[mode] = float("inf")
            continue
        errors[mode] = _max_error(result, eager)
        if jit and context.get("stochastic") and errors[mode] > GRAPH_BOUND:
            # TensorFlow's stateless RNG gives other numbers under XLA than its CPU kernels, for the same seed.
            errors[mode] = "not compared: a random layer draws other numbers under XLA"
        elif errors[mode] > GRAPH_BOUND:
            failures.append(
                f"{mode} differs from eager by {errors[mode]:.1e} (Python state or a NumPy call in call()?)"
            )
    numbers = [e for e in errors.values() if isinstance(e, float)]
    worst = max(numbers, default=None)
    if failures:
        return CheckResult("graph", FAIL, worst, GRAPH_BOUND, "; ".join(failures), {"errors": errors})
    if isinstance(errors.get("xla"), str):
        status = SKIP if errors["xla"].startswith("skipped") else PASS
        return CheckResult(
            "graph", status, worst, GRAPH_BOUND, f"tf.function agrees; XLA {errors['xla']}", {"errors": errors}
        )
    return CheckResult("graph", PASS, worst, GRAPH_BOUND, "tf.function and jit_compile=True agree", {"errors": errors})


def precision_check(subject, context):
    """Check 6: under mixed_float16 and mixed_bfloat16 it runs, keeps float32 weights, and its gradients are finite
    and within the compute dtype's rounding of the float32 ones."""
    rng = np.random.default_rng(subject.seed + 6)
    values = [tf.constant(v) for v in subject.arguments(rng, "float32")]
    reference = _precision_run(subject, values, None, rng, upstream=None)
    upstream = reference[2]
    errors, problems, worst = {}, [], (0.0, None)
    for policy, unit in UNIT_ROUNDOFF.items():
        bound = PRECISION_UNITS * unit
        try:
            out, grads, _, weight_dtypes = _precision_run(subject, values, policy, rng, upstream)
        except Exception as err:
            problems.append(f"{policy}: {error_line(err)}")
            errors[policy] = float("inf")
            worst = (float("inf"), bound)
            continue
        compute = policy.split("_")[1]
        if out.dtype.name != compute:
            problems.append(f"{policy}: output is {out.dtype.name}, not the compute dtype {compute}")
        wrong = sorted({d for d in weight_dtypes if d != "float32"})
        if wrong:
            problems.append(f"{policy}: weights are {', '.join(wrong)}, not float32 (autocast=False on a weight?)")
        if not all(np.all(np.isfinite(np.asarray(g, np.float64))) for g in grads):
            problems.append(f"{policy}: gradients have NaN or Inf")
        error = max([norm_error(g, r) for g, r in zip(grads, reference[1])], default=0.0)
        errors[policy] = error
        if error / bound > (worst[0] / worst[1] if worst[1] else -1):
            worst = (error, bound)
        if error > bound:
            problems.append(f"{policy}: gradients differ from float32 by {error:.1e} (> {bound:.1e})")
    details = {"errors": errors}
    if problems:
        return CheckResult("precision", FAIL, worst[0], worst[1], "; ".join(problems), details)
    note = ", ".join(f"{p.split('_')[1]} {e:.1e}" for p, e in errors.items())
    weights = "float32 weights; " if subject.kind == "layer" else ""
    return CheckResult("precision", PASS, worst[0], worst[1], f"{weights}gradients vs float32: {note}", details)


def _precision_run(subject, values, policy, rng, upstream):
    """(output, gradients w.r.t. float inputs and trainable weights as float32 arrays, upstream, weight dtypes)."""
    half = None if policy is None else tf.as_dtype(policy.split("_")[1])
    if subject.kind == "layer":
        layer = subject.layer(policy or "float32")
        inputs = list(values)
        weights = list(layer.trainable_variables)
        weight_dtypes = [v.dtype if isinstance(v.dtype, str) else v.dtype.name for v in weights]
    else:
        layer, weights, weight_dtypes = None, [], []
        inputs = [tf.cast(v, half) if half is not None and v.dtype.is_floating else v for v in values]
    watched = [v for v in inputs if v.dtype.is_floating]
    with tf.GradientTape() as tape:
        tape.watch(watched)
        out = tf.convert_to_tensor(subject.call(layer, inputs))
        if upstream is None:
            upstream = tf.constant(rng.standard_normal(out.shape), tf.float32)
        loss = tf.reduce_sum(tf.cast(out, tf.float32) * upstream)
    grads = tape.gradient(loss, watched + weights)
    grads = [
        np.zeros(t.shape) if g is None else np.asarray(tf.cast(tf.convert_to_tensor(g), tf.float32))
        for t, g in zip(watched + weights, grads)
    ]
    return out, grads, upstream, weight_dtypes

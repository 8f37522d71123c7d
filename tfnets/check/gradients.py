"""Checks 2-4: the gradient TensorFlow obtains vs numbers, every variable reached, batch = sum of examples.

All three differentiate `Subject.pure` in float64 (a float64 copy of a layer with the reference weights), where
round-off is ~1e-16 and any error above the bounds below is a wrong backward pass, not arithmetic.
"""

import numpy as np
import tensorflow as tf

from tfnets.check.report import FAIL, PASS, SKIP, CheckResult, join_hints, norm_error
from tfnets.nn.gradcheck import autodiff_gradient, numeric_gradient, rel_error, worst_entry

EPS = 1e-5  # central differences: truncation ~eps^2 and round-off ~1e-16 / eps, both ~1e-10 of the gradient
GRADIENT_BOUND = 1e-6  # max elementwise relative error; a wrong backward is off by O(1)
SCALE_FLOOR = 1e-6  # entries below this fraction of the argument's largest gradient are compared absolutely
BATCH_BOUND = 1e-8  # float64 sums in another order: ~1e-15
KINK_TRIES = 4


def _upstream(f, values, rng):
    out = np.asarray(f(*[tf.constant(v) for v in values]))
    return rng.standard_normal(out.shape)


def _perturbed(weights, rng):
    return [w + 0.1 * rng.standard_normal(w.shape) for w in weights]


def gradient_check(subject, context):
    """Check 2: central differences in float64 vs the gradient TensorFlow obtains, per input and per weight."""
    f, _ = subject.pure("float64")
    names = subject.argument_names() + subject.weight_names()
    weights = subject.weights("float64")
    rng = np.random.default_rng(subject.seed + 2)
    for attempt in range(KINK_TRIES):
        values = subject.arguments(rng) + weights
        upstream = _upstream(f, values, rng)
        kinks = []
        numeric = numeric_gradient(f, values, eps=EPS, upstream=upstream, kinks=kinks)
        if not kinks:
            break
        weights = _perturbed(weights, rng)  # a kink that sits in the weights (zero-initialised ReLU inputs)
    analytic = autodiff_gradient(f, values, upstream)
    errors, hints, worst = {}, [], (0.0, "")
    for index, name in enumerate(names):
        a, n = analytic[index], numeric[index]
        if n is None or (index < len(subject.args) and subject.args[index].constant):
            continue
        error, where = _compare(a, n)
        errors[name] = error
        if error > worst[0] or not worst[1]:
            worst = (error, f"{name}{list(where) if where else ''}")
        if error > GRADIENT_BOUND:
            hints.append((name, diagnose(a, n, name, names, numeric, subject.batch)))
    note = f"worst: {worst[1]}" + (f"; inputs redrawn {attempt} time(s) to avoid kinks" if attempt else "")
    if kinks:
        note += f"; {len(kinks)} entries still at a kink"
    details = {"errors": errors, "worst": worst[1], "eps": EPS}
    if hints:
        return CheckResult("gradient", FAIL, worst[0], GRADIENT_BOUND, join_hints(hints), details)
    return CheckResult("gradient", PASS, worst[0], GRADIENT_BOUND, note, details)


def _compare(a, n):
    """(max relative error, worst index); shapes that differ are infinitely wrong."""
    a = np.asarray(a, np.float64)
    if a.shape != n.shape:
        return float("inf"), ()
    floor = max(1e-12, SCALE_FLOOR * float(np.max(np.abs(n), initial=0.0)))
    return worst_entry(a, n, floor)


def _scale(a, n):
    """The s with a ~ s * n, and how far from it a is (relative residual); (None, inf) when n is zero."""
    nn = float(np.sum(n * n))
    if nn == 0:
        return None, float("inf")
    s = float(np.sum(a * n)) / nn
    residual = float(np.linalg.norm(a - s * n)) / max(float(np.linalg.norm(a)), 1e-300)
    return s, residual


def _close(x, y, tol=1e-3):
    return abs(x - y) <= tol * abs(y)


def diagnose(a, n, name, names, numeric, batch):
    """A one-line hint for `name`'s wrong gradient `a` (the numbers: `n`), naming the classic bug when the pattern
    matches; `names`/`numeric`: every argument's numbers, to spot a gradient returned for the wrong one."""
    a = np.asarray(a, np.float64)
    if a.shape != n.shape:
        if a.shape == n.shape[::-1]:
            return f"its gradient has shape {a.shape}, the weight {n.shape}: transposed weight gradient?"
        return f"its gradient has shape {a.shape}, the weight {n.shape}"
    if not np.any(a) and np.any(n):
        return "gradient is all zeros where the numbers are not: the backward returns None or zeros for it (forgot its gradient?)"
    if a.ndim == 2 and a.shape[0] == a.shape[1] > 1 and rel_error(a, n.T) < 1e-4:
        return "gradient equals the transpose of the numbers: transposed weight gradient"
    for other, other_n in zip(names, numeric):
        if other != name and other_n is not None and other_n.shape == a.shape and np.any(other_n):
            if rel_error(a, other_n, max(1e-12, SCALE_FLOOR * np.max(np.abs(other_n)))) < 1e-4:
                return f"gradient equals the one of {other}: returned for the wrong argument (order of the backward's outputs?)"
    s, residual = _scale(a, n)
    if s is not None and residual < 1e-3:
        if batch > 1 and _close(s, 1 / batch):
            return f"gradient is 1/{batch} of the numbers (1/batch size): averaging over the batch where the loss sums?"
        if batch > 1 and _close(s, batch):
            return f"gradient is {batch}x the numbers (the batch size): summing where the forward averages?"
        if _close(s, -1.0):
            return "gradient has the wrong sign"
        return f"gradient is {s:.3g}x the numbers: a constant factor is wrong"
    error, where = _compare(a, n)
    return f"wrong at {list(where)} (got {a[where]:.4g}, numbers say {n[where]:.4g})"


def variables_check(subject, context):
    """Check 3: every trainable weight (an op: every floating argument) the forward uses gets a gradient."""
    rng = np.random.default_rng(subject.seed + 3)
    values = [tf.constant(v) for v in subject.arguments(rng, "float32")]
    if subject.kind == "layer":
        layer = subject.layer("float32")
        targets = list(layer.trainable_variables)
        names = subject.weight_names()
        if not targets:
            return CheckResult("variables", SKIP, hint="no trainable weights")
    else:
        layer = None
        targets = [v for v, a in zip(values, subject.args) if a.differentiable]
        names = [n for n, a in zip(subject.argument_names(), subject.args) if a.differentiable]
    out = subject.call(layer, values)
    upstream = tf.constant(rng.standard_normal(out.shape), out.dtype)
    with tf.GradientTape() as tape:
        tape.watch([t for t in targets if not isinstance(t, tf.Variable) and not hasattr(t, "path")])
        out = subject.call(layer, values)
        loss = tf.reduce_sum(out * upstream)
    grads = tape.gradient(loss, targets)
    missing, unused = [], []
    for name, target, grad in zip(names, targets, grads):
        if grad is not None:
            continue
        (unused if not _changes_output(subject, layer, values, target, out, rng) else missing).append(name)
    reached = len(targets) - len(missing) - len(unused)
    details = {"reached": reached, "missing": missing, "unused": unused}
    if missing:
        hint = (
            f"no gradient reaches {', '.join(missing)} although the output depends on it: a weight read inside or "
            "captured by a tf.custom_gradient function must be an argument of it, or come back through "
            "`variables=` (grad_fn(dout, variables=None) -> (input grads, variable grads)); it never updates"
        )
        return CheckResult("variables", FAIL, reached, len(targets), hint, details)
    if unused and subject.kind == "layer":
        hint = f"{', '.join(unused)} never changes the output: an unused trainable weight (it never updates)"
        return CheckResult("variables", FAIL, reached, len(targets), hint, details)
    note = f"{reached} of {len(targets)} get a gradient"
    if unused:
        note += f"; {', '.join(unused)} does not change the output"
    return CheckResult("variables", PASS, reached, len(targets), note, details)


def _changes_output(subject, layer, values, target, out, rng):
    """Does moving this weight (or argument) move the output? Then a missing gradient is a bug."""
    noise = rng.standard_normal(target.shape).astype(np.float32)
    if subject.kind == "layer":
        saved = np.array(target.numpy())
        target.assign(saved + noise)
        try:
            moved = subject.call(layer, values)
        finally:
            target.assign(saved)
    else:
        moved = subject.call(None, [v + noise if v is target else v for v in values])
    return bool(np.max(np.abs(np.asarray(moved) - np.asarray(out))) > 0)


def batch_check(subject, context):
    """Check 4: the gradient of a batch is the sum of per-example gradients; a batch of 1 gives the same values."""
    if subject.batch < 2:
        return CheckResult("batch", SKIP, hint="needs a batch (first dimension) of at least 2")
    f, _ = subject.pure("float64")
    rng = np.random.default_rng(subject.seed + 4)
    values = subject.arguments(rng) + subject.weights("float64")
    batched = subject.batched_positions()
    out = np.asarray(f(*[tf.constant(v) for v in values]))
    if out.ndim == 0 or out.shape[0] != subject.batch:
        return CheckResult("batch", SKIP, hint=f"the output {out.shape} has no batch axis (a reduced loss)")
    upstream = rng.standard_normal(out.shape)
    singles = [_example(values, batched, i) for i in range(subject.batch)]
    single_out = np.concatenate([np.asarray(f(*[tf.constant(v) for v in s])) for s in singles])
    forward_gap = norm_error(single_out, out)
    if forward_gap > BATCH_BOUND:
        context["batch_dependent"] = True  # check 7 then knows why two half batches differ from one whole one
        return CheckResult(
            "batch",
            SKIP,
            forward_gap,
            BATCH_BOUND,
            f"an example's output depends on the rest of the batch (batch statistics or a per-batch random draw; "
            f"differs by {forward_gap:.1e}): per-example gradients are not defined",
        )
    whole = autodiff_gradient(f, values, upstream)
    parts = [autodiff_gradient(f, s, upstream[i : i + 1]) for i, s in enumerate(singles)]
    names = subject.argument_names() + subject.weight_names()
    errors, hints = {}, []
    for k, name in enumerate(names):
        if whole[k] is None or (k < len(subject.args) and subject.args[k].constant):
            continue
        if k in batched:
            per_example = np.concatenate([p[k] for p in parts])
        else:
            per_example = np.sum([p[k] for p in parts], axis=0)
        errors[name] = norm_error(whole[k], per_example)
        if errors[name] > BATCH_BOUND:
            hints.append((name, _batch_hint(whole[k], per_example, subject.batch, k in batched)))
    worst = max(errors.values(), default=0.0)
    details = {"errors": errors}
    if hints:
        return CheckResult("batch", FAIL, worst, BATCH_BOUND, join_hints(hints), details)
    return CheckResult("batch", PASS, worst, BATCH_BOUND, "batch gradient = sum of per-example ones", details)


def _example(values, batched, i):
    return [v[i : i + 1] if k in batched else v for k, v in enumerate(values)]


def _batch_hint(whole, per_example, batch, is_input):
    s, residual = _scale(np.asarray(whole, np.float64), np.asarray(per_example, np.float64))
    what = "its gradient per example" if is_input else "its batch gradient vs the sum of per-example ones"
    if s is not None and residual < 1e-3 and _close(s, 1 / batch):
        return f"{what} is 1/{batch}: the backward averages over the batch (mean) where the loss sums"
    if s is not None and residual < 1e-3:
        return f"{what} differs by a factor {s:.3g} (a batch-size-dependent scale)"
    return f"{what} differs (broadcasting over the batch axis?)"

"""`tfnets.check`: point it at your own hand-written layer or op and learn exactly what is wrong.

    report = tfnets.check.check(MyDense, input_shape=(4, 16), kwargs={"units": 8})
    assert report.ok, report          # str(report): the table; report.to_json(); report["gradient"].hint

`obj` is a Keras layer class (built with `kwargs`), a layer instance, a factory (called with `kwargs`, returns a
layer) or an op: a function on tensors such as one decorated with `tf.custom_gradient`, called with one tensor per
`input_shape` entry (and `kwargs` as keyword options). The nine checks, their numbers and bounds: docs/check.md.
`python -m tfnets.check MODULE:NAME ...` is the same from the command line.

Modules, one per group of checks: `target` (what is checked), `runtime` (1 forward, 5 graph/XLA, 6 mixed precision),
`gradients` (2 gradient vs numbers, 3 variables reached, 4 batch consistency), `replicas` (7, a child process),
`persistence` (8 serialisation, 9 it trains), `report` (the result). TensorFlow is imported on the first check.
"""

import time

from tfnets.check.report import CHECKS, FAIL, NAMES, PASS, SKIP, CheckResult, Report
from tfnets.errors import ConfigError

__all__ = ["check", "Report", "CheckResult", "CHECKS", "NAMES", "PASS", "FAIL", "SKIP"]


def _runners():
    from tfnets.check import gradients, persistence, replicas, runtime

    return {
        "forward": runtime.forward_check,
        "gradient": gradients.gradient_check,
        "variables": gradients.variables_check,
        "batch": gradients.batch_check,
        "graph": runtime.graph_check,
        "precision": runtime.precision_check,
        "replicas": replicas.replicas_check,
        "serialization": persistence.serialization_check,
        "trains": persistence.trains_check,
    }


def _timed(runner, subject, context):
    started = time.perf_counter()
    result = runner(subject, context)
    result.seconds = time.perf_counter() - started
    return result


def parse_only(only):
    """`None` -> every check; names or numbers ('gradient,3' or ['gradient', 3]) -> the names, in run order."""
    if only is None:
        return list(NAMES)
    items = only.split(",") if isinstance(only, str) else list(only)
    chosen = set()
    for item in items:
        text = str(item).strip().lower()
        if not text:
            continue
        if text.isdigit() and 1 <= int(text) <= len(NAMES):
            chosen.add(NAMES[int(text) - 1])
        elif text in NAMES:
            chosen.add(text)
        else:
            raise ConfigError(f"unknown check {item!r}; choose from {', '.join(NAMES)} (or 1-{len(NAMES)})")
    if not chosen:
        raise ConfigError(f"no check chosen; choose from {', '.join(NAMES)}")
    return [name for name in NAMES if name in chosen]


def check(obj, input_shape, kwargs=None, *, seed=0, only=None, training=None, label=None, locator=None):
    """Run the checks on a layer or op; returns a `Report` (`report.ok` is False when one fails).

    input_shape: one shape per input, e.g. `(4, 16)`, `"4,16"`, or `["4,5", "4:int5"]` for an op taking logits and
        integer labels in [0, 5) (`"SHAPE:intK"`: int32 ids in [0, K)).
    kwargs: keyword arguments of the layer class or factory, or keyword options of the op.
    seed: the weights, inputs and upstream gradients all come from it.
    only: check names or numbers to run (default all nine), e.g. `"gradient,batch"`.
    training: call a layer with `training=True` (default: when its `call` takes `training`).
    Bad usage (not a layer or op, shapes that do not fit) raises `tfnets.errors.ConfigError` with one line.
    """
    from tfnets.check.target import Subject

    names = parse_only(only)
    start = time.perf_counter()
    subject = Subject(obj, input_shape, kwargs, seed=seed, label=label, locator=locator, training=training)
    runners, context, results = _runners(), {}, []
    first = _timed(runners["forward"], subject, context)  # bad shapes are a usage error whatever runs
    if "replicas" in names and not context.get("broken") and not context.get("stochastic"):
        from tfnets.check import replicas

        context["replicas_child"] = replicas.start(subject)  # its TensorFlow start-up overlaps the checks below
    try:
        for name in names:
            if name == "forward":
                results.append(first)
            elif context.get("broken"):
                results.append(CheckResult(name, SKIP, hint="the forward fails (check 1)"))
            else:
                results.append(_timed(runners[name], subject, context))
    finally:
        child = context.pop("replicas_child", None)
        if child is not None:  # an error in a check before 7: do not leave the child behind
            child.kill()
            child.communicate()
    return Report(subject.describe(), results, time.perf_counter() - start)

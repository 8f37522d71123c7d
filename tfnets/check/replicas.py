"""Check 7: one training step under `MirroredStrategy` on 2 logical CPU devices gives one device's weights.

Logical devices can only be made before TensorFlow starts, so the check runs in a child process
(this module run with `-m`, the subject's locator as a JSON argument; not a user command): it rebuilds the subject from its locator, takes one SGD step on
the global batch on one device, and one with the batch split over two replicas (per-example losses
`sum(output * upstream)` averaged over the global batch with `tf.nn.compute_average_loss`, as Keras does), both
from the same weights, and prints the relative difference of each updated weight as one JSON line.
An op's non-batch floating arguments (e.g. `affine`'s w and b) are its weights here.
"""

import json
import os
import subprocess
import sys

from tfnets.check.report import FAIL, PASS, SKIP, CheckResult, error_line, with_shape_hint

REPLICA_BOUND = 1e-5  # normwise relative difference of the updated weights; float32 round-off of a split sum
LEARNING_RATE = 0.1
CHILD_TIMEOUT = 300


def _skip_reason(subject):
    if subject.locator is None:
        return "cannot be re-imported in a child process (define it at the top of a module)"
    if subject.batch % 2:
        return f"the batch ({subject.batch}) does not split over 2 replicas"
    if (
        subject.kind == "layer"
        and not subject.weight_names()
        or subject.kind == "op"
        and not subject.weight_positions()
    ):
        return "no weights to update"
    return None


def start(subject):
    """Start the child process now (its TensorFlow start-up then overlaps the checks run here); None when the check
    cannot run (`replicas_check` says why)."""
    if _skip_reason(subject):
        return None
    payload = {
        "locator": subject.locator,
        "args": [a.text() for a in subject.args],
        "seed": subject.seed,
        "training": subject.training,
    }
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    return subprocess.Popen(
        [sys.executable, "-m", "tfnets.check.replicas", json.dumps(payload)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def replicas_check(subject, context):
    """Check 7: the child's answer (started by `start`, or here)."""
    child = context.pop("replicas_child", None)
    reason = _skip_reason(subject) or (
        "random in training: two replicas draw other numbers than one device" if context.get("stochastic") else None
    )
    if reason:
        if child is not None:
            child.kill()
            child.communicate()
        return CheckResult("replicas", SKIP, hint=reason)
    child = child or start(subject)
    try:
        stdout, stderr = child.communicate(timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return CheckResult("replicas", FAIL, hint=f"the two-replica child process took over {CHILD_TIMEOUT} s")
    lines = stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return CheckResult("replicas", FAIL, hint=f"the two-replica child process failed: {tail}")
    if "skip" in result:
        return CheckResult("replicas", SKIP, hint=result["skip"])
    if "error" in result:
        return CheckResult("replicas", FAIL, hint=with_shape_hint(f"{result['stage']}: {result['error']}"))
    errors = result["errors"]
    worst = max(errors.values(), default=0.0)
    bad = [name for name, error in errors.items() if error > REPLICA_BOUND]
    if bad:
        cause = (
            "the output depends on the whole batch (check 4) and each replica sees only its half: synchronise "
            "the batch statistics across replicas"
            if context.get("batch_dependent")
            else "a gradient that averages over the (per-replica) batch where the loss sums?"
        )
        hint = f"{', '.join(bad)} after one step differ from one device's: {cause}"
        return CheckResult("replicas", FAIL, worst, REPLICA_BOUND, hint, {"errors": errors})
    return CheckResult(
        "replicas", PASS, worst, REPLICA_BOUND, "2 replicas = 1 device after one SGD step", {"errors": errors}
    )


# ---------------------------------------------------------------------------------------------- child process
def _child(payload):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np

    from tfnets.check.target import Subject, resolve_locator

    locator = payload["locator"]
    subject = Subject(
        resolve_locator(locator),
        payload["args"],
        locator.get("kwargs"),
        seed=payload["seed"],
        locator=locator,
        training=payload["training"],
    )
    rng = np.random.default_rng(subject.seed + 7)
    values = subject.arguments(rng, "float32")
    initial = _initial_weights(subject)
    stage = "one device"
    try:
        model = _Model(subject, initial)
        out = model(model.batch_values(values))
        upstream = rng.standard_normal(np.shape(out)).astype(np.float32)
        single = _step_one_device(model, values, upstream)
        stage = "two replicas"
        mirrored = _step_mirrored(subject, initial, values, upstream, tf)
    except Exception as err:
        return {"stage": stage, "error": error_line(err)}
    errors = {}
    for name, a, b in zip(model.names, mirrored, single):
        errors[name] = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
    return {"errors": errors}


def _initial_weights(subject):
    """A layer: all its weights (set on both copies); an op: its weight arguments, drawn like its inputs."""
    if subject.kind == "layer":
        return subject.layer().get_weights()
    import numpy as np

    values = subject.arguments(np.random.default_rng(subject.seed + 70), "float32")
    return [values[i] for i in subject.weight_positions()]


class _Model:
    """The subject with its weights as variables of the current strategy: a fresh layer, or an op's weight args."""

    def __init__(self, subject, initial):
        import tensorflow as tf

        self.subject = subject
        if subject.kind == "layer":
            self.layer = subject.layer("float32")
            self.layer.set_weights(initial)
            self.variables = list(self.layer.trainable_variables)
            self.names = subject.weight_names()
        else:
            self.layer = None
            self.variables = [tf.Variable(w) for w in initial]
            self.names = [subject.argument_names()[i] for i in subject.weight_positions()]

    def __call__(self, batch):
        """batch: the batched arguments (a layer: its inputs); an op's other arguments are its variables or
        its constants."""
        if self.layer is not None:
            return self.subject.call(self.layer, list(batch))
        given = dict(zip(self.subject.batched_positions(), batch))
        given.update(zip(self.subject.weight_positions(), self.variables))
        return self.subject.call(None, [given.get(i, value) for i, value in enumerate(self.values)])

    def batch_values(self, values):
        self.values = values  # an op's constant arguments are taken from here
        return [values[i] for i in self.subject.batched_positions()]


def _loss(model, batch, upstream, global_batch):
    import tensorflow as tf

    out = tf.cast(model(batch), tf.float32)
    per_example = tf.reduce_sum(tf.reshape(out * upstream, [tf.shape(out)[0], -1]), axis=1)
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)


def _step_one_device(model, values, upstream):
    import keras
    import tensorflow as tf

    batch = model.batch_values(values)
    optimizer = keras.optimizers.SGD(LEARNING_RATE)
    with tf.GradientTape() as tape:
        loss = _loss(model, batch, upstream, len(upstream))
    optimizer.apply_gradients(zip(tape.gradient(loss, model.variables), model.variables))
    return [v.numpy() for v in model.variables]


def _step_mirrored(subject, initial, values, upstream, tf):
    import keras

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = _Model(subject, initial)
        optimizer = keras.optimizers.SGD(LEARNING_RATE)
    batch = model.batch_values(values)
    global_batch = len(upstream)
    dataset = tf.data.Dataset.from_tensor_slices((tuple(batch), upstream)).batch(global_batch)
    inputs, up = next(iter(strategy.experimental_distribute_dataset(dataset)))

    def replica_step(inputs, up):
        with tf.GradientTape() as tape:
            loss = _loss(model, list(inputs), up, global_batch)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.variables), model.variables))

    tf.function(replica_step_runner(strategy, replica_step))(inputs, up)
    return [v.numpy() for v in model.variables]


def replica_step_runner(strategy, replica_step):
    return lambda inputs, up: strategy.run(replica_step, args=(inputs, up))


if __name__ == "__main__":
    from tfnets.experiment.quiet import quiet_tensorflow

    quiet_tensorflow()
    try:
        answer = _child(json.loads(sys.argv[1]))
    except Exception as err:  # the user's code in a fresh process: report, never a traceback on the parent's screen
        answer = {"stage": "rebuilding it", "error": error_line(err)}
    print(json.dumps(answer))

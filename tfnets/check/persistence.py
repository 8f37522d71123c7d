"""Checks 8 and 9: the layer serialises (config, `.keras`, SavedModel), and a model using it trains.

Serialisation compares inference outputs (training=False), which is what a reloaded or served model computes.
Training fits a realisable task: the targets are the subject's own outputs under other weights (a 'teacher'), so a
correct gradient can drive the loss towards zero whatever the layer computes.
"""

import json
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfnets.check.report import FAIL, PASS, SKIP, CheckResult, error_line, norm_error, with_shape_hint

SERIAL_BOUND = 1e-6  # normwise relative difference of the outputs; a reload must give the same numbers
TRAIN_STEPS = 40
TRAIN_BOUND = 0.5  # the loss after TRAIN_STEPS Adam steps, as a fraction of the first step's loss


def _canonical(config):
    return json.dumps(config, sort_keys=True, default=str)


def serialization_check(subject, context):
    """Check 8: get_config/from_config round trip; `.keras` save and load; a SavedModel export serves the outputs."""
    if subject.kind == "op":
        return CheckResult("serialization", SKIP, hint="an op is a function: nothing to serialise")
    import keras

    import tfnets

    rng = np.random.default_rng(subject.seed + 8)
    values = [tf.constant(v) for v in subject.arguments(rng, "float32")]
    layer = subject.layer("float32")
    expected = np.asarray(layer(subject.layer_inputs(values)))
    errors = {}
    stage = "get_config/from_config"
    try:
        config = layer.get_config()
        clone = type(layer).from_config(config)
        subject._build(clone)
        clone.set_weights(layer.get_weights())
        if _canonical(clone.get_config()) != _canonical(config):
            return CheckResult(
                "serialization", FAIL, hint="from_config(get_config()) gives another config: an argument is not saved"
            )
        errors["config"] = norm_error(clone(subject.layer_inputs(values)), expected)
        stage = "building a model with it"
        inputs = [
            keras.Input(shape=a.shape[1:], batch_size=None, dtype="float32" if a.is_float else "int32")
            for a in subject.args
        ]
        model = keras.Model(subject.layer_inputs(inputs), layer(subject.layer_inputs(inputs)))
        with tempfile.TemporaryDirectory() as folder:
            stage = "saving as .keras"
            path = Path(folder) / "model.keras"
            model.save(path)
            stage = "loading the .keras file"
            loaded = tfnets.load_model(path, compile=False)
            errors["keras"] = norm_error(loaded(values if len(values) > 1 else values[0]), expected)
            stage = "exporting a SavedModel"
            model.export(str(Path(folder) / "saved"), verbose=False)
            restored = tf.saved_model.load(str(Path(folder) / "saved"))  # held: its functions reference its variables
            served = restored.serve(*values)
            errors["saved_model"] = norm_error(served, expected)
    except Exception as err:
        hint = f"{stage}: {error_line(err)}"
        if stage.startswith("loading"):
            hint += " (register the class: @keras.saving.register_keras_serializable(), and import it before loading)"
        if stage.startswith("get_config"):
            hint += " (get_config must return every __init__ argument)"
        return CheckResult("serialization", FAIL, hint=hint, details={"errors": errors})
    worst = max(errors.values())
    if worst > SERIAL_BOUND:
        bad = ", ".join(name for name, e in errors.items() if e > SERIAL_BOUND)
        return CheckResult(
            "serialization", FAIL, worst, SERIAL_BOUND, f"outputs change after: {bad}", {"errors": errors}
        )
    return CheckResult(
        "serialization",
        PASS,
        worst,
        SERIAL_BOUND,
        "config, .keras and SavedModel give the same outputs",
        {"errors": errors},
    )


def _teacher(value, rng):
    """Other weights of the same shape: the value moved by half its spread (or by 0.5 where it is constant)."""
    spread = float(np.std(value)) or 1.0
    return value + 0.5 * spread * rng.standard_normal(value.shape).astype(value.dtype)


def trains_check(subject, context):
    """Check 9: Adam on its weights (an op: on its floating arguments) fits the outputs of a teacher."""
    import keras

    rng = np.random.default_rng(subject.seed + 9)
    values = [tf.constant(v) for v in subject.arguments(rng, "float32")]
    if subject.kind == "layer":
        student = subject.layer("float32")
        variables = list(student.trainable_variables)
        if not variables:
            return CheckResult("trains", SKIP, hint="no trainable weights")
        teacher = subject.layer("float32")
        for variable in teacher.trainable_variables:
            variable.assign(_teacher(variable.numpy(), rng))
        target = tf.stop_gradient(subject.call(teacher, values))

        def predict():
            return subject.call(student, values)

    else:
        floats = [i for i, a in enumerate(subject.args) if a.differentiable]
        if not floats:
            return CheckResult("trains", SKIP, hint="no floating arguments")
        variables = [tf.Variable(values[i]) for i in floats]
        moved = list(values)
        for i in floats:
            moved[i] = tf.constant(_teacher(values[i].numpy(), rng))
        target = tf.stop_gradient(subject.call(None, moved))

        def predict():
            args = list(values)
            for i, variable in zip(floats, variables):
                args[i] = variable
            return subject.call(None, args)

    optimizer = keras.optimizers.Adam(learning_rate=0.05)
    losses = []
    try:
        for _ in range(TRAIN_STEPS):
            with tf.GradientTape() as tape:
                diff = tf.cast(predict(), tf.float32) - tf.cast(target, tf.float32)
                loss = tf.reduce_mean(diff * diff)
            pairs = [(g, v) for g, v in zip(tape.gradient(loss, variables), variables) if g is not None]
            losses.append(float(loss))
            if not pairs:
                return CheckResult("trains", FAIL, hint="no weight gets a gradient")
            optimizer.apply_gradients(pairs)
    except Exception as err:
        return CheckResult("trains", FAIL, hint=with_shape_hint(f"a training step failed: {error_line(err)}"))
    final = float(tf.reduce_mean(tf.square(tf.cast(predict(), tf.float32) - tf.cast(target, tf.float32))))
    if losses[0] == 0:
        return CheckResult("trains", SKIP, hint="the teacher's outputs equal the student's: nothing to fit")
    ratio = final / losses[0]
    note = f"loss {losses[0]:.3g} -> {final:.3g} in {TRAIN_STEPS} Adam steps"
    if not np.isfinite(ratio) or ratio > TRAIN_BOUND:
        return CheckResult("trains", FAIL, ratio, TRAIN_BOUND, f"{note}: it does not fit a task it can represent")
    return CheckResult("trains", PASS, ratio, TRAIN_BOUND, note)

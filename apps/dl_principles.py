"""Deep-learning principles on TensorFlow-Playground toy data: initialisation, example order, OR and XOR.

Reproduces the "deep learning principles" problem of a Caltech CS155 problem set (done there in the
TensorFlow Playground) with small Keras models; each part prints its measured numbers, draws test-loss curves
and decision boundaries into the run folder, and writes a report section.

A. ReLU network (2 inputs -> 4 -> 2 -> 1) initialised randomly vs all-zero; the gradient norm of every layer
   at step 0 shows why the zero-initialised one never learns.
B. The same with sigmoid units: both learn, the zero-initialised one slower and with identical hidden units.
C. Example order with batch size 1: all negative examples first, then all positive ones, vs shuffled.
D. OR with no hidden layer and hand-set weights: its truth table.
E. XOR: the best a no-hidden-layer network achieves, and hand-set weights for the smallest ReLU network
   (one hidden layer of 2 units) that computes it.

    python -m apps.dl_principles                 # all parts, about a minute on 2 cores
    python -m apps.dl_principles --part A,B

Data: Playground's "gaussian" set (two blobs, linearly separable) for A and B, its "circle" set for C, its
"xor" set for E; 500 points, half for training and half for testing (Playground's default ratio). Why gaussian
for A/B: a zero-initialised network keeps all units of a layer identical, so it can only ever draw a linear
boundary; on a set that needs a curved one, "learns slowly" could not be told apart from "cannot learn".
Output: one sigmoid unit, binary cross-entropy, plain SGD with batch 10 (Playground's default) and learning rate
1.0 for 30 epochs (at Playground's default 0.03 the zero-initialised sigmoid network needs far more than 100
epochs; at 0.3 it needs 47).
"""

import dataclasses
import functools
import typing
from pathlib import Path

import numpy as np

from apps._dl_principles_figures import add_figures, plot_boundaries
from tfnets.data import make_toy_dataset, train_test_split
from tfnets.data.splits import Splits
from tfnets.experiment import Experiment, TrainResult, headline
from tfnets.experiment.cli import choice_list, exit_with, require
from tfnets.experiment.config import CommonConfig, batch_size_option, int_list, option, positive_float, positive_int
from tfnets.experiment.determinism import reseed
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plan import Plan
from tfnets.experiment.report import markdown_table

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

APP = "dl_principles"
DESCRIPTION = __doc__.split("\n\n")[0]
TITLE = "Deep-learning principles on toy data"
PARTS = "ABCDE"
BOOLEAN_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
# The sub-folders of the run folder, named once: one per trained network (parts A, B: initialisation; C: example
# order; E: XOR without a hidden layer).
INIT_FOLDER = "{part}_{activation}_{init}"
ORDER_FOLDER = "C_{order}"
XOR_FOLDER = "E_no_hidden_layer"
INITS = ("glorot_uniform", "zeros")
ORDERS = ("sorted", "shuffled")
PART_ACTIVATION = {"A": "relu", "B": "sigmoid"}
TOY_SET = {"A": "gaussian", "B": "gaussian", "C": "circle", "E": "xor"}  # the Playground set of each training part

_choose_parts = choice_list(PARTS, name="--part", allow_all=True)


def part_list(value):
    """`"A,c"` (or a list from a config file) -> `("A", "C")`; a one-line error names the valid parts."""
    return tuple(_choose_parts(value if isinstance(value, str) else ",".join(map(str, value))))


# -- configuration: the command line, `run(...)`'s keywords and config.json all come from this declaration --------


@dataclasses.dataclass(frozen=True)
class Config(CommonConfig):
    APP = APP
    DESCRIPTION = DESCRIPTION
    EPOCHS = 30

    batch_size: int = batch_size_option(10)
    # Each trained network has its own sub-folder, so the list only chooses what runs: `--part C` after `--part A`
    # resumes the finished networks of the same run.
    part: typing.Tuple[str, ...] = option(
        tuple(PARTS), "parts to run, e.g. A,C (default all)", parse=part_list, identity=False
    )
    hidden: typing.Tuple[int, ...] = option((4, 2), "hidden layer sizes (default 4,2)", parse=int_list)
    learning_rate: float = option(1.0, "SGD step in parts A, B, E (default 1.0)", parse=positive_float)
    points: int = option(500, "points per toy set (default 500)", parse=positive_int)
    noise: float = option(0.0, "Playground noise / 100, 0..0.5 (default 0)")
    order_epochs: int = option(5, "passes over the data in part C, batch size 1 (default 5)", parse=positive_int)
    order_learning_rate: float = option(0.1, "SGD step in part C (default 0.1)", parse=positive_float)

    def __post_init__(self):
        super().__post_init__()
        require(0.0 <= self.noise <= 0.5, f"--noise must be between 0 and 0.5, got {self.noise}")
        require(self.points >= 8, f"--points must be at least 8, got {self.points}")

    @property
    def train_order_epochs(self):
        """Part C's passes: `--order-epochs`, at most 2 under `--quick` (given or not)."""
        return min(self.order_epochs, self.QUICK_EPOCHS) if self.quick else self.order_epochs

    def identity(self):
        return {**super().identity(), "order_epochs": self.train_order_epochs}


# -- models and measurements -------------------------------------------------------------------------------------


def build_model(hidden, activation, initializer, learning_rate, steps_per_execution=1):
    """(N, 2) points -> hidden Dense layers `hidden_1..` -> one sigmoid unit P(class 1), compiled with SGD."""
    inputs = keras.Input((2,), name="point")
    x = inputs
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=initializer,
            bias_initializer="zeros",
            name=f"hidden_{i + 1}",
        )(x)
    output = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=initializer, name="output")(x)
    model = keras.Model(inputs, output, name=f"{activation}_{initializer}")
    model.compile(
        keras.optimizers.SGD(learning_rate),
        keras.losses.BinaryCrossentropy(),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def toy_splits(name, config, seed_offset=0):
    """A Playground set split 50/50 into train and test (no validation split, as in Playground)."""
    x, y = make_toy_dataset(name, config.points, config.noise, seed=config.seed + seed_offset)
    x_train, y_train, x_test, y_test = train_test_split(x, y, 0.5, seed=config.seed)
    as_target = lambda labels: labels.astype(np.float32)[:, None]  # noqa: E731 - (N, 1) like the output
    return Splits(
        x_train,
        as_target(y_train),
        np.zeros((0, 2), np.float32),
        np.zeros((0, 1), np.float32),
        x_test,
        as_target(y_test),
        class_names=("0", "1"),
        source=f"make_toy_dataset({name!r})",
    )


def gradient_norms(model, x, y):
    """L2 norm of the loss gradient of every weight at the current point (full batch): {"hidden_1/kernel": ..}."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = model.loss(y, model(x, training=True))
    gradients = tape.gradient(loss, model.trainable_variables)
    return {v.path: float(tf.norm(g)) for v, g in zip(model.trainable_variables, gradients)}


def hidden_layers(model):
    return [layer for layer in model.layers if layer.name.startswith("hidden_")]


def unit_spread(model):
    """Per hidden layer, the largest difference between a unit's incoming weights+bias and the layer mean.

    0 means all units of the layer are identical (symmetry never broken).
    """
    spreads = {}
    for layer in hidden_layers(model):
        kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.weights)
        incoming = np.vstack([kernel, bias[None, :]])  # (inputs + 1, units): one column per unit
        spreads[layer.name] = float(np.abs(incoming - incoming.mean(axis=1, keepdims=True)).max())
    return spreads


def dead_units(model, x):
    """Fraction of hidden ReLU units whose output is 0 for EVERY point of `x` (they get no gradient any more)."""
    probe = keras.Model(model.input, [layer.output for layer in hidden_layers(model)])
    outputs = probe.predict(x, verbose=0, batch_size=len(x))
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    dead = np.concatenate([np.asarray(o).max(axis=0) <= 0 for o in outputs])
    return float(dead.mean()), int(dead.sum()), int(dead.size)


def test_error(model, data):
    p = model.predict(data.x_test, verbose=0, batch_size=len(data.x_test))
    return float(np.mean((p > 0.5) != (data.y_test > 0.5)))


def train(exp, model, data, name, *, epochs, batch_size, shuffle=True, setting=""):
    """Fit `model` (compiled) in the sub-folder `name` of the run; returns its `TrainResult`, with the model."""
    run = exp.run.child(name, {**exp.config, "model": name})
    result = exp.train(
        model, data, run=run, epochs=epochs, batch_size=batch_size, shuffle=shuffle, setting=setting or name, title=name
    )
    return dataclasses.replace(result, model=model)


def seeded(config, offset=0):
    reseed(config.seed + offset)


# -- A and B: initialisation -------------------------------------------------------------------------------------


def init_network(config, activation, init):
    """Part A/B's network with `init` weights, as it starts (the same weights every time: the seed is reset)."""
    seeded(config)
    return build_model(config.hidden, activation, init, config.learning_rate, steps_per_execution=25)


def init_folder(part, init):
    return INIT_FOLDER.format(part=part, activation=PART_ACTIVATION[part], init=init)


def init_label(activation, init):
    return f"{activation}, {'random' if init != 'zeros' else 'zero'} init"


def train_initialisation(exp, data, config, part, init):
    """Train part `part`'s network with `init` weights on the gaussian set, in its own sub-folder."""
    activation = PART_ACTIVATION[part]
    return train(
        exp,
        init_network(config, activation, init),
        data,
        init_folder(part, init),
        epochs=config.train_epochs,
        batch_size=config.batch_size,
        setting=f"{init_label(activation, init)}, lr={config.learning_rate}",
    )


def part_initialisation(exp, data, config, part, plan):
    """Random (Glorot) vs all-zero initialisation of part `part`'s trained networks on the gaussian set; returns
    (findings by initialisation, TrainResult by sub-folder)."""
    activation = PART_ACTIVATION[part]
    results, histories, panels, trained = {}, {}, [], {}
    for init in INITS:
        # The gradients at step 0 are the untrained network's: the same initial weights, rebuilt.
        norms = gradient_norms(init_network(config, activation, init), data.x_train, data.y_train)
        label = init_label(activation, init)
        folder = init_folder(part, init)
        trained[folder] = plan.result(folder)
        model = trained[folder].model
        history = histories[label] = trained[folder].history
        panels.append((label, model))
        errors = [round(1 - r["test_accuracy"], 4) for r in history]
        results[init] = {
            "gradient_norms_step0": norms,
            "test_error": test_error(model, data),
            "test_error_by_epoch": errors,
            "epochs_to_5pct": next((i + 1 for i, e in enumerate(errors) if e <= 0.05), None),
            "unit_spread": unit_spread(model),
        }
        if activation == "relu":
            results[init]["dead_units"] = dead_units(model, np.concatenate([data.x_train, data.x_test]))[0]
    rows = [
        {"initialisation": init, "layer weight": name, "gradient norm at step 0": norm}
        for init, r in results.items()
        for name, norm in r["gradient_norms_step0"].items()
    ]
    summary = [
        {
            "initialisation": init,
            "final test error": r["test_error"],
            "first epoch with test error <= 5 %": r["epochs_to_5pct"] or f"never in {config.train_epochs}",
            **{f"spread {k}": v for k, v in r["unit_spread"].items()},
        }
        for init, r in results.items()
    ]
    exp.report.add(
        f"Part {part}: {activation} network, random vs zero initialisation",
        f"Gaussian set, hidden layers {list(config.hidden)}, SGD lr {config.learning_rate}, batch "
        f"{config.batch_size}, {config.train_epochs} epochs. *Spread* = largest deviation of a unit's incoming "
        f"weights from the layer mean (0: all units identical).\n\n"
        + markdown_table(summary, floatfmt=".4g")
        + "\n"
        + markdown_table(rows, floatfmt=".4g"),
    )
    add_figures(exp, part, histories, panels, data)
    for init, r in results.items():
        print(
            f"part {part} {activation} {init}: test error {r['test_error']:.3f} (<= 5 % from epoch "
            f"{r['epochs_to_5pct']}), unit spread " + ", ".join(f"{k} {v:.3g}" for k, v in r["unit_spread"].items())
        )
        print("   gradient norms at step 0: " + ", ".join(f"{k} {v:.3g}" for k, v in r["gradient_norms_step0"].items()))
    return results, trained


# -- C: example order --------------------------------------------------------------------------------------------


def order_network(config):
    """Part C's ReLU network as it starts (the same weights every time: the seed is reset)."""
    seeded(config)
    return build_model(config.hidden, "relu", "glorot_uniform", config.order_learning_rate, steps_per_execution=25)


def train_order(exp, data, config, mode):
    """Train part C's network with batch size 1 in its own sub-folder: `mode` "sorted" presents all negatives then
    all positives every pass, "shuffled" a fresh random order each pass."""
    if mode == "sorted":
        order = np.argsort(data.y_train[:, 0], kind="stable")  # label 0 (negative) first, then label 1
        data = dataclasses.replace(data, x_train=data.x_train[order], y_train=data.y_train[order])
    return train(
        exp,
        order_network(config),
        data,
        ORDER_FOLDER.format(order=mode),
        epochs=config.train_order_epochs,
        batch_size=1,
        shuffle=mode == "shuffled",
        setting=f"{mode} order, batch 1, lr={config.order_learning_rate}",
    )


def part_ordering(exp, data, config, plan):
    """Part C's trained networks, sorted vs shuffled order; returns (findings by order, TrainResult by sub-folder)."""
    all_points = np.concatenate([data.x_train, data.x_test])
    before = dead_units(order_network(config), all_points)  # the same for both orders: one initial network
    results, histories, panels, trained = {}, {}, [], {}
    for mode in ORDERS:
        folder = ORDER_FOLDER.format(order=mode)
        trained[folder] = plan.result(folder)
        model = trained[folder].model
        fraction, count, total = dead_units(model, all_points)
        p = model.predict(data.x_test, verbose=0)
        results[mode] = {
            "dead_fraction": fraction,
            "dead_units": count,
            "units": total,
            "dead_at_init": before[1],
            "test_error": test_error(model, data),
            "predicted_positive": float(np.mean(p > 0.5)),
        }
        histories[f"{mode} order"] = trained[folder].history
        panels.append((f"{mode} order", model))
    rows = [
        {
            "order": mode,
            "dead ReLU units": f"{r['dead_units']} / {r['units']} (at init {r['dead_at_init']})",
            "dead fraction": r["dead_fraction"],
            "final test error": r["test_error"],
            "test points predicted positive": r["predicted_positive"],
        }
        for mode, r in results.items()
    ]
    exp.report.add(
        "Part C: example order (batch size 1)",
        f"Circle set, hidden layers {list(config.hidden)}, SGD lr {config.order_learning_rate}, "
        f"{config.train_order_epochs} passes of batch size 1. *Sorted*: every pass presents all negative examples, "
        f"then all positive ones; *shuffled*: a new random order each pass. A unit is dead when its "
        f"output is 0 on every train and test point.\n\n" + markdown_table(rows, floatfmt=".4g"),
    )
    add_figures(exp, "C", histories, panels, data)
    for mode, r in results.items():
        print(
            f"part C {mode}: dead ReLU units {r['dead_units']}/{r['units']} ({r['dead_fraction']:.2f}; "
            f"{r['dead_at_init']} at init), test error {r['test_error']:.3f}, "
            f"predicted positive {r['predicted_positive']:.2f}"
        )
    return results, trained


# -- D and E: Boolean functions ----------------------------------------------------------------------------------


def set_weights(layers_and_weights):
    for layer, weights in layers_and_weights:
        layer.set_weights([np.asarray(w, np.float32) for w in weights])


def or_network():
    """No hidden layer: P = sigmoid(20 x1 + 20 x2 - 10): about 0 for (0, 0), about 1 otherwise."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid", name="output")])
    set_weights([(model.layers[0], ([[20.0], [20.0]], [-10.0]))])
    return model


def xor_network():
    """One hidden layer of 2 ReLUs: h1 = relu(x1 - x2), h2 = relu(x2 - x1) (one of them is 1 exactly when the
    inputs differ); P = sigmoid(20 h1 + 20 h2 - 10)."""
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(2, activation="relu", name="hidden_1"),
            keras.layers.Dense(1, activation="sigmoid", name="output"),
        ]
    )
    set_weights(
        [(model.layers[0], ([[1.0, -1.0], [-1.0, 1.0]], [0.0, 0.0])), (model.layers[1], ([[20.0], [20.0]], [-10.0]))]
    )
    return model


def truth_table(model, targets):
    p = model.predict(BOOLEAN_INPUTS, verbose=0)[:, 0]
    return [
        {"x1": int(a), "x2": int(b), "P(1)": float(q), "output": int(q > 0.5), "target": int(t)}
        for (a, b), q, t in zip(BOOLEAN_INPUTS, p, targets)
    ]


def part_or(exp):
    rows = truth_table(or_network(), [0, 1, 1, 1])
    correct = all(r["output"] == r["target"] for r in rows)
    exp.report.add(
        "Part D: OR with no hidden layer (hand-set weights)",
        "P(1) = sigmoid(20 x1 + 20 x2 - 10): the line x1 + x2 = 0.5 separates (0,0) from the rest.\n\n"
        + markdown_table(rows, floatfmt=".4g")
        + f"\nTruth table correct: **{correct}**",
    )
    print(f"part D OR truth table: {[(r['x1'], r['x2'], r['output']) for r in rows]} correct={correct}")
    return {"truth_table": rows, "correct": correct}


def best_linear_error_on_xor(step=0.25, limit=3.0):
    """Smallest XOR error over a grid of linear classifiers [w1 x1 + w2 x2 + b > 0]: an exhaustive check."""
    values = np.arange(-limit, limit + step / 2, step)
    w1, w2, b = np.meshgrid(values, values, values, indexing="ij")
    scores = w1[..., None] * BOOLEAN_INPUTS[:, 0] + w2[..., None] * BOOLEAN_INPUTS[:, 1] + b[..., None]
    errors = np.mean((scores > 0) != np.array([0, 1, 1, 0], bool), axis=-1)
    return float(errors.min())


def train_linear_on_truth_table(config, seeds=5, epochs=300):
    """No-hidden-layer nets trained on the 4 XOR points from several seeds; returns their errors."""
    errors = []
    targets = np.array([[0], [1], [1], [0]], np.float32)
    for offset in range(seeds):
        seeded(config, offset)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
        model.compile(keras.optimizers.Adam(0.1), "binary_crossentropy")
        model.fit(BOOLEAN_INPUTS, targets, batch_size=4, epochs=epochs, verbose=0)
        errors.append(float(np.mean((model.predict(BOOLEAN_INPUTS, verbose=0) > 0.5) != (targets > 0.5))))
    return errors


def train_xor(exp, data, config):
    """Train a network without a hidden layer on the Playground XOR set, in its own sub-folder."""
    seeded(config)
    linear = build_model([], "linear", "glorot_uniform", config.learning_rate, steps_per_execution=25)
    return train(
        exp,
        linear,
        data,
        XOR_FOLDER,
        epochs=config.train_epochs,
        batch_size=config.batch_size,
        setting="no hidden layer on XOR",
    )


def part_xor(exp, data, config, plan):
    """XOR: the trained net without a hidden layer, the best line on a grid, the hand-set 2-unit ReLU net; returns
    (findings, TrainResult by sub-folder)."""
    result = plan.result(XOR_FOLDER)
    linear = result.model
    playground_error = test_error(linear, data)
    truth_errors = train_linear_on_truth_table(config, epochs=20 if config.quick else 300)
    grid_best = best_linear_error_on_xor()
    rows = truth_table(xor_network(), [0, 1, 1, 0])
    correct = all(r["output"] == r["target"] for r in rows)
    exp.report.add(
        "Part E: XOR",
        f"No hidden layer: test error on the Playground XOR set after {config.train_epochs} epochs "
        f"**{playground_error:.3f}**; trained on the 4 truth-table points (Adam, 5 seeds) errors "
        f"{truth_errors}; the best of every linear classifier on a grid of (w1, w2, b) in [-3, 3] "
        f"(step 0.25) is **{grid_best:.2f}**: a line can get at most 3 of the 4 points right.\n\n"
        "Smallest ReLU network that computes XOR: one hidden layer of **2** units, "
        "h1 = relu(x1 - x2), h2 = relu(x2 - x1), P(1) = sigmoid(20 h1 + 20 h2 - 10). One hidden unit "
        "cannot work: the output is then a monotone function of one projection w.x, so its positive "
        "set along that projection is a half-line, but XOR needs (0,1) and (1,0) positive while the "
        "projections of (0,0) and (1,1) (0 and w1 + w2) are not both on the other side of them.\n\n"
        + markdown_table(rows, floatfmt=".4g")
        + f"\nTruth table correct: **{correct}**",
    )
    add_figures(exp, "E", {"no hidden layer": result.history}, [("no hidden layer (trained)", linear)], data)
    exp.report.add_image(
        "Part E: hand-set 2-unit ReLU network",
        plot_boundaries(
            [("hand-set XOR network", xor_network())],
            BOOLEAN_INPUTS,
            np.array([0, 1, 1, 0]),
            exp.run.path / "part_E_xor_network.png",
            extent=(-0.5, 1.5),
        ),
    )
    print(
        f"part E: no hidden layer -> Playground XOR test error {playground_error:.3f}, truth-table errors "
        f"{truth_errors}, best linear classifier on a grid {grid_best:.2f}"
    )
    print(f"part E hand-set XOR truth table: {[(r['x1'], r['x2'], r['output']) for r in rows]} correct={correct}")
    return {
        "playground_error": playground_error,
        "truth_table_errors": truth_errors,
        "best_linear_error": grid_best,
        "truth_table": rows,
        "correct": correct,
    }, {XOR_FOLDER: result}


# -- the app: `run(...)` from Python, `python -m apps.dl_principles` from a shell ---------------------------------


def ordered_parts(config):
    return sorted(config.part, key=PARTS.index)  # the assignment's order, whatever was typed


def datasets(config):
    """The toy set of every part of `--part` that trains a network, by part letter."""
    return {part: toy_splits(TOY_SET[part], config) for part in ordered_parts(config) if part in TOY_SET}


def declare(exp, data, config):
    """Every network this command trains, in the parts' order, each named by its sub-folder (the plan a cluster
    shares): A and B's random and zero initialisations, C's sorted and shuffled orders, E's XOR net. `data`: the
    toy sets by part (`datasets`)."""
    plan = Plan(exp.run.path)
    for part, toy in data.items():
        if part in PART_ACTIVATION:
            for init in INITS:
                plan.training(
                    init_folder(part, init), functools.partial(train_initialisation, exp, toy, config, part, init)
                )
        elif part == "C":
            for mode in ORDERS:
                plan.training(ORDER_FOLDER.format(order=mode), functools.partial(train_order, exp, toy, config, mode))
        else:
            plan.training(XOR_FOLDER, functools.partial(train_xor, exp, toy, config))
    return plan


def run(config=None, **overrides):
    """Run the parts `--part` asks for. The app exports no model: its result is the run folder's, with `.parts`
    holding every trained network's `TrainResult` by sub-folder (`A_relu_zeros`, `C_sorted`, ...) and
    `.metrics["findings"]` what each part measured, by part letter (what the report and the printed lines say).
    `run(part=("C",), epochs=5)`: keywords as the flags."""
    config = Config.make(config, **overrides)
    with Experiment(config, TITLE) as exp:
        data = datasets(config)
        plan = declare(exp, data, config).run()  # re-running the same command resumes every network
        findings, trained = {}, {}
        for part in ordered_parts(config):
            if part in PART_ACTIVATION:
                found, networks = part_initialisation(exp, data[part], config, part, plan)
            elif part == "C":
                found, networks = part_ordering(exp, data[part], config, plan)
            elif part == "D":
                found, networks = part_or(exp), {}
            else:
                found, networks = part_xor(exp, data[part], config, plan)
            findings[part] = found
            trained.update(networks)
        print(f"report: {exp.report.path}")
        return TrainResult([], {"findings": findings}, exp.run, parts=trained)


def headlines(run_path):
    """The numbers the results page quotes from a finished run folder of this app (see `tfnets.experiment.headline`):
    the final test error (a fraction) of the zero-initialised ReLU net of part A, and of the class-sorted order of
    part C."""
    found = {
        "zero_init_relu_test_error": INIT_FOLDER.format(part="A", activation="relu", init="zeros"),
        "sorted_order_test_error": ORDER_FOLDER.format(order="sorted"),
    }
    errors = {}
    for name, folder in found.items():
        hit = headline.metric(Path(run_path) / folder)
        errors[name] = None if hit is None else (1.0 - hit[0], hit[1])
    return headline.collect(**errors)


def main(argv=None):
    return run(Config.from_argv(argv))


if __name__ == "__main__":
    exit_with(main)

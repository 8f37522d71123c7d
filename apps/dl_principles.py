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

import numpy as np

from tfnets.data import make_toy_dataset, train_test_split
from tfnets.data.splits import Splits
from tfnets.experiment import Experiment
from tfnets.experiment.cli import (
    base_parser,
    choice_list,
    core_config,
    exit_with,
    int_list,
    positive_float,
    positive_int,
    require,
)
from tfnets.experiment.determinism import reseed
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plots import plot_overlay, pyplot, save_figure
from tfnets.experiment.report import markdown_table

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

PARTS = "ABCDE"
BOOLEAN_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)


def build_parser():
    parser = base_parser("dl_principles", __doc__.split("\n\n")[0], epochs=30, batch_size=10)
    parser.add_argument("--part", default=",".join(PARTS), help="parts to run, e.g. A,C (default all)")
    parser.add_argument("--hidden", type=int_list, default=[4, 2], help="hidden layer sizes (default 4,2)")
    parser.add_argument(
        "--learning-rate", type=positive_float, default=1.0, help="SGD step in parts A, B, E (default 1.0)"
    )
    parser.add_argument("--points", type=positive_int, default=500, help="points per toy set (default 500)")
    parser.add_argument("--noise", type=float, default=0.0, help="Playground noise / 100, 0..0.5 (default 0)")
    parser.add_argument(
        "--order-epochs", type=positive_int, default=5, help="passes over the data in part C, batch size 1 (default 5)"
    )
    parser.add_argument(
        "--order-learning-rate", type=positive_float, default=0.1, help="SGD step in part C (default 0.1)"
    )
    return parser


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


def toy_splits(name, args, seed_offset=0):
    """A Playground set split 50/50 into train and test (no validation split, as in Playground)."""
    x, y = make_toy_dataset(name, args.points, args.noise, seed=args.seed + seed_offset)
    x_train, y_train, x_test, y_test = train_test_split(x, y, 0.5, seed=args.seed)
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


def train(exp, model, data, name, args, *, epochs, batch_size, shuffle=True, setting=""):
    run = exp.run.child(name, {**exp.config, "model": name})
    keras_result = exp.train(
        model, data, run=run, epochs=epochs, batch_size=batch_size, shuffle=shuffle, setting=setting or name, title=name
    )
    return keras_result.history


def seeded(args, offset=0):
    reseed(args.seed + offset)


# -- figures -----------------------------------------------------------------------------------------------------


def plot_boundaries(panels, x, y, path, extent=None):
    """Decision boundaries: `panels` is [(title, model)], each drawn as P(class 1) over the plane with the points."""
    plt = pyplot()
    lo, hi = extent if extent is not None else (x.min() - 0.5, x.max() + 0.5)
    grid = np.linspace(lo, hi, 150, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    plane = np.stack([gx.ravel(), gy.ravel()], axis=1)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), squeeze=False)
    for ax, (title, model) in zip(axes[0], panels):
        p = model.predict(plane, verbose=0, batch_size=len(plane)).reshape(gx.shape)
        ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.6)
        ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1)
        labels = np.ravel(y) > 0.5
        ax.scatter(x[labels, 0], x[labels, 1], s=8, c="tab:blue", edgecolors="w", linewidths=0.3)
        ax.scatter(x[~labels, 0], x[~labels, 1], s=8, c="tab:orange", edgecolors="w", linewidths=0.3)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path)


def add_figures(exp, part, histories, panels, data, extent=None):
    curves = plot_overlay(
        histories,
        exp.run.path / f"part_{part}_test_loss.png",
        metrics=("test_loss", "loss"),
        title=f"Part {part}: test and training loss",
    )
    boundaries = plot_boundaries(panels, data.x_test, data.y_test, exp.run.path / f"part_{part}_boundaries.png", extent)
    exp.report.add_image(f"Part {part}: loss curves", curves)
    exp.report.add_image(f"Part {part}: decision boundaries (test points)", boundaries)


# -- A and B: initialisation -------------------------------------------------------------------------------------


def part_initialisation(exp, args, part, activation):
    """Random (Glorot) vs all-zero initialisation of a `activation` network on the gaussian set."""
    data = toy_splits("gaussian", args)
    results, histories, panels = {}, {}, []
    for init in ("glorot_uniform", "zeros"):
        seeded(args)
        model = build_model(args.hidden, activation, init, args.learning_rate, steps_per_execution=25)
        norms = gradient_norms(model, data.x_train, data.y_train)
        label = f"{activation}, {'random' if init != 'zeros' else 'zero'} init"
        history = train(
            exp,
            model,
            data,
            f"{part}_{activation}_{init}",
            args,
            epochs=args.epochs,
            batch_size=args.batch_size,
            setting=f"{label}, lr={args.learning_rate}",
        )
        histories[label] = history
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
            "first epoch with test error <= 5 %": r["epochs_to_5pct"] or f"never in {args.epochs}",
            **{f"spread {k}": v for k, v in r["unit_spread"].items()},
        }
        for init, r in results.items()
    ]
    exp.report.add(
        f"Part {part}: {activation} network, random vs zero initialisation",
        f"Gaussian set, hidden layers {args.hidden}, SGD lr {args.learning_rate}, batch "
        f"{args.batch_size}, {args.epochs} epochs. *Spread* = largest deviation of a unit's incoming "
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
    return results


# -- C: example order --------------------------------------------------------------------------------------------


def part_ordering(exp, args):
    """ReLU network, batch size 1: negatives first then positives (every pass), vs a fresh shuffle each pass."""
    data = toy_splits("circle", args)
    order = np.argsort(data.y_train[:, 0], kind="stable")  # label 0 (negative) first, then label 1
    sorted_data = dataclasses.replace(data, x_train=data.x_train[order], y_train=data.y_train[order])
    all_points = np.concatenate([data.x_train, data.x_test])
    results, histories, panels = {}, {}, []
    for mode, split, shuffle in (("sorted", sorted_data, False), ("shuffled", data, True)):
        seeded(args)
        model = build_model(args.hidden, "relu", "glorot_uniform", args.order_learning_rate, steps_per_execution=25)
        before = dead_units(model, all_points)
        history = train(
            exp,
            model,
            split,
            f"C_{mode}",
            args,
            epochs=args.order_epochs,
            batch_size=1,
            shuffle=shuffle,
            setting=f"{mode} order, batch 1, lr={args.order_learning_rate}",
        )
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
        histories[f"{mode} order"] = history
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
        f"Circle set, hidden layers {args.hidden}, SGD lr {args.order_learning_rate}, "
        f"{args.order_epochs} passes of batch size 1. *Sorted*: every pass presents all negative examples, "
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
    return results


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


def train_linear_on_truth_table(args, seeds=5, epochs=300):
    """No-hidden-layer nets trained on the 4 XOR points from several seeds; returns their errors."""
    errors = []
    targets = np.array([[0], [1], [1], [0]], np.float32)
    for offset in range(seeds):
        seeded(args, offset)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
        model.compile(keras.optimizers.Adam(0.1), "binary_crossentropy")
        model.fit(BOOLEAN_INPUTS, targets, batch_size=4, epochs=epochs, verbose=0)
        errors.append(float(np.mean((model.predict(BOOLEAN_INPUTS, verbose=0) > 0.5) != (targets > 0.5))))
    return errors


def part_xor(exp, args):
    data = toy_splits("xor", args)
    seeded(args)
    linear = build_model([], "linear", "glorot_uniform", args.learning_rate, steps_per_execution=25)
    history = train(
        exp,
        linear,
        data,
        "E_no_hidden_layer",
        args,
        epochs=args.epochs,
        batch_size=args.batch_size,
        setting="no hidden layer on XOR",
    )
    playground_error = test_error(linear, data)
    truth_errors = train_linear_on_truth_table(args, epochs=20 if args.quick else 300)
    grid_best = best_linear_error_on_xor()
    rows = truth_table(xor_network(), [0, 1, 1, 0])
    correct = all(r["output"] == r["target"] for r in rows)
    exp.report.add(
        "Part E: XOR",
        f"No hidden layer: test error on the Playground XOR set after {args.epochs} epochs "
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
    add_figures(exp, "E", {"no hidden layer": history}, [("no hidden layer (trained)", linear)], data)
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
    }


parse_parts = choice_list(PARTS, name="--part", allow_all=True)


def get_config(args):
    """What defines a run of this app (its run id hashes exactly these fields)."""
    return {
        **core_config(args),
        "part": args.part,
        "hidden": args.hidden,
        "learning_rate": args.learning_rate,
        "points": args.points,
        "noise": args.noise,
        "order_epochs": args.order_epochs,
        "order_learning_rate": args.order_learning_rate,
    }


def main(argv=None):
    args = build_parser().parse_args(argv)
    parts = parse_parts(args.part)
    require(0.0 <= args.noise <= 0.5, f"--noise must be between 0 and 0.5, got {args.noise}")
    require(args.points >= 8, f"--points must be at least 8, got {args.points}")
    if args.quick:
        args.order_epochs = min(args.order_epochs, 2)
    exp = Experiment(args, "Deep-learning principles on toy data", get_config)
    results = {}
    if "A" in parts:
        results["A"] = part_initialisation(exp, args, "A", "relu")
    if "B" in parts:
        results["B"] = part_initialisation(exp, args, "B", "sigmoid")
    if "C" in parts:
        results["C"] = part_ordering(exp, args)
    if "D" in parts:
        results["D"] = part_or(exp)
    if "E" in parts:
        results["E"] = part_xor(exp, args)
    print(f"report: {exp.report.path}")
    return results


if __name__ == "__main__":
    exit_with(main)

"""MNIST with a budget of hidden units: how should the units be spent, wide or deep?

Reproduces the fully-connected MNIST part of a Caltech CS155 deep-learning problem set: flattened, normalised
MNIST, one-hot targets, categorical cross-entropy, Adam, and networks with at most 100, 200 and 1,000 hidden
units in total (original bars: >= 97.5 / 98.0 / 98.3 % test accuracy). On top of the original, the actual
depth-vs-width study: for each budget a sweep over ways to spend it ([100], [50, 50], [34, 33, 33], [25] * 4,
...) with one training recipe, tabulating accuracy and parameter count against depth.

    python -m apps.mnist_depth_width                                    # budgets 100, 200, 1000; depths 1-4
    python -m apps.mnist_depth_width --budgets 200 --max-depth 2
    python -m apps.mnist_depth_width --sweep layers=[100],[50,50],[80,20]
    python -m apps.mnist_depth_width --dataset fashion_mnist

The recipe (the same for every architecture): 28x28x1 input, random shifts of up to 2 pixels while training,
Flatten, then per hidden layer Dense -> BatchNormalization -> ReLU -> Dropout, and a 10-way softmax (logits);
Adam with a cosine-decaying learning rate. Architectures are compared on the validation split (the last
10,000 training images); test accuracy is reported, never used for selection. The best architecture of each
budget is exported to `saved_models/mnist_depth_width/budget_<N>/` (28x28 greyscale in; PNGs work with
`python -m apps.predict`).
"""

import json
import math

from tfnets.data import load_fashion_mnist, load_mnist
from tfnets.errors import ConfigError
from tfnets.experiment import Experiment
from tfnets.experiment.cli import base_parser, core_config, exit_with, int_list, positive_float, positive_int, require
from tfnets.experiment.determinism import reseed
from tfnets.experiment.distribute import synchronized_batch_norm
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plots import plot_xy
from tfnets.experiment.sweep import Sweep, add_sweep_arguments, parse_sweep, sweep_config, sweep_options
from tfnets.nn.augment import exportable, with_random_shift

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

LOADERS = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist}
ORIGINAL_BARS = {100: 0.975, 200: 0.980, 1000: 0.983}  # the problem set's test-accuracy bars
GOALS = {100: 0.980, 200: 0.984, 1000: 0.987}  # the test accuracies this project aims for at each budget


def layers_value(text):
    """`"[50,50]"` -> `[50, 50]` (a JSON list of positive ints); the type of `--sweep layers=...` values."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{text!r} is not a JSON list such as [50,50]") from None
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and v > 0 for v in value):
        raise ValueError(f"{text!r} must be a non-empty list of positive integers such as [50,50]")
    return value


def build_parser():
    parser = base_parser("mnist_depth_width", __doc__.split("\n\n")[0], epochs=15, batch_size=128)
    parser.add_argument("--dataset", choices=sorted(LOADERS), default="mnist")
    parser.add_argument(
        "--budgets",
        type=int_list,
        default=[100, 200, 1000],
        help="hidden-unit budgets, each swept over depths 1..--max-depth (default 100,200,1000)",
    )
    parser.add_argument("--max-depth", type=positive_int, default=4, help="deepest split of a budget (default 4)")
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        default=2e-3,
        help="Adam's initial learning rate, decayed to 0 by a cosine (default 0.002)",
    )
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout after every hidden layer (default 0.1)")
    parser.add_argument(
        "--shift",
        type=int,
        default=2,
        help="largest random shift in pixels while training; 0 turns augmentation off (default 2)",
    )
    add_sweep_arguments(parser, {"layers": layers_value})
    return parser


def architectures(budget, max_depth):
    """Ways to spend `budget` hidden units on 1..max_depth equal layers: 100 -> [100], [50, 50], [34, 33, 33], ..."""
    out = []
    for depth in range(1, max_depth + 1):
        if depth > budget:
            break
        base, extra = divmod(budget, depth)
        out.append([base + 1] * extra + [base] * (depth - extra))
    return out


def build_model(hidden_layers, *, learning_rate, decay_steps, dropout=0.1, shift=2, num_classes=10):
    """The compiled training model: 28x28x1 images -> [random shift] -> classifier -> logits (N, 10).

    The classifier (`exportable(model)`, the part that is exported; see `tfnets.nn.augment`) is Flatten, then
    Dense -> BatchNorm -> ReLU -> Dropout per hidden layer, then a Dense logits layer.
    """
    classifier = build_classifier(hidden_layers, dropout, num_classes)
    model = with_random_shift(classifier, shift, name="mlp_" + "_".join(map(str, hidden_layers)))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, decay_steps))
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def build_classifier(hidden_layers, dropout, num_classes=10):
    """(N, 28, 28, 1) -> Flatten -> (Dense -> BN -> ReLU -> Dropout) per hidden layer -> logits (N, 10)."""
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Flatten()(inputs)
    for i, units in enumerate(hidden_layers):
        # No bias: the batch norm's beta plays that role.
        x = keras.layers.Dense(units, use_bias=False, name=f"dense_{i + 1}")(x)
        x = keras.layers.BatchNormalization(synchronized=synchronized_batch_norm(), name=f"bn_{i + 1}")(x)
        x = keras.layers.ReLU()(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="classifier")


def count_parameters(layers, dropout):
    """All parameters of the classifier (weights, biases, batch-norm gammas/betas and moving statistics)."""
    return build_classifier(layers, dropout).count_params()


def prepare(data, num_classes=10):
    """(N, 28, 28) in [0, 1] -> (N, 28, 28, 1); integer labels -> one-hot float32 (N, 10)."""
    import dataclasses

    one_hot = lambda y: keras.utils.to_categorical(y, num_classes).astype("float32")  # noqa: E731
    return dataclasses.replace(
        data,
        x_train=data.x_train[..., None],
        y_train=one_hot(data.y_train),
        x_valid=data.x_valid[..., None],
        y_valid=one_hot(data.y_valid),
        x_test=data.x_test[..., None],
        y_test=one_hot(data.y_test),
    )


def plan_budgets(args):
    """{budget: [architectures]}: from `--sweep layers=...` (grouped by total units) or from --budgets."""
    space = parse_sweep(args.sweep, {"layers": layers_value}, args)
    if space:
        plan = {}
        for layers in space["layers"]:
            plan.setdefault(sum(layers), []).append(layers)
        return dict(sorted(plan.items()))
    require(all(b >= 1 for b in args.budgets), "--budgets must be positive integers")
    return {budget: architectures(budget, args.max_depth) for budget in args.budgets}


def budget_study(exp, data, budget, archs, args):
    """Train every architecture of one budget (a resumable sweep); returns its table rows."""
    run = exp.run.child(f"budget_{budget}", {**exp.config, "budget": budget})
    sweep = Sweep(run, {"layers": archs}, epochs=args.epochs, name="depth", **sweep_options(args))
    steps = args.epochs * math.ceil(len(data.x_train) / args.batch_size)

    def train(values, trial_run, epochs=None, callbacks=()):
        reseed(args.seed)
        model = make_model(values["layers"], args, steps)
        print(f"budget {budget}: layers {values['layers']}, {exportable(model).count_params():,} parameters")
        return exp.train(
            model,
            data,
            run=trial_run,
            epochs=epochs,
            setting=f"layers={values['layers']}",
            callbacks=callbacks,
            title=f"hidden layers {values['layers']}",
        )

    sweep.search(train)
    sweep.write_outputs(exp.report, f"Budget {budget}: sweep over depth", metrics=("val_loss", "val_accuracy"))
    rows = []
    for row in sweep.results():
        layers = row["layers"]
        rows.append(
            {
                "budget": budget,
                "depth": len(layers),
                "layers": str(layers),
                "parameters": count_parameters(layers, args.dropout),
                "valid_accuracy": row.get("final_valid_accuracy", float("nan")),
                "test_accuracy": row.get("final_test_accuracy", float("nan")),
                "epochs": args.epochs,
                "status": row["status"],
                "wall_time_s": row.get("wall_time_s"),
            }
        )
    return sweep, rows


def make_model(layers, args, decay_steps):
    return build_model(
        layers, learning_rate=args.learning_rate, decay_steps=decay_steps, dropout=args.dropout, shift=args.shift
    )


def export_best(exp, sweep, rows, data, args, budget):
    """Rebuild the budget's best architecture (by validation accuracy), load its weights, export it."""
    done = [r for r in rows if r["status"] == "completed"]
    if not done:
        return None
    best = max(done, key=lambda r: r["valid_accuracy"])
    layers = json.loads(best["layers"])
    steps = args.epochs * math.ceil(len(data.x_train) / args.batch_size)
    model = make_model(layers, args, steps)
    model(data.x_train[:1])
    model.optimizer.build(model.trainable_variables)
    sweep.trial_run({"layers": layers}).restore(model)
    path = exp.export(
        exportable(model),
        export_dir=exp.export_dir / f"budget_{budget}",
        data=data,
        class_names=data.class_names,
        input_shape=[28, 28, 1],
        image_style="mnist",
        extra={"layers": layers, "budget": budget},
    )
    print(
        f"budget {budget}: best layers {layers} (valid {best['valid_accuracy']:.4f}, "
        f"test {best['test_accuracy']:.4f}) exported to {path}"
    )
    return best


def plot_depth(rows, path):
    series = {}
    for budget in sorted({r["budget"] for r in rows}):
        mine = sorted(
            (r for r in rows if r["budget"] == budget and r["status"] == "completed"), key=lambda r: r["depth"]
        )
        if mine:
            series[f"{budget} units"] = ([r["depth"] for r in mine], [100 * r["test_accuracy"] for r in mine])
    return plot_xy(
        series,
        path,
        "hidden layers (same total units)",
        "test accuracy (%)",
        title="Depth vs width at a fixed hidden-unit budget",
    )


def get_config(args):
    """What defines a run of this app (its run id hashes exactly these fields)."""
    return {
        **core_config(args),
        "dataset": args.dataset,
        "budgets": args.budgets,
        "max_depth": args.max_depth,
        "learning_rate": args.learning_rate,
        "dropout": args.dropout,
        "shift": args.shift,
        **sweep_config(args),
    }


def main(argv=None):
    args = build_parser().parse_args(argv)
    require(0.0 <= args.dropout < 1.0, f"--dropout must be in [0, 1), got {args.dropout}")
    require(0 <= args.shift <= 8, f"--shift must be between 0 and 8 pixels, got {args.shift}")
    plan = plan_budgets(args)
    exp = Experiment(args, f"Depth vs width on {args.dataset}", get_config)
    data = prepare(exp.use_data(LOADERS[args.dataset](args.data_dir)))
    exp.report.add(
        "Recipe",
        f"Input 28x28x1, random shifts up to {args.shift} px (training only), Flatten, "
        f"Dense->BatchNorm->ReLU->Dropout({args.dropout}) per hidden layer, softmax output; "
        f"Adam, learning rate {args.learning_rate} with cosine decay to 0 over "
        f"{args.epochs} epochs, batch {args.batch_size}, one-hot targets, categorical "
        f"cross-entropy. Selection by validation accuracy; test reported only.",
    )

    all_rows, best_rows = [], []
    for budget, archs in plan.items():
        sweep, rows = budget_study(exp, data, budget, archs, args)
        all_rows += rows
        best = export_best(exp, sweep, rows, data, args, budget)
        if best is not None:
            best_rows.append(
                {
                    **best,
                    "original bar": ORIGINAL_BARS.get(budget, ""),
                    "goal": GOALS.get(budget, "") if args.dataset == "mnist" else "",
                }
            )
    if not all_rows:
        raise ConfigError("no architecture finished training; see the trial folders in " + str(exp.run.path))

    columns = ["budget", "depth", "layers", "parameters", "valid_accuracy", "test_accuracy", "epochs", "wall_time_s"]
    exp.report.add_table("Depth vs width: accuracy and parameters", all_rows, columns)
    exp.report.add_image("Test accuracy vs depth", plot_depth(all_rows, exp.run.path / "depth_vs_accuracy.png"))
    exp.report.add_table(
        "Best architecture per budget (chosen on validation)",
        best_rows,
        ["budget", "layers", "parameters", "valid_accuracy", "test_accuracy", "original bar", "goal"],
    )
    print("\nbudget depth layers                 params   valid    test")
    for r in all_rows:
        print(
            f"{r['budget']:>6} {r['depth']:>5} {r['layers']:<22} {r['parameters']:>7} "
            f"{r['valid_accuracy']:.4f} {r['test_accuracy']:.4f}"
        )
    for r in best_rows:
        print(f"best for budget {r['budget']}: {r['layers']} test accuracy {100 * r['test_accuracy']:.2f} %")
    print(f"report: {exp.report.path}")
    return {"rows": all_rows, "best": best_rows}


if __name__ == "__main__":
    exit_with(main)

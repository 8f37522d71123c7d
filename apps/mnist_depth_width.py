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

import dataclasses
import json
import math
import typing
from pathlib import Path

from tfnets.data import load_fashion_mnist, load_mnist
from tfnets.errors import ConfigError
from tfnets.experiment import Experiment, headline
from tfnets.experiment.cli import exit_with, require
from tfnets.experiment.config import SweepConfig, batch_size_option, int_list, option, positive_float, positive_int
from tfnets.experiment.determinism import reseed
from tfnets.experiment.distribute import synchronized_batch_norm
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plan import Plan
from tfnets.experiment.plots import plot_xy
from tfnets.experiment.sweep import Sweep
from tfnets.experiment.trial_results import finished_trials
from tfnets.nn.augment import exportable, with_random_shift

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

LOADERS = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist}
ORIGINAL_BARS = {100: 0.975, 200: 0.980, 1000: 0.983}  # the problem set's test-accuracy bars
GOALS = {100: 0.980, 200: 0.984, 1000: 0.987}  # the test accuracies this project aims for at each budget
# Each budget's depth sweep lives in its own sub-folder of the run folder, with its results table
# (`Sweep.write_outputs` names it after the sweep): the app chooses the exported architecture from that table, and
# `headlines` reads the same table with the same rule.
BUDGET_PART = "budget_{budget}"
DEPTH_SWEEP = "depth"
DEPTH_RESULTS = f"{DEPTH_SWEEP}_results.csv"


def layers_value(text):
    """`"[50,50]"` -> `[50, 50]` (a JSON list of positive ints); the type of `--sweep layers=...` values."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{text!r} is not a JSON list such as [50,50]") from None
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and v > 0 for v in value):
        raise ValueError(f"{text!r} must be a non-empty list of positive integers such as [50,50]")
    return value


# ---------------------------------------------------------------------------------------------------------------
# Configuration: the command line, `run(...)`'s keywords and config.json are all derived from this one declaration
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Config(SweepConfig):
    APP = "mnist_depth_width"
    DESCRIPTION = "MNIST with a budget of hidden units: how should the units be spent, wide or deep?"
    EPOCHS = 15
    SWEEPABLE = {"layers": layers_value}

    batch_size: int = batch_size_option(128)
    dataset: str = option("mnist", "mnist (default) or fashion_mnist", group="model", choices=sorted(LOADERS))
    budgets: typing.Tuple[int, ...] = option(
        (100, 200, 1000),
        "hidden-unit budgets, each swept over depths 1..--max-depth (default {default})",
        group="model",
        parse=int_list,
    )
    max_depth: int = option(4, "deepest split of a budget (default {default})", group="model", parse=positive_int)
    learning_rate: float = option(
        2e-3,
        "Adam's initial learning rate, decayed to 0 by a cosine (default {default})",
        group="model",
        parse=positive_float,
    )
    dropout: float = option(0.1, "dropout after every hidden layer (default {default})", group="model")
    shift: int = option(
        2,
        "largest random shift in pixels while training; 0 turns augmentation off (default {default})",
        group="model",
    )

    def __post_init__(self):
        super().__post_init__()
        require(0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1), got {self.dropout}")
        require(0 <= self.shift <= 8, f"--shift must be between 0 and 8 pixels, got {self.shift}")
        require(self.budgets, "--budgets needs at least one budget, e.g. --budgets 100")


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


def plan_budgets(config):
    """{budget: [architectures]}: from `--sweep layers=...` (grouped by total units) or from --budgets."""
    if config.space:
        plan = {}
        for layers in config.space["layers"]:
            plan.setdefault(sum(layers), []).append(layers)
        return dict(sorted(plan.items()))
    return {budget: architectures(budget, config.max_depth) for budget in config.budgets}


def decay_steps(data, config):
    """The optimizer steps of a whole training: the cosine reaches 0 at the last one."""
    return config.train_epochs * math.ceil(len(data.x_train) / config.batch_size)


def make_model(layers, config, steps):
    return build_model(
        layers, learning_rate=config.learning_rate, decay_steps=steps, dropout=config.dropout, shift=config.shift
    )


def train(exp, data, config, layers, run, epochs=None, callbacks=()):
    """Build and train one architecture into `run` (a trial of a budget's sweep); returns its `TrainResult` (with
    the model)."""
    reseed(config.seed)
    model = make_model(layers, config, decay_steps(data, config))
    print(f"budget {sum(layers)}: layers {layers}, {exportable(model).count_params():,} parameters")
    result = exp.train(
        model,
        data,
        run=run,
        epochs=epochs,
        setting=f"layers={layers}",
        callbacks=callbacks,
        title=f"hidden layers {layers}",
    )
    return dataclasses.replace(result, model=model)


def budget_sweep(exp, config, budget, archs):
    """One budget's search over its architectures, in the budget's own sub-folder."""
    run = exp.run.child(BUDGET_PART.format(budget=budget), {**exp.config, "budget": budget})
    return Sweep(run, {"layers": archs}, epochs=config.train_epochs, name=DEPTH_SWEEP, **config.sweep_options())


def budget_trainer(exp, data, config, trained):
    """A budget's train function: one architecture; `trained` collects each result (with its model) by trial folder
    name."""

    def train_trial(values, trial_run, epochs=None, callbacks=()):
        trained[trial_run.path.name] = train(exp, data, config, values["layers"], trial_run, epochs, callbacks)
        return trained[trial_run.path.name]

    return train_trial


def declare(exp, data, config, trained):
    """Every training this command does, in order (the plan a cluster shares): one search per budget, named after
    its sub-folder. `trained[budget]` collects the results of that budget's trials trained by this process."""
    plan = Plan(exp.run.path)
    for budget, archs in plan_budgets(config).items():
        trainer = budget_trainer(exp, data, config, trained.setdefault(budget, {}))
        plan.sweep(BUDGET_PART.format(budget=budget), budget_sweep(exp, config, budget, archs), trainer)
    return plan


def budget_rows(exp, config, sweep, budget):
    """A budget's finished search: its sweep table in the report, and one row per architecture for the summary."""
    sweep.write_outputs(exp.report, f"Budget {budget}: sweep over depth", metrics=("val_loss", "val_accuracy"))
    rows = []
    for row in sweep.results():
        layers = row["layers"]
        rows.append(
            {
                "budget": budget,
                "depth": len(layers),
                "layers": str(layers),
                "parameters": count_parameters(layers, config.dropout),
                "valid_accuracy": row.get("final_valid_accuracy", float("nan")),
                "test_accuracy": row.get("final_test_accuracy", float("nan")),
                "epochs": config.train_epochs,
                "status": row["status"],
                "wall_time_s": row.get("wall_time_s"),
            }
        )
    return rows


def best_architecture(results):
    """The trial a budget exports: of the completed rows of its depth sweep (`Sweep.results()`, or its results
    table read back, values as text), the highest final validation accuracy; ties go to the shallower network, then
    to the trial folder's name, so the rows' order never matters. None when no trial completed."""
    done = [r for r in results if r.get("status") == "completed"]
    if not done:
        return None
    return min(done, key=lambda r: (-float(r["final_valid_accuracy"]), len(_layers(r["layers"])), r["trial"]))


def _layers(value):
    return value if isinstance(value, list) else json.loads(value)


def export_best(exp, sweep, data, config, budget, trained):
    """Rebuild the budget's best architecture (`best_architecture`), load its weights, export it. Returns that
    trial's `TrainResult` with the restored model and the export's path, every finished trial of the budget under
    `.parts`; None when no trial completed."""
    best = best_architecture(sweep.results())
    if best is None:
        return None
    layers = _layers(best["layers"])
    model = make_model(layers, config, decay_steps(data, config))
    sweep.restore_trial({"layers": layers}, model, data.x_train[:1])
    path = exp.export(
        exportable(model),
        export_dir=exp.export_dir / BUDGET_PART.format(budget=budget),
        data=data,
        class_names=data.class_names,
        input_shape=[28, 28, 1],
        image_style="mnist",
        extra={"layers": layers, "budget": budget},
    )
    print(
        f"budget {budget}: best layers {layers} (valid {best['final_valid_accuracy']:.4f}, "
        f"test {best['final_test_accuracy']:.4f}) exported to {path}"
    )
    trials = finished_trials(sweep, trained)
    return dataclasses.replace(trials[best["trial"]], model=model, export_path=path, parts=trials)


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


# ---------------------------------------------------------------------------------------------------------------
# The app: `run(...)` from Python, `python -m apps.mnist_depth_width` from a shell
# ---------------------------------------------------------------------------------------------------------------


def run(config=None, **overrides):
    """Sweep every budget over its depths and export each budget's best architecture. Returns the largest budget's
    exported architecture as a `TrainResult` (`.final`, `.history`, `.model`, `.run_path`, `.export_path`); `.parts`
    holds each budget's (by folder name, `budget_<N>`), whose own `.parts` hold every trial of that budget.
    `run(quick=True, budgets=(40,), max_depth=2)`: keywords as the flags."""
    config = Config.make(config, **overrides)
    with Experiment(config, f"Depth vs width on {config.dataset}") as exp:
        data = prepare(exp.use_data(LOADERS[config.dataset](config.data_dir)))
        trained = {}
        plan = declare(exp, data, config, trained).run()  # re-running the same command resumes every training
        exp.report.add(
            "Recipe",
            f"Input 28x28x1, random shifts up to {config.shift} px (training only), Flatten, "
            f"Dense->BatchNorm->ReLU->Dropout({config.dropout}) per hidden layer, softmax output; "
            f"Adam, learning rate {config.learning_rate} with cosine decay to 0 over "
            f"{config.train_epochs} epochs, batch {config.batch_size}, one-hot targets, categorical "
            f"cross-entropy. Selection by validation accuracy; test reported only.",
        )

        all_rows, best_rows, exported = [], [], {}
        for budget, budget_trained in trained.items():
            sweep = plan.result(BUDGET_PART.format(budget=budget))
            rows = budget_rows(exp, config, sweep, budget)
            all_rows += rows
            # Restores the best trial's finished checkpoint: no training.
            best = export_best(exp, sweep, data, config, budget, budget_trained)
            if best is not None:
                exported[budget] = best
                layers = str(best.run.config["trial"]["layers"])
                best_rows.append(
                    {
                        **next(row for row in rows if row["layers"] == layers),
                        "original bar": ORIGINAL_BARS.get(budget, ""),
                        "goal": GOALS.get(budget, "") if config.dataset == "mnist" else "",
                    }
                )
        if not exported:
            raise ConfigError("no architecture finished training; see the trial folders in " + str(exp.run.path))

        columns = [
            "budget",
            "depth",
            "layers",
            "parameters",
            "valid_accuracy",
            "test_accuracy",
            "epochs",
            "wall_time_s",
        ]
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
        parts = {BUDGET_PART.format(budget=budget): result for budget, result in sorted(exported.items())}
        return dataclasses.replace(exported[max(exported)], parts=parts)


def headlines(run_path):
    """The numbers the results page quotes from a finished run folder of this app (see `tfnets.experiment.headline`):
    `budget_<N>_test_accuracy`, the test accuracy of the architecture each budget exports, read from the budget's
    depth-sweep table with the rule the app chose it by (`best_architecture`)."""
    found = {}
    prefix = BUDGET_PART.format(budget="")
    for table in sorted(Path(run_path).glob(f"{BUDGET_PART.format(budget='*')}/{DEPTH_RESULTS}")):
        best = best_architecture(headline.csv_rows(table) or [])
        if best is not None:
            budget = table.parent.name.removeprefix(prefix)
            found[f"budget_{budget}_test_accuracy"] = (float(best["final_test_accuracy"]), table)
    return found


def main(argv=None):
    return run(Config.from_argv(argv))


if __name__ == "__main__":
    exit_with(main)

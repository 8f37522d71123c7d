"""A small MNIST CNN: CNN arithmetic, a dropout study and a < 100k-parameter network at >= 99.3 %.

Reproduces the convolutional part of a Caltech CS155 deep-learning problem set in TensorFlow/Keras:

1. CNN arithmetic, answered by building the layers in Keras rather than by hand: the parameters of 8 filters
   of 5x5x3 with biases, the output shape for a 32x32x3 input (no padding, stride 1), and the 2x2 average- and
   max-pooling outputs of the problem set's four 4x4 patterns (a 2x2 block of ones in one corner).
2. Dropout study: the same CNN with dropout rates 0.0, 0.1, ..., 0.9, each trained for ONE epoch as in the
   original (which got 0.9714 at rate 0 falling to 0.8479 at 0.9).
3. Full training of the configuration that was best on the validation split (the last 10,000 training
   images); the test set is only reported. Exported to `saved_models/mnist_cnn/` for `python -m apps.predict`.

    python -m apps.mnist_cnn                       # arithmetic, study, full training (12 epochs)
    python -m apps.mnist_cnn --dropout 0.2         # skip the study, train with this rate
    python -m apps.mnist_cnn --arithmetic-only

The network (the same in the study and the final training): random shifts of up to 2 pixels while training,
then [Conv 3x3 -> BatchNorm -> ReLU] x2 -> MaxPool 2x2 -> Dropout, twice over (16, 32 then 32, 64 filters,
"valid" padding: 28 -> 24 -> 12 -> 8 -> 4), Flatten, Dropout, Dense(10) logits; Adam with a cosine-decaying
learning rate.
"""

import dataclasses
import math
import typing
from pathlib import Path

import numpy as np

from tfnets.data import load_mnist
from tfnets.experiment import Experiment, headline
from tfnets.experiment.cli import exit_with, require
from tfnets.experiment.config import CommonConfig, batch_size_option, float_list, option, positive_float, positive_int
from tfnets.experiment.determinism import reseed
from tfnets.experiment.distribute import synchronized_batch_norm
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plan import Plan
from tfnets.experiment.plots import plot_xy
from tfnets.experiment.sweep import Sweep
from tfnets.experiment.trial_results import finished_trials
from tfnets.nn.augment import exportable, with_random_shift

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

DEFAULT_RATES = [round(0.1 * i, 1) for i in range(10)]
ORIGINAL_STUDY = {0.0: 0.9714, 0.9: 0.8479}  # the original report's end points
PARAMETER_LIMIT = 100_000
# The sub-folders of the run folder: the dropout study (a sweep, its table named after the sweep) and the final
# network. `headlines` reads the same names.
STUDY_PART = "dropout_study"
STUDY_SWEEP = "dropout"
STUDY_RESULTS = f"{STUDY_SWEEP}_results.csv"
FINAL_PART = "final"


@dataclasses.dataclass(frozen=True)
class Config(CommonConfig):
    APP = "mnist_cnn"
    DESCRIPTION = "A small MNIST CNN: CNN arithmetic, a dropout study and a < 100k-parameter network at >= 99.3 %."
    EPOCHS = 12

    batch_size: int = batch_size_option(128)
    dropout_rates: typing.Tuple[float, ...] = option(
        tuple(DEFAULT_RATES),
        "rates of the one-epoch dropout study (default 0.0,0.1,...,0.9)",
        group="model",
        parse=float_list,
    )
    study_epochs: int = option(
        1, "epochs per study rate (default 1, as in the original)", group="model", parse=positive_int
    )
    dropout: typing.Optional[float] = option(
        None, "skip the study and train the final network with this dropout rate", group="model"
    )
    learning_rate: float = option(
        2e-3,
        "Adam's initial learning rate, decayed to 0 by a cosine (default {default})",
        group="model",
        parse=positive_float,
    )
    shift: int = option(
        2,
        "largest random shift in pixels while training; 0 turns augmentation off (default {default})",
        group="model",
    )
    arithmetic_only: bool = option(False, "only answer the CNN-arithmetic questions", group="model")

    def __post_init__(self):
        super().__post_init__()
        require(
            all(0.0 <= r < 1.0 for r in self.dropout_rates) and self.dropout_rates,
            "--dropout-rates must be numbers in [0, 1), e.g. 0.0,0.2,0.5",
        )
        require(self.dropout is None or 0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1), got {self.dropout}")
        require(0 <= self.shift <= 8, f"--shift must be between 0 and 8 pixels, got {self.shift}")


# -- 1. CNN arithmetic -------------------------------------------------------------------------------------------


def corner_patterns():
    """The four 4x4 patterns: a 2x2 block of ones in the top-left corner, and its three 90-degree rotations."""
    base = np.zeros((4, 4), np.float32)
    base[:2, :2] = 1.0
    return [np.rot90(base, k).copy() for k in range(4)]


def cnn_arithmetic():
    """Answers computed by Keras layers. Returns a dict of plain Python values."""
    conv = keras.layers.Conv2D(8, 5, padding="valid", strides=1, use_bias=True)
    output = conv(keras.Input((32, 32, 3)))
    patterns = np.stack(corner_patterns())[..., None]  # (4, 4, 4, 1)
    average = keras.ops.convert_to_numpy(keras.layers.AveragePooling2D(2)(patterns))[..., 0]
    maximum = keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(2)(patterns))[..., 0]
    return {
        "conv_parameters": conv.count_params(),
        "conv_output_shape": tuple(output.shape[1:]),
        "patterns": [p.astype(int).tolist() for p in corner_patterns()],
        "average_pooling": [a.tolist() for a in average],
        "max_pooling": [m.tolist() for m in maximum],
    }


def report_arithmetic(exp, answers):
    lines = [
        f"- 8 filters of 5x5x3 with biases: **{answers['conv_parameters']} parameters** "
        f"(Keras `Conv2D(8, 5).count_params()`)",
        f"- output for a 32x32x3 input, no padding, stride 1: **{'x'.join(map(str, answers['conv_output_shape']))}**",
        "",
        "| pattern | 2x2 average pooling | 2x2 max pooling |",
        "|---|---|---|",
    ]
    for pattern, avg, mx in zip(answers["patterns"], answers["average_pooling"], answers["max_pooling"]):
        lines.append(f"| {pattern} | {avg} | {mx} |")
    exp.report.add("CNN arithmetic (computed with Keras layers)", "\n".join(lines))
    print(
        f"conv 8 filters 5x5x3 + bias: {answers['conv_parameters']} parameters; "
        f"output shape for 32x32x3: {answers['conv_output_shape']}"
    )
    for i, (avg, mx) in enumerate(zip(answers["average_pooling"], answers["max_pooling"])):
        print(f"pattern {i} (rotated {90 * i} deg): average pooling {avg}, max pooling {mx}")


# -- 2./3. the network -------------------------------------------------------------------------------------------


def build_classifier(dropout, filters=(16, 32, 32, 64), num_classes=10):
    """(N, 28, 28, 1) in [0, 1] -> logits (N, 10); every Dropout layer uses `dropout`."""
    inputs = keras.Input((28, 28, 1), name="image")
    x = inputs
    for block, pair in enumerate((filters[:2], filters[2:])):
        for i, n in enumerate(pair):
            # No bias: the batch norm's beta plays that role.
            x = keras.layers.Conv2D(n, 3, padding="valid", use_bias=False, name=f"conv{block + 1}_{i + 1}")(x)
            x = keras.layers.BatchNormalization(synchronized=synchronized_batch_norm(), name=f"bn{block + 1}_{i + 1}")(
                x
            )
            x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block + 1}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout{block + 1}")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(dropout, name="dropout3")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="classifier")


def build_model(dropout, *, learning_rate, decay_steps, shift=2):
    """The compiled training model: random shifts (training only) in front of `build_classifier(dropout)`."""
    model = with_random_shift(build_classifier(dropout), shift, name=f"cnn_dropout{dropout}")
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, decay_steps))
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def train_cnn(exp, data, config, dropout, epochs, run, callbacks=()):
    """Build and train the CNN with this dropout rate for `epochs` into `run`; returns its `TrainResult` (with the
    model). The cosine decays to 0 over exactly these epochs."""
    reseed(config.seed)
    steps = epochs * math.ceil(len(data.x_train) / config.batch_size)
    model = build_model(dropout, learning_rate=config.learning_rate, decay_steps=steps, shift=config.shift)
    result = exp.train(
        model,
        data,
        run=run,
        epochs=epochs,
        setting=f"dropout={dropout}",
        callbacks=callbacks,
        title=f"CNN, dropout {dropout}",
    )
    return dataclasses.replace(result, model=model)


def best_rate(rows):
    """The study's choice: the highest validation accuracy, ties to the lower rate; None when no rate finished."""
    done = [r for r in rows if r["status"] == "completed"]
    return max(done, key=lambda r: (r["valid_accuracy"], -r["dropout"]))["dropout"] if done else None


def study_sweep(exp, config):
    """The dropout study's search: each rate trained for `--study-epochs`, in the study's own sub-folder."""
    return Sweep(
        exp.run.child(STUDY_PART, {**exp.config, "part": STUDY_PART}),
        {"dropout": list(config.dropout_rates)},
        epochs=config.study_epochs,
        seed=config.seed,
        name=STUDY_SWEEP,
    )


def study_trainer(exp, data, config, trained):
    """The study's train function: one rate for `--study-epochs`; `trained` collects each result (with its model) by
    trial folder name."""

    def train_trial(values, run, epochs=None, callbacks=()):
        trained[run.path.name] = train_cnn(exp, data, config, values["dropout"], config.study_epochs, run, callbacks)
        return trained[run.path.name]

    return train_trial


def study_rows(sweep):
    """One row per rate of a finished study: validation and test accuracy next to the original's."""
    return [
        {
            "dropout": r["dropout"],
            "valid_accuracy": r.get("final_valid_accuracy", float("nan")),
            "test_accuracy": r.get("final_test_accuracy", float("nan")),
            "original": ORIGINAL_STUDY.get(r["dropout"], ""),
            "status": r["status"],
        }
        for r in sweep.results()
    ]


def chosen_rate(exp, sweep):
    """The rate a finished study chooses (`best_rate`); a one-line error when no rate finished."""
    rate = best_rate(study_rows(sweep))
    require(rate is not None, f"no dropout rate finished training; see {exp.run.path / STUDY_PART}")
    return rate


def report_study(exp, config, sweep, trained):
    """A finished study's table, figure and printout. Returns the chosen rate's `TrainResult` (see `best_rate`) with
    every finished rate's under `.parts` (by trial folder name; a trial trained by this process holds its model, in
    `trained`)."""
    sweep.write_outputs()
    rows = study_rows(sweep)
    exp.report.add_table(
        f"Dropout study: {config.study_epochs} epoch(s) per rate",
        rows,
        note="Chosen on validation accuracy; test accuracy reported only. The original got "
        "0.9714 at rate 0 falling to 0.8479 at 0.9.",
    )
    figure = plot_xy(
        {
            "valid": ([r["dropout"] for r in rows], [r["valid_accuracy"] for r in rows]),
            "test": ([r["dropout"] for r in rows], [r["test_accuracy"] for r in rows]),
        },
        exp.run.path / "dropout_study.png",
        "dropout rate",
        "accuracy",
        title=f"Accuracy after {config.study_epochs} epoch(s)",
    )
    exp.report.add_image("Dropout study: accuracy vs rate", figure)
    print("dropout  valid    test")
    for r in rows:
        print(f"{r['dropout']:>7} {r['valid_accuracy']:.4f} {r['test_accuracy']:.4f}")
    rate = chosen_rate(exp, sweep)
    trials = finished_trials(sweep, trained)
    chosen = next(result for result in trials.values() if result.run.config["trial"]["dropout"] == rate)
    return dataclasses.replace(chosen, parts=trials)


def train_final(exp, data, config, dropout):
    """Train the final network with `dropout` for --epochs, in its own sub-folder; returns its `TrainResult` (the
    training model, with the random shift)."""
    final_run = exp.run.child(FINAL_PART, {**exp.config, "final_dropout": dropout})
    return train_cnn(exp, data, config, dropout, config.train_epochs, final_run)


def report_final(exp, data, config, result):
    """Report and export the final network's classifier; returns `result` with `.export_path` the exported
    classifier."""
    dropout = result.run.config["final_dropout"]
    classifier = exportable(result.model)
    parameters = classifier.count_params()
    trainable = int(sum(np.prod(v.shape) for v in classifier.trainable_variables))
    summary = {
        "dropout": dropout,
        "epochs": config.train_epochs,
        "parameters": parameters,
        "trainable_parameters": trainable,
        "valid_accuracy": result.final.get("valid_accuracy"),
        "test_accuracy": result.final.get("test_accuracy"),
        "goal": f">= 0.993 with < {PARAMETER_LIMIT:,} parameters",
    }
    lines = []
    classifier.summary(print_fn=lambda line, *a, **k: lines.append(line), line_length=100)
    exp.report.add_table(f"Final network (dropout {dropout}, {config.train_epochs} epochs)", [summary])
    exp.report.add("Final network: layers", "```\n" + "\n".join(lines) + "\n```")
    exp.report.add_image("Final network: learning curves", result.run.path / "curves.png")
    print(f"parameters: {parameters:,} ({trainable:,} trainable)")
    print(
        f"final CNN (dropout {dropout}, {config.train_epochs} epochs): valid accuracy "
        f"{summary['valid_accuracy']:.4f}, test accuracy {summary['test_accuracy']:.4f}"
    )
    result.export_path = exp.export(
        classifier, data=data, class_names=data.class_names, input_shape=[28, 28, 1], image_style="mnist"
    )
    return result


# -- the app: `run(...)` from Python, `python -m apps.mnist_cnn` from a shell --------------------------------------


def declare(exp, data, config, trained):
    """Every training this command does, in order (the plan a cluster shares): the dropout study (unless `--dropout`
    fixes the rate), then the final network with the chosen rate. `trained` collects the study's results trained by
    this process (see `study_trainer`)."""
    plan = Plan(exp.run.path)
    if config.dropout is None:
        plan.sweep(STUDY_PART, study_sweep(exp, config), study_trainer(exp, data, config, trained))
        # The rate comes from the finished study itself, so a worker of a cluster handed the final network finds it.
        plan.training(
            FINAL_PART, lambda sweep: train_final(exp, data, config, chosen_rate(exp, sweep)), needs=(STUDY_PART,)
        )
    else:
        plan.training(FINAL_PART, lambda: train_final(exp, data, config, config.dropout))
    return plan


def load_data(exp, config):
    """MNIST as (N, 28, 28, 1) images."""
    data = exp.use_data(load_mnist(config.data_dir))
    return dataclasses.replace(
        data, x_train=data.x_train[..., None], x_valid=data.x_valid[..., None], x_test=data.x_test[..., None]
    )


def run(config=None, **overrides):
    """Answer the arithmetic, run the dropout study (unless `--dropout` fixes the rate), train and export the final
    network. Returns the final network's `TrainResult` (`.final`, `.history`, `.model`, `.run_path`,
    `.export_path`; its rate is `.run.config["final_dropout"]`) with the study's under `.parts["dropout_study"]`
    (the chosen rate's trial, every rate's under its own `.parts`); None under `--arithmetic-only` (nothing is
    trained: the answers are in the report). `run(quick=True, epochs=1, dropout=0.3)`: keywords as the flags."""
    config = Config.make(config, **overrides)
    with Experiment(config, "MNIST CNN: arithmetic, dropout study, final network") as exp:
        if config.arithmetic_only:
            # No plan at all: an empty one would have a cluster's chief stop as soon as one worker asked, leaving a
            # worker that asks later without an answer. Every process of a cluster answers the arithmetic instead.
            report_arithmetic(exp, cnn_arithmetic())
            return None
        data = load_data(exp, config)
        trained = {}
        plan = declare(exp, data, config, trained).run()  # re-running the same command resumes every training
        report_arithmetic(exp, cnn_arithmetic())
        parts = {}
        if STUDY_PART in plan:
            parts[STUDY_PART] = report_study(exp, config, plan.result(STUDY_PART), trained)
            print(f"best dropout rate on validation: {parts[STUDY_PART].run.config['trial']['dropout']}")
        result = report_final(exp, data, config, plan.result(FINAL_PART))
        print(f"report: {exp.report.path}")
        return dataclasses.replace(result, parts=parts)


def headlines(run_path):
    """The numbers the results page quotes from a finished run folder of this app (see `tfnets.experiment.headline`):
    the final network's test accuracy, and each finished study rate's (`dropout_<rate>_test_accuracy`, e.g.
    `dropout_0_test_accuracy`)."""
    run_path = Path(run_path)
    table = run_path / STUDY_PART / STUDY_RESULTS
    found = {
        f"dropout_{float(row['dropout']):g}_test_accuracy": (float(row["final_test_accuracy"]), table)
        for row in headline.csv_rows(table) or []
        if row["status"] == "completed"
    }
    return {**found, **headline.collect(final_test_accuracy=headline.metric(run_path / FINAL_PART))}


def main(argv=None):
    return run(Config.from_argv(argv))


if __name__ == "__main__":
    exit_with(main)

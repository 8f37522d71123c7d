"""notMNIST letters A-J with a small CNN: the Toronto ECE421 "Neural Networks" assignment, part 2.

The assignment's network, Xavier-initialised and trained with Adam (learning rate 1e-4, batch 32, 50 epochs,
reshuffled every epoch):

    (28, 28, 1) -> Conv2D 3x3, 32 filters, stride 1, same padding -> ReLU -> BatchNormalization
    -> 2x2 max-pool -> flatten (6272) -> Dense 784 -> (Dropout) -> ReLU -> Dense 10 -> softmax cross-entropy

and its two regularisation studies: an L2 penalty on the two dense weight matrices (lambda in {0.01, 0.1, 0.5})
and dropout after the 784-unit layer (keep probability p in {0.9, 0.75, 0.5}).

    python -m apps.notmnist_cnn                                  # the baseline; exports saved_models/notmnist_cnn
    python -m apps.notmnist_cnn --l2 0.1 --keep-prob 0.75        # one other configuration
    python -m apps.notmnist_cnn --study all                      # baseline + L2 study + dropout study + improved
    python -m apps.notmnist_cnn --sweep l2=0.01,0.1,0.5          # any grid, one resumable trial per value
    python -m apps.predict saved_models/notmnist_cnn letter.png

A study writes a table of final train/valid/test accuracy and loss per value (baseline row included), the
overlaid validation curves, and exports the best setting (lowest final validation cross-entropy) to
`saved_models/notmnist_cnn_<study>`. `--recipe improved` is our own "go beyond" variant (see `build_model`),
reported next to the assignment's configuration, never instead of it.
"""

import dataclasses
import math
import typing

from tfnets.data import load_notmnist
from tfnets.experiment import Experiment, headline
from tfnets.experiment.cli import exit_with, require
from tfnets.experiment.config import SweepConfig, batch_size_option, option
from tfnets.experiment.determinism import reseed
from tfnets.experiment.distribute import synchronized_batch_norm
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plan import Plan
from tfnets.experiment.plots import plot_overlay
from tfnets.experiment.space import extremes
from tfnets.experiment.sweep import Sweep, flat_metrics
from tfnets.nn.initializers import xavier_normal

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

APP = "notmnist_cnn"
LEARNING_RATE = 1e-4
STUDIES = {
    "l2": {"l2": [0.01, 0.1, 0.5]},
    "dropout": {"keep_prob": [0.9, 0.75, 0.5]},
}
# The assignment fixes Adam's step size (no flag), but a search may vary it: `--sweep learning_rate=1e-5:1e-2:log`.
SWEEPABLE = {"l2": float, "keep_prob": float, "learning_rate": float}
RECIPES = ("assignment", "improved")
# What the "improved" recipe changes besides augmentation and the cosine schedule: conv width and the default
# dropout. Chosen on the validation split from 50-epoch runs (docs/notmnist_cnn.md, "Improved recipe").
IMPROVED_FILTERS = 64
DEFAULT_KEEP_PROB = {"assignment": 1.0, "improved": 0.5}
# The sub-folder of the run folder that `--study all`'s improved row trains in.
IMPROVED_PART = "improved"
BASELINE = "baseline"  # the plan's name for the flags' own setting (trained in the run folder itself)


# ---------------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------------


def assignment_l2(lam):
    """The assignment's penalty `lam * tf.nn.l2_loss(W)` as a Keras regularizer, or None for lam = 0.

    `tf.nn.l2_loss(W) = sum(W**2) / 2`, while `keras.regularizers.L2(c)` adds `c * sum(W**2)`; so c = lam / 2.
    Both are added to the MEAN cross-entropy of the batch: Keras adds `model.losses` to the batch-mean loss,
    exactly like the assignment's `loss = reduce_mean(CE) + lam * (l2_loss(W1) + l2_loss(W2))`; no rescaling by
    the batch size is needed.
    """
    require(lam >= 0, f"--l2 must be >= 0, got {lam}")
    return keras.regularizers.L2(lam / 2.0) if lam > 0 else None


def augmentation(seed):
    """Small random shifts (up to 2 pixels) and rotations (up to 10 degrees); identity at inference."""
    return [
        keras.layers.RandomTranslation(2 / 28, 2 / 28, fill_mode="constant", seed=seed, name="shift"),
        keras.layers.RandomRotation(10 / 360, fill_mode="constant", seed=seed + 1, name="rotate"),
    ]


def build_model(
    l2=0.0,
    keep_prob=1.0,
    seed=0,
    *,
    recipe="assignment",
    filters=None,
    epochs=50,
    steps_per_epoch=164,
    learning_rate=LEARNING_RATE,
    jit_compile=False,
):
    """The assignment's CNN, compiled. Inputs (N, 28, 28, 1) in [0, 1]; outputs logits (N, 10).

    l2: the assignment's lambda on the two dense kernels (see `assignment_l2`); keep_prob: dropout keep
    probability p after the 784-unit layer (Keras' `rate = 1 - p`; 1.0 = no dropout).
    recipe="improved" doubles the conv filters (`IMPROVED_FILTERS`; `filters` overrides either recipe's width),
    adds training-time augmentation (`augmentation`) and decays the learning rate to zero over
    `epochs * steps_per_epoch` steps with a cosine; the Adam step size, the rest of the network and the batch size
    stay the assignment's. (Its dropout default, p = 0.5, is applied by the command line: `DEFAULT_KEEP_PROB`.)
    Metrics: accuracy and `cross_entropy` (the data term alone; `loss` also holds the L2 penalty).
    """
    require(0 < keep_prob <= 1, f"--keep-prob must be in (0, 1], got {keep_prob}")
    require(recipe in RECIPES, f"unknown --recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    if filters is None:
        filters = IMPROVED_FILTERS if recipe == "improved" else 32
    layers = [keras.Input((28, 28, 1), name="image")]
    if recipe == "improved":
        layers += augmentation(seed + 10)
    layers += [
        keras.layers.Conv2D(filters, 3, strides=1, padding="same", kernel_initializer=xavier_normal(seed), name="conv"),
        keras.layers.ReLU(name="conv_relu"),
        keras.layers.BatchNormalization(synchronized=synchronized_batch_norm(), name="batch_norm"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(
            784, kernel_initializer=xavier_normal(seed + 1), kernel_regularizer=assignment_l2(l2), name="dense_784"
        ),
        # Dropout before the ReLU, as in the assignment; relu(mask * x / p) == mask * relu(x) / p anyway.
        keras.layers.Dropout(1.0 - keep_prob, seed=seed + 2, name="dropout"),
        keras.layers.ReLU(name="dense_relu"),
        keras.layers.Dense(
            10, kernel_initializer=xavier_normal(seed + 3), kernel_regularizer=assignment_l2(l2), name="logits"
        ),
    ]
    model = keras.Sequential(layers, name=f"notmnist_cnn_{recipe}")
    schedule = learning_rate
    if recipe == "improved":
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, epochs * steps_per_epoch))
    model.compile(
        # epsilon 1e-8 as tf.compat.v1.train.AdamOptimizer, which the assignment used (Keras defaults to 1e-7).
        optimizer=keras.optimizers.Adam(schedule, epsilon=1e-8),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="cross_entropy")],
        jit_compile=jit_compile,
    )
    return model


# ---------------------------------------------------------------------------------------------------------------
# Configuration: the command line, `run(...)`'s keywords and config.json are all derived from this one declaration
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Config(SweepConfig):
    APP = APP
    DESCRIPTION = "notMNIST CNN (ECE421 part 2): baseline, L2 and dropout studies."
    EPOCHS = 50
    SWEEPABLE = SWEEPABLE

    batch_size: int = batch_size_option(32)
    l2: float = option(
        0.0, "lambda of the assignment's penalty lambda*(l2_loss(W1)+l2_loss(W2)) (default 0)", group="model"
    )
    keep_prob: typing.Optional[float] = option(
        None,
        "dropout keep probability after the 784-unit layer (default: 1 = no dropout for the assignment recipe, 0.5 "
        "for the improved one)",
        group="model",
    )
    recipe: str = option(
        "assignment",
        "assignment (default) or improved: 64 conv filters, dropout p=0.5, shift/rotation augmentation, cosine decay",
        group="model",
        choices=RECIPES,
    )
    study: typing.Optional[str] = option(
        None,
        "l2: lambda in {{0.01,0.1,0.5}}; dropout: p in {{0.9,0.75,0.5}}; all: both and the improved recipe; each "
        "with the baseline row",
        group="model",
        choices=(*STUDIES, "all"),
    )

    def __post_init__(self):
        super().__post_init__()
        require(not (self.space and self.study), "use either --study or --sweep, not both")
        require(self.l2 >= 0, f"--l2 must be >= 0, got {self.l2}")
        require(0 < self.dropout_keep_prob <= 1, f"--keep-prob must be in (0, 1], got {self.dropout_keep_prob}")
        for value in extremes(self.space.get("keep_prob")):
            require(0 < value <= 1, f"--sweep keep_prob values must be in (0, 1], got {value}")
        for value in extremes(self.space.get("l2")):
            require(value >= 0, f"--sweep l2 values must be >= 0, got {value}")
        for value in extremes(self.space.get("learning_rate")):
            require(value > 0, f"--sweep learning_rate values must be > 0, got {value}")

    @property
    def dropout_keep_prob(self):
        """`--keep-prob`, else the recipe's default."""
        return DEFAULT_KEEP_PROB[self.recipe] if self.keep_prob is None else self.keep_prob

    @property
    def studies(self):
        """name -> space of every study this command runs after its baseline."""
        if self.space:
            return {"_".join(self.space): self.space}
        if self.study == "all":
            return dict(STUDIES)
        return {self.study: STUDIES[self.study]} if self.study else {}

    def identity(self):
        # The improved recipe's width is part of its settings, so its runs never resume an older, narrower one.
        identity = {**super().identity(), "keep_prob": self.dropout_keep_prob}
        if self.recipe == "improved":
            identity["filters"] = IMPROVED_FILTERS
        return identity


def load_data(exp, config):
    """notMNIST with a channel axis: x (N, 28, 28, 1) float32 in [0, 1], y (N,) in 0..9."""
    data = exp.use_data(load_notmnist(config.data_dir))
    return dataclasses.replace(
        data, x_train=data.x_train[..., None], x_valid=data.x_valid[..., None], x_test=data.x_test[..., None]
    )


def hyperparameters(config):
    """What one training of this command varies (a study's trial overrides some): l2, keep_prob, recipe, learning
    rate."""
    return {
        "l2": config.l2,
        "keep_prob": config.dropout_keep_prob,
        "recipe": config.recipe,
        "learning_rate": LEARNING_RATE,
    }


def setting_text(l2, keep_prob, recipe, learning_rate=LEARNING_RATE):
    return (
        f"l2={l2:g}, keep_prob={keep_prob:g}"
        + (f", recipe={recipe}" if recipe != "assignment" else "")
        + (f", learning_rate={learning_rate:g}" if learning_rate != LEARNING_RATE else "")
    )


def make_model(exp, data, config, hparams):
    """A compiled CNN of these hyperparameters; its learning-rate schedule spans `--epochs`."""
    # Re-seed before each build: a trial's weights must not depend on which trials ran before it (resume).
    reseed(config.seed)
    return build_model(
        hparams["l2"],
        hparams["keep_prob"],
        config.seed,
        recipe=hparams["recipe"],
        epochs=config.train_epochs,
        steps_per_epoch=math.ceil(len(data.y_train) / config.batch_size),
        learning_rate=hparams["learning_rate"],
        jit_compile=exp.jit,
    )


def train(exp, data, config, hparams, run=None, epochs=None, callbacks=()):
    """Build and train one setting into `run` (default the app's run folder); returns its `TrainResult` (with the
    model). `epochs`: fewer than --epochs for a search's trial (Hyperband); the schedule still spans --epochs."""
    setting = setting_text(**hparams)
    model = make_model(exp, data, config, hparams)
    result = exp.train(
        model, data, run=run, epochs=epochs, setting=setting, callbacks=callbacks, title=f"notMNIST CNN, {setting}"
    )
    return dataclasses.replace(result, model=model)


def study_row(label, result):
    """One table row from a flat result (`flat_metrics`, or a sweep's result row): final train/valid/test accuracy
    and losses, the best-validation epoch, wall time."""
    row = {"setting": label}
    for split in ("train", "valid", "test"):
        row[f"{split}_accuracy"] = result.get(f"final_{split}_accuracy")
    for split in ("train", "valid", "test"):
        row[f"{split}_loss"] = result.get(f"final_{split}_loss")
        row[f"{split}_cross_entropy"] = result.get(f"final_{split}_cross_entropy")
    row["best_epoch"] = result.get("best_epoch")
    row["test_accuracy_at_best"] = result.get("best_test_accuracy")
    row["epochs"] = result.get("epochs")
    row["wall_time_s"] = result.get("wall_time_s")
    row["stopped"] = result.get("stopped", "")
    row["status"] = result.get("status")
    return row


def train_trial(exp, data, config):
    """A search's train function: one trial's values over this command's setting."""
    hparams = hyperparameters(config)

    def train_values(values, run, epochs=None, callbacks=()):
        return train(exp, data, config, {**hparams, **values}, run=run, epochs=epochs, callbacks=callbacks)

    return train_values


def report_study(exp, data, config, sweep, baseline):
    """A finished study's table + overlay with the baseline; export its best value."""
    name, space = sweep.name, sweep.space
    hparams = hyperparameters(config)
    baseline_label = "baseline (" + setting_text(config.l2, config.dropout_keep_prob, config.recipe) + ")"
    rows = sweep.write_outputs(
        exp.report,
        f"{name} study",
        metrics=("val_cross_entropy", "val_accuracy", "accuracy"),
        row=lambda result, history: study_row(
            result.get("setting") or ", ".join(f"{k}={result[k]:g}" for k in space), result
        ),
        baseline=("baseline", {"setting": baseline_label, **flat_metrics(baseline.metrics)}, baseline.history),
        ranked=sweep.tuner != "grid",
        note=f"{config.train_epochs} epochs, seed {config.seed}; loss = cross-entropy + L2 penalty; best_epoch = "
        "lowest validation loss"
        + ("" if sweep.tuner == "grid" else f"; {sweep.tuner} search, best {sweep.objective} first after the baseline"),
    )

    # The exported weights are the final epoch's: pick the lowest FINAL validation cross-entropy (the data term;
    # the loss itself also holds the L2 penalty, which would always favour the smallest lambda).
    finished = [r for r in sweep.results() if r.get("status") == "completed" and "final_valid_cross_entropy" in r]
    if finished:
        best = min(finished, key=lambda r: r["final_valid_cross_entropy"])
        values = {k: best[k] for k in space}
        model = make_model(exp, data, config, {**hparams, **values})
        sweep.restore_trial(values, model, data.x_train[:1])
        export(exp, model, data, exp.export_dir.with_name(f"{exp.export_dir.name}_{name}"))
        exp.report.add(
            f"{name} study: best value",
            f"{values} (lowest final validation cross-entropy), exported to `{exp.export_dir.name}_{name}`",
        )
    return rows


def export(exp, model, data, path):
    return exp.export(
        model,
        export_dir=path,
        data=data,
        class_names=data.class_names,
        input_shape=[28, 28, 1],
        output="logits",
        image_style="notmnist",
    )


# ---------------------------------------------------------------------------------------------------------------
# The app: `run(...)` from Python, `python -m apps.notmnist_cnn` from a shell
# ---------------------------------------------------------------------------------------------------------------


def improved_keep_prob(config):
    return DEFAULT_KEEP_PROB["improved"] if config.dropout_keep_prob == 1.0 else config.dropout_keep_prob


def train_improved(exp, data, config):
    """Our "go beyond" row: the improved recipe with every other setting fixed, in its own sub-folder."""
    keep_prob = improved_keep_prob(config)
    run = exp.run.child(
        IMPROVED_PART, {**exp.config, "recipe": "improved", "keep_prob": keep_prob, "filters": IMPROVED_FILTERS}
    )
    hparams = {**hyperparameters(config), "keep_prob": keep_prob, "recipe": "improved"}
    return train(exp, data, config, hparams, run=run)


def declare(exp, data, config):
    """Every training this command does, in order (the plan a cluster shares): the baseline (the flags' own
    setting, the single run and every study's reference row), each study's search, the improved row."""
    plan = Plan(exp.run.path)
    plan.training(BASELINE, lambda: train(exp, data, config, hyperparameters(config)))
    for name, space in config.studies.items():
        sweep = Sweep(exp.run, space, epochs=config.train_epochs, name=name, **config.sweep_options())
        plan.sweep(name, sweep, train_trial(exp, data, config))
    if config.study == "all" and config.recipe == "assignment":
        plan.training(IMPROVED_PART, lambda: train_improved(exp, data, config))
    return plan


def run(config=None, **overrides):
    """Train the baseline (the configuration's own setting), then each study; returns the baseline's
    `TrainResult` (`.final`, `.history`, `.model`, `.run_path`, `.export_path`) with `.parts` holding the improved
    row's result when `--study all` trains it. `run(quick=True, epochs=1, l2=0.1)`: keywords as the flags."""
    config = Config.make(config, **overrides)
    with Experiment(config, "notMNIST CNN (ECE421 assignment, part 2)") as exp:
        data = load_data(exp, config)
        plan = declare(exp, data, config).run()  # re-running the same command resumes every training
        baseline = plan.result(BASELINE)
        baseline.export_path = export(exp, baseline.model, data, exp.export_dir)
        label = setting_text(config.l2, config.dropout_keep_prob, config.recipe)
        exp.report.add_table("Final metrics", [study_row(label, flat_metrics(baseline.metrics))])
        exp.report.add_image("Learning curves", baseline.run.path / "curves.png")
        print(
            f"{label}: test accuracy {baseline.final['test_accuracy']:.4f}, test loss {baseline.final['test_loss']:.4f}"
        )
        for name in config.studies:
            report_study(exp, data, config, plan.result(name), baseline)
        if IMPROVED_PART in plan:
            baseline.parts["improved"] = report_improved(exp, data, config, baseline, plan.result(IMPROVED_PART))
        return baseline


def report_improved(exp, data, config, baseline, result):
    """Export the improved row's network and set it next to the baseline."""
    keep_prob = improved_keep_prob(config)
    result.export_path = export(exp, result.model, data, exp.export_dir.with_name(f"{exp.export_dir.name}_improved"))
    rows = [
        study_row("baseline (assignment recipe)", flat_metrics(baseline.metrics)),
        study_row(
            f"improved: {IMPROVED_FILTERS} conv filters, dropout p={keep_prob:g}, shift/rotation "
            "augmentation, cosine LR decay",
            flat_metrics(result.metrics),
        ),
    ]
    gain = 100 * (result.final["test_accuracy"] - baseline.final["test_accuracy"])
    exp.report.add_table(
        "Go beyond: improved recipe (extra row)",
        rows,
        note=f"same data, epochs ({config.train_epochs}), batch, Adam step size and layer sequence; test accuracy "
        f"{gain:+.2f} points vs the baseline",
    )
    figure = plot_overlay(
        {"baseline": baseline.history, "improved": result.history},
        exp.run.path / "improved_curves.png",
        metrics=("val_cross_entropy", "val_accuracy", "accuracy"),
        title="notMNIST CNN: baseline vs improved recipe",
    )
    exp.report.add_image("Go beyond: curves", figure)
    print(f"improved recipe: test accuracy {result.final['test_accuracy']:.4f} ({gain:+.2f} points)")
    return result


def headlines(run_path):
    """The numbers the results page quotes from a finished run folder of this app (see `tfnets.experiment.headline`):
    the main model's test accuracy, and the improved row's when `--study all` trained it."""
    return headline.collect(
        test_accuracy=headline.metric(run_path), improved_test_accuracy=headline.metric(run_path / IMPROVED_PART)
    )


def main(argv=None):
    return run(Config.from_argv(argv))


if __name__ == "__main__":
    exit_with(main)

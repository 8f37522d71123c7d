"""Cat vs car with tanh MLPs trained by mini-batch SGD on a mean-squared-error loss.

Reproduces Bilkent EEE443 homework 2, question 1 (`assign2_data1.h5`, 1,900 training and 1,000 test images of
32x32 grey cats and cars), with the hand-written-backprop layers of `tfnets.nn.layers`:

* every neuron, the output included, is a tanh unit; targets are -1 (cat) / +1 (car); the loss is the mean
  squared error; the predicted class is the sign of the output; metrics each epoch on train, validation and test:
  MSE (`loss`) and the classification error MCE in % (`mce`);
* a. one hidden layer: a sweep picks the hidden size N, learning rate, batch size and init scale, then the chosen
  setting is trained for `--epochs`;
* b. how MSE and MCE evolve on train vs test, and whether MSE tracks the classification error;
* c. N much smaller and much larger than the chosen N, overlaid with it;
* d. two hidden layers (512 and 64 units, learning rate 0.35, batch 38) against the one-layer net;
* e. the two-layer net with momentum against without.

The assignment has no validation split: a seeded, class-stratified validation split (`--num-validation`) is
carved out of the training images for model selection; the test set is only reported. Training images can be
augmented with mirror images and 2-pixel shifts (`--augment`); validation and test images never are.

    python -m apps.catcar_mlp --data-dir ../shared/data [--part a,b,c,d,e]
    python -m apps.predict saved_models/catcar_mlp some_32x32_grey.png
"""

import dataclasses
import json
import typing
from pathlib import Path

import numpy as np

from apps._catcar_mlp_data import carve_validation, prepare
from apps._catcar_mlp_examples import show_examples
from apps._catcar_mlp_mse import part_b
from tfnets import atomic
from tfnets.data import load_catcar
from tfnets.experiment import Experiment, headline
from tfnets.experiment.cli import choice_list, exit_with, require
from tfnets.experiment.config import SweepConfig, batch_size_option, int_list, option, positive_float, positive_int
from tfnets.experiment.determinism import reseed
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plan import Plan
from tfnets.experiment.plots import plot_overlay
from tfnets.experiment.sweep import Sweep

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

APP = "catcar_mlp"
TITLE = "Cat vs car: tanh MLPs with SGD on MSE (EEE443 HW2 Q1)"
PARTS = ("a", "b", "c", "d", "e")
SWEEPABLE = {"hidden": int, "learning_rate": float, "batch_size": int, "init_std": float}
DEFAULT_SWEEP = {"hidden": [10, 20, 50], "learning_rate": [0.1, 0.35], "init_std": [0.01, 0.1]}
AUGMENTATIONS = ("none", "flip", "flip+shift")
INPUT_SCALINGS = ("raw", "center", "standardize", "zca")
CURVE_METRICS = ("loss", "test_loss", "mce", "test_mce")
# What a run folder holds, named once: part a's sweep (its trials, `part_a_results.csv`), the sub-folder of each
# trained network, and the record of which of them the app exported (what the results page quotes).
PART_A_SWEEP = "part_a"
PART_A_FOLDER = "part_a_final"
PART_C_FOLDER = "part_c_N{size}"
PART_D_FOLDER = "part_d"
PART_E_FOLDER = "part_e"
# The plan's names for part c's small and large N (their folders name N, chosen by the sweep); parts d, e's folders.
PART_C_STEPS = ("part_c_small", "part_c_large")
PART_FOLDERS = {"d": PART_D_FOLDER, "e": PART_E_FOLDER}
EXPORTED_FILE = "exported.json"


@dataclasses.dataclass(frozen=True)
class Setting:
    """What one training run uses: layer sizes and the SGD hyperparameters."""

    hidden: tuple
    learning_rate: float
    batch_size: int
    init_std: float
    momentum: float = 0.0

    def describe(self):
        text = (
            f"hidden={'-'.join(map(str, self.hidden))}, learning_rate={self.learning_rate:g}, "
            f"batch_size={self.batch_size}, init_std={self.init_std:g}"
        )
        return text + (f", momentum={self.momentum:g}" if self.momentum else "")


_choose_parts = choice_list(PARTS, name="--part", allow_all=True)


def part_list(value):
    """`"a,c"` (or a list from a config file) -> `("a", "c")`; a one-line error names the valid parts."""
    return tuple(_choose_parts(value if isinstance(value, str) else ",".join(map(str, value))))


# ---------------------------------------------------------------------------------------------------------
# Configuration: the command line, `run(...)`'s keywords and config.json are all derived from this one declaration
# ---------------------------------------------------------------------------------------------------------

GROUP = "cat-vs-car"


@dataclasses.dataclass(frozen=True)
class Config(SweepConfig):
    APP = APP
    DESCRIPTION = "Cat-vs-car tanh MLP trained with SGD on MSE (EEE443 HW2 Q1)."
    EPOCHS = 30
    SWEEPABLE = SWEEPABLE

    batch_size: int = batch_size_option(38)
    # Each part trains in its own sub-folder, so the list only chooses what runs: `--part c` after `--part a`
    # resumes the finished parts of the same run.
    part: typing.Tuple[str, ...] = option(
        PARTS, "assignment parts to run (default a,b,c,d,e)", group=GROUP, parse=part_list, identity=False
    )
    hidden: int = option(
        20, "hidden size N when the sweep does not vary it (default 20)", group=GROUP, parse=positive_int
    )
    learning_rate: float = option(
        0.1, "learning rate when the sweep does not vary it (default 0.1)", group=GROUP, parse=positive_float
    )
    init_std: float = option(
        0.01,
        "weights and biases start from N(0, init_std^2) when the sweep does not vary it",
        group=GROUP,
        parse=positive_float,
    )
    sweep_epochs: int = option(10, "epochs per sweep trial in part a (default 10)", group=GROUP, parse=positive_int)
    num_validation: int = option(
        190,
        "training images held out (stratified, seeded) for model selection (default 190)",
        group=GROUP,
        parse=positive_int,
    )
    augment: str = option(
        "flip+shift",
        "training-set augmentation: mirror images, and 2-pixel shifts (default flip+shift)",
        group=GROUP,
        choices=AUGMENTATIONS,
    )
    inputs: str = option(
        "center",
        "pixels in [0, 1] (raw), minus the mean training image (center, default), centred and divided by the pixel "
        "std (standardize), or ZCA-whitened at the centred pixels' overall std (zca)",
        group=GROUP,
        choices=INPUT_SCALINGS,
    )
    zca_epsilon: float = option(
        0.1,
        "ZCA regulariser in units of the variance of pixels in [0, 1] (--inputs zca; default 0.1)",
        group=GROUP,
        parse=positive_float,
    )
    lr_decay: float = option(0.0, "learning rate / (1 + lr_decay * epoch) (default 0: constant)", group=GROUP)
    small_hidden: typing.Optional[int] = option(
        None, "part c: small N (default N/10, >= 2)", group=GROUP, parse=positive_int
    )
    large_hidden: typing.Optional[int] = option(None, "part c: large N (default 10 N)", group=GROUP, parse=positive_int)
    two_layer: typing.Tuple[int, ...] = option(
        (512, 64), "part d/e hidden sizes (default 512,64)", group=GROUP, parse=int_list
    )
    two_layer_lr: float = option(0.35, "part d/e learning rate (0.35)", group=GROUP, parse=positive_float)
    two_layer_batch: int = option(38, "part d/e batch size (38)", group=GROUP, parse=positive_int)
    momentum: float = option(0.3, "part e momentum coefficient (default 0.3)", group=GROUP)

    def __post_init__(self):
        super().__post_init__()
        require(
            len(self.two_layer) >= 1,
            f"--two-layer expects sizes like 512,64, got {','.join(map(str, self.two_layer))!r}",
        )
        if self.small_hidden and self.large_hidden:  # equal sizes would be two trainings of one folder
            require(
                self.small_hidden < self.large_hidden,
                f"--small-hidden ({self.small_hidden}) must be smaller than --large-hidden ({self.large_hidden})",
            )
        if "e" in self.part:  # only part e uses it
            require(
                0 < self.momentum < 1,
                f"--momentum must be in (0, 1) (the assignment asks for 0.1..0.5), got {self.momentum}",
            )

    @property
    def search_space(self):
        """Part a's search: the `--sweep` flags, else `DEFAULT_SWEEP`."""
        return self.space or dict(DEFAULT_SWEEP)

    @property
    def trial_epochs(self):
        """Epochs of one part-a trial: `--sweep-epochs`, at most the epochs this command trains."""
        return min(self.sweep_epochs, self.train_epochs)


# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------


def build_model(setting, input_dim=1024, lr_decay=0.0, steps_per_epoch=1):
    """tanh MLP `input_dim -> hidden... -> 1`, MSE loss, SGD (with momentum in the cat-vs-car form if > 0).

    Weights and biases start from N(0, init_std^2) (a fresh initializer per weight, so no two layers share
    values). The Keras MSE averages over the batch, so `learning_rate` is the assignment's eta applied to the
    mean gradient, and momentum D <- grad + beta*D maps onto `SGDMomentum.from_cat_vs_car_form`.
    """
    from tfnets.nn.layers import ManualDense
    from tfnets.nn.losses import MeanSquaredError
    from tfnets.nn.metrics import ClassificationError, SignAccuracy
    from tfnets.nn.optim import SGD, SGDMomentum

    def normal():
        return keras.initializers.RandomNormal(stddev=setting.init_std)

    layers = [
        ManualDense(
            units, activation="tanh", kernel_initializer=normal(), bias_initializer=normal(), name=f"hidden{i + 1}"
        )
        for i, units in enumerate(setting.hidden)
    ]
    layers.append(
        ManualDense(1, activation="tanh", kernel_initializer=normal(), bias_initializer=normal(), name="output")
    )
    model = keras.Sequential([keras.Input((input_dim,)), *layers], name="catcar_mlp")
    learning_rate = setting.learning_rate
    if lr_decay > 0:
        learning_rate = keras.optimizers.schedules.InverseTimeDecay(
            setting.learning_rate, decay_steps=steps_per_epoch, decay_rate=lr_decay
        )
    if setting.momentum > 0:
        optimizer = SGDMomentum.from_cat_vs_car_form(learning_rate, setting.momentum, setting.batch_size)
    else:
        optimizer = SGD(learning_rate)
    model.compile(optimizer=optimizer, loss=MeanSquaredError(), metrics=[SignAccuracy(), ClassificationError()])
    return model


def train(exp, data, config, setting, run, epochs, title, callbacks=()):
    """Build and fit one setting in `run` (a part's folder or a sweep trial's); returns its `TrainResult`, with the
    model."""
    # Re-seed per build: initial weights must not depend on what this process built before (a cluster's worker, resume).
    reseed(config.seed)
    steps = int(np.ceil(len(data.y_train) / setting.batch_size))
    model = build_model(setting, data.x_train.shape[1], config.lr_decay, steps)
    result = exp.train(
        model,
        data,
        run=run,
        epochs=epochs,
        batch_size=setting.batch_size,
        setting=setting.describe(),
        title=title,
        callbacks=callbacks,
    )
    return dataclasses.replace(result, model=model)


def summary_row(name, setting, result):
    final, best = result.final, result.best
    return {
        "model": name,
        "setting": setting.describe(),
        "epochs": result.metrics["epochs"],
        "train_mse": final.get("train_loss"),
        "train_mce_%": final.get("train_mce"),
        "valid_mse": final.get("valid_loss"),
        "valid_mce_%": final.get("valid_mce"),
        "test_mse": final.get("test_loss"),
        "test_mce_%": final.get("test_mce"),
        "test_accuracy_%": 100 * final.get("test_accuracy", float("nan")),
        "best_valid_epoch": best.get("epoch"),
        "test_accuracy_at_best_valid_%": 100 * best.get("test_accuracy", float("nan")),
    }


# ---------------------------------------------------------------------------------------------------------
# Trainings: every network the command trains, declared once in a plan (see `declare`)
# ---------------------------------------------------------------------------------------------------------


def setting_for(config, values):
    """A one-hidden-layer setting: part a's sweep values over the flags' own."""
    v = {
        "hidden": config.hidden,
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size,
        "init_std": config.init_std,
        **values,
    }
    return Setting((v["hidden"],), v["learning_rate"], v["batch_size"], v["init_std"])


def part_a_trainer(exp, data, config):
    """Part a's search's train function: one trial's values over the flags' setting."""

    def train_trial(values, run, epochs=None, callbacks=()):
        setting = setting_for(config, values)
        title = f"part a trial {setting.describe()}"
        return train(exp, data, config, setting, run, epochs or config.trial_epochs, title, callbacks)

    return train_trial


def chosen_setting(config, sweep):
    """Part a's choice: the setting of the finished sweep's best trial (on validation MSE)."""
    best = sweep.best()
    require(best is not None, "every part-a sweep trial diverged; try smaller --sweep learning_rate values")
    return setting_for(config, {k: best[k] for k in config.search_space})


def train_part_a(exp, data, config, sweep):
    """Part a's network: the sweep's chosen setting trained for --epochs."""
    chosen = chosen_setting(config, sweep)
    run = exp.run.child(PART_A_FOLDER, {**exp.config, "setting": chosen.describe()})
    return train(exp, data, config, chosen, run, config.train_epochs, f"part a: {chosen.describe()}")


def part_c_sizes(config, chosen):
    """Part c's (small, large) N around the chosen N."""
    n = chosen.hidden[0]
    return config.small_hidden or max(2, n // 10), config.large_hidden or 10 * n


def train_part_c(exp, data, config, sweep, which):
    """One of part c's networks (`which`: 0 small, 1 large N): the chosen setting with that N."""
    chosen = chosen_setting(config, sweep)
    size = part_c_sizes(config, chosen)[which]
    setting = dataclasses.replace(chosen, hidden=(size,))
    run = exp.run.child(PART_C_FOLDER.format(size=size), {**exp.config, "hidden_n": size})
    return train(exp, data, config, setting, run, config.train_epochs, f"part c: {setting.describe()}")


def two_layer_setting(config, chosen_init_std, momentum=0.0):
    return Setting(config.two_layer, config.two_layer_lr, config.two_layer_batch, chosen_init_std, momentum)


def two_layer_init_std(config, sweep=None):
    """Parts d and e start from part a's chosen init scale when part a runs (`sweep`), else from --init-std."""
    return chosen_setting(config, sweep).init_std if sweep is not None else config.init_std


def train_two_layer(exp, data, config, part, sweep=None):
    """Part d's (`part` "d": no momentum) or part e's (--momentum) two-hidden-layer network, in its part's folder."""
    momentum = config.momentum if part == "e" else 0.0
    setting = two_layer_setting(config, two_layer_init_std(config, sweep), momentum)
    run = exp.run.child(PART_FOLDERS[part], {**exp.config, "setting": setting.describe()})
    return train(exp, data, config, setting, run, config.train_epochs, f"part {part}: {setting.describe()}")


def declare(exp, data, config):
    """Every training the parts `--part` asks for, in the assignment's order (the plan a cluster shares): part a's
    sweep and its chosen network (parts a, b and c need them; part b trains nothing), part c's small and large N,
    part d's and part e's two-layer networks (which start from the sweep's chosen init scale when it runs)."""
    plan = Plan(exp.run.path)
    parts = set(config.part)
    needs = ()
    if {"a", "b", "c"} & parts:
        sweep = Sweep(
            exp.run, config.search_space, epochs=config.trial_epochs, name=PART_A_SWEEP, **config.sweep_options()
        )
        needs = (plan.sweep(PART_A_SWEEP, sweep, part_a_trainer(exp, data, config)),)
        plan.training(PART_A_FOLDER, lambda sweep: train_part_a(exp, data, config, sweep), needs=needs)
        if "c" in parts:
            for which, name in enumerate(PART_C_STEPS):
                plan.training(
                    name, lambda sweep, which=which: train_part_c(exp, data, config, sweep, which), needs=needs
                )
    if {"d", "e"} & parts:
        plan.training(PART_D_FOLDER, lambda *sweep: train_two_layer(exp, data, config, "d", *sweep), needs=needs)
    if "e" in parts:
        plan.training(PART_E_FOLDER, lambda *sweep: train_two_layer(exp, data, config, "e", *sweep), needs=needs)
    return plan


# ---------------------------------------------------------------------------------------------------------
# Reports: each part's tables and figures from the finished plan; each returns the (setting, TrainResult) of every
# network it shows as its own
# ---------------------------------------------------------------------------------------------------------


def part_a(exp, config, sweep, result):
    """The sweep's table and figure, the chosen network's curves and numbers; returns its (setting, result)."""
    sweep.write_outputs(
        exp.report,
        f"Part a: sweep ({config.trial_epochs} epochs per trial, chosen on validation MSE)",
        metrics=("val_loss", "val_mce"),
    )
    chosen = chosen_setting(config, sweep)
    best = sweep.best()
    print(f"part a: chosen {chosen.describe()} (best validation MSE {best['best_valid_loss']:.4f})")
    exp.report.add_image(
        f"Part a: chosen network trained for {config.train_epochs} epochs ({chosen.describe()})",
        result.run.path / "curves.png",
        note="Training MSE/MCE are running means over each epoch's batches (Keras); validation "
        "and test values are evaluated after each epoch.",
    )
    exp.report.add_table("Part a: final numbers", [summary_row("a: one hidden layer", chosen, result)])
    return chosen, result


def overlay(exp, name, histories, heading, rows):
    path = plot_overlay(histories, exp.run.path / f"{name}.png", metrics=CURVE_METRICS, title=heading)
    exp.report.add_image(heading, path)
    exp.report.add_table(f"{heading}: numbers", rows)


def part_c(exp, config, chosen, chosen_result, results):
    """N much smaller and much larger than the chosen N (`results`: their `TrainResult`s), same other
    hyperparameters, overlaid with the chosen N."""
    n = chosen.hidden[0]
    small, large = part_c_sizes(config, chosen)
    histories = {f"N={n} (chosen)": chosen_result.history}
    rows = [summary_row(f"c: N={n} (chosen)", chosen, chosen_result)]
    trained = {}
    for size, result in zip((small, large), results):
        setting = dataclasses.replace(chosen, hidden=(size,))
        histories[f"N={size}"] = result.history
        rows.append(summary_row(f"c: N={size}", setting, result))
        trained[f"c: N={size}"] = (setting, result)
    overlay(exp, "part_c_curves", histories, f"Part c: N = {small} and {large} against the chosen N = {n}", rows)
    return trained


def part_d(exp, config, init_std, result, one_layer=None):
    setting = two_layer_setting(config, init_std)
    histories = {f"two layers {setting.describe()}": result.history}
    rows = [summary_row("d: two hidden layers", setting, result)]
    if one_layer is not None:
        one_setting, one_result = one_layer
        histories = {f"one layer {one_setting.describe()}": one_result.history, **histories}
        rows.insert(0, summary_row("a: one hidden layer", one_setting, one_result))
    overlay(exp, "part_d_curves", histories, "Part d: two hidden layers against one", rows)
    return setting, result


def part_e(exp, config, init_std, result, plain):
    setting = two_layer_setting(config, init_std, momentum=config.momentum)
    plain_setting, plain_result = plain
    histories = {"no momentum": plain_result.history, f"momentum {config.momentum:g}": result.history}
    rows = [
        summary_row("d: two layers, no momentum", plain_setting, plain_result),
        summary_row(f"e: two layers, momentum {config.momentum:g}", setting, result),
    ]
    overlay(
        exp, "part_e_curves", histories, f"Part e: momentum {config.momentum:g} against none (two hidden layers)", rows
    )
    return setting, result


def report_parts(exp, config, plan):
    """Every part `--part` asks for, in the assignment's order, from the finished `plan`; returns name -> (setting,
    TrainResult) of every network trained (part b trains none: it reads part a's curves)."""
    parts = config.part
    trained = {}
    one_layer = sweep = None
    if PART_A_SWEEP in plan:
        sweep = plan.result(PART_A_SWEEP)
        one_layer = trained["a: one hidden layer"] = part_a(exp, config, sweep, plan.result(PART_A_FOLDER))
        chosen, result = one_layer
        if "b" in parts:
            part_b(exp, result)
        if "c" in parts:
            trained.update(part_c(exp, config, chosen, result, [plan.result(name) for name in PART_C_STEPS]))
    init_std = two_layer_init_std(config, sweep)
    if PART_D_FOLDER in plan:
        plain = trained["d: two hidden layers"] = part_d(exp, config, init_std, plan.result(PART_D_FOLDER), one_layer)
        if PART_E_FOLDER in plan:
            trained["e: two hidden layers + momentum"] = part_e(
                exp, config, init_std, plan.result(PART_E_FOLDER), plain
            )
    return trained


# ---------------------------------------------------------------------------------------------------------
# Export and examples
# ---------------------------------------------------------------------------------------------------------


def exported_choice(trained):
    """The name of the network the app exports: the lowest final validation MSE of every network trained."""
    return min(trained, key=lambda name: trained[name][1].final.get("valid_loss", np.inf))


def export(exp, model, raw, data, scaling):
    """The served model takes raw pixels: the export scales them, and a ZCA layer in front whitens them."""
    pixel_scale, mean_image, whitening = scaling
    served = model
    if whitening is not None:  # the export whitens raw pixels itself
        served = keras.Sequential([keras.Input((data.x_train.shape[1],)), whitening.layer(), model], name=APP)
    return exp.export(
        served,
        data=data,  # calibrated on the outputs of the net itself, which takes the prepared inputs
        calibration_model=model,
        class_names=raw.class_names,
        input_shape=[data.x_train.shape[1]],
        image_shape=[32, 32, 1],
        output="tanh",
        pixel_scale=pixel_scale,
        mean_image=mean_image,
        image_style="photo",
    )


def record_choice(exp, config, name, setting, result):
    """`exported.json`: which network was exported, its sub-folder, and the parts it was chosen among; the results
    page reads the app's own choice from it (`headlines`)."""
    atomic.write_json(
        exp.run.path / EXPORTED_FILE,
        {"model": name, "setting": setting.describe(), "folder": result.run.path.name, "parts": list(config.part)},
    )


# ---------------------------------------------------------------------------------------------------------
# The app: `run(...)` from Python, `python -m apps.catcar_mlp` from a shell
# ---------------------------------------------------------------------------------------------------------


def preprocessing_text(config, data):
    scaling = {
        "raw": "",
        "center": ", minus the mean training image",
        "standardize": ", minus the mean training image, divided by the pixel std",
        "zca": f", ZCA-whitened (epsilon {config.zca_epsilon:g})",
    }[config.inputs]
    return (
        f"- parts run: {','.join(config.part)}\n- inputs: 32x32 pixels flattened to 1024 values in "
        f"[0, 1]{scaling}"
        f"\n- targets: cat -1, car +1; prediction = sign of the tanh output\n- training augmentation: "
        f"{config.augment} ({len(data.y_train):,} training inputs)\n- learning-rate decay: {config.lr_decay:g}"
    )


def run(config=None, **overrides):
    """Train the parts `--part` asks for and export the network with the lowest final validation MSE; returns its
    `TrainResult` (`.final`, `.history`, `.model`, `.run_path`, `.export_path`) with `.parts` holding every trained
    network's result by name ("a: one hidden layer", "c: N=2", ...). `run(quick=True, part=("d",))`: keywords as the
    flags."""
    config = Config.make(config, **overrides)
    with Experiment(config, TITLE) as exp:
        raw = exp.use_data(carve_validation(load_catcar(config.data_dir), config.num_validation, config.seed))
        data, scaling = prepare(raw, config)
        exp.report.add("Preprocessing", preprocessing_text(config, data))
        plan = declare(exp, data, config).run()  # re-running the same command resumes every training
        trained = report_parts(exp, config, plan)
        exp.report.add_table(
            "Summary (final epoch; 'at best valid' = test accuracy at the epoch of lowest validation MSE)",
            [summary_row(name, setting, result) for name, (setting, result) in trained.items()],
        )
        name = exported_choice(trained)
        setting, result = trained[name]
        export_path = export(exp, result.model, raw, data, scaling)
        record_choice(exp, config, name, setting, result)
        exp.report.add(
            "Exported model",
            f"`{exp.export_dir}`: {name} ({setting.describe()}), the lowest final validation "
            f"MSE; test accuracy {100 * result.final['test_accuracy']:.1f} %. Classify a 32x32 grey PNG with "
            f"`python -m apps.predict {exp.export_dir} image.png`.",
        )
        show_examples(exp, result.model, raw, data, seed=config.seed)
        summary = {
            n: {
                "setting": s.describe(),
                "test_accuracy": r.final["test_accuracy"],
                "valid_accuracy": r.final["valid_accuracy"],
            }
            for n, (s, r) in trained.items()
        }
        print("results: " + json.dumps(summary))
        print(f"report: {exp.report.path}")
        return dataclasses.replace(result, export_path=export_path, parts={n: r for n, (_, r) in trained.items()})


def headlines(run_path):
    """The numbers the results page quotes from a finished run folder of this app (see `tfnets.experiment.headline`):
    the test accuracy of the network the app exported (its own choice, read from `exported.json`) once that choice
    was made among every part's networks."""
    record = headline.read_json(Path(run_path) / EXPORTED_FILE)
    if not isinstance(record, dict) or set(record.get("parts", ())) != set(PARTS) or not record.get("folder"):
        return {}
    return headline.collect(test_accuracy=headline.metric(Path(run_path) / record["folder"]))


def main(argv=None):
    return run(Config.from_argv(argv))


if __name__ == "__main__":
    exit_with(main)

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

import numpy as np

from tfnets.data import load_catcar, to_signed_labels
from tfnets.experiment import Experiment
from tfnets.experiment.cli import (
    base_parser,
    choice_list,
    core_config,
    exit_with,
    positive_float,
    positive_int,
    require,
)
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plots import plot_image_grid, plot_overlay
from tfnets.experiment.report import markdown_table
from tfnets.experiment.sweep import Sweep, add_sweep_arguments, parse_sweep, sweep_config, sweep_options

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

APP = "catcar_mlp"
PARTS = ("a", "b", "c", "d", "e")
SWEEPABLE = {"hidden": int, "learning_rate": float, "batch_size": int, "init_std": float}
DEFAULT_SWEEP = {"hidden": [10, 20, 50], "learning_rate": [0.1, 0.35], "init_std": [0.01, 0.1]}
AUGMENTATIONS = ("none", "flip", "flip+shift")
INPUT_SCALINGS = ("raw", "center", "standardize", "zca")
CURVE_METRICS = ("loss", "test_loss", "mce", "test_mce")


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


part_list = choice_list(PARTS, name="--part", allow_all=True)


def build_parser():
    parser = base_parser(APP, "Cat-vs-car tanh MLP trained with SGD on MSE (EEE443 HW2 Q1).", epochs=30, batch_size=38)
    group = parser.add_argument_group("cat-vs-car")
    group.add_argument("--part", type=str, default="a,b,c,d,e", help="assignment parts to run (default a,b,c,d,e)")
    group.add_argument(
        "--hidden", type=positive_int, default=20, help="hidden size N when the sweep does not vary it (default 20)"
    )
    group.add_argument(
        "--learning-rate",
        type=positive_float,
        default=0.1,
        help="learning rate when the sweep does not vary it (default 0.1)",
    )
    group.add_argument(
        "--init-std",
        type=positive_float,
        default=0.01,
        help="weights and biases start from N(0, init_std^2) when the sweep does not vary it",
    )
    group.add_argument(
        "--sweep-epochs", type=positive_int, default=10, help="epochs per sweep trial in part a (default 10)"
    )
    group.add_argument(
        "--num-validation",
        type=positive_int,
        default=190,
        help="training images held out (stratified, seeded) for model selection (default 190)",
    )
    group.add_argument(
        "--augment",
        choices=AUGMENTATIONS,
        default="flip+shift",
        help="training-set augmentation: mirror images, and 2-pixel shifts (default flip+shift)",
    )
    group.add_argument(
        "--inputs",
        choices=INPUT_SCALINGS,
        default="center",
        help="pixels in [0, 1] (raw), minus the mean training image (center, default), centred and "
        "divided by the pixel std (standardize), or ZCA-whitened at the centred pixels' overall "
        "std (zca)",
    )
    group.add_argument(
        "--zca-epsilon",
        type=positive_float,
        default=0.1,
        help="ZCA regulariser in units of the variance of pixels in [0, 1] (--inputs zca; default 0.1)",
    )
    group.add_argument(
        "--lr-decay", type=float, default=0.0, help="learning rate / (1 + lr_decay * epoch) (default 0: constant)"
    )
    group.add_argument("--small-hidden", type=positive_int, default=None, help="part c: small N (default N/10, >= 2)")
    group.add_argument("--large-hidden", type=positive_int, default=None, help="part c: large N (default 10 N)")
    group.add_argument("--two-layer", type=str, default="512,64", help="part d/e hidden sizes (default 512,64)")
    group.add_argument("--two-layer-lr", type=positive_float, default=0.35, help="part d/e learning rate (0.35)")
    group.add_argument("--two-layer-batch", type=positive_int, default=38, help="part d/e batch size (38)")
    group.add_argument("--momentum", type=float, default=0.3, help="part e momentum coefficient (default 0.3)")
    add_sweep_arguments(parser, SWEEPABLE)
    return parser


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------


def carve_validation(data, num_validation, seed):
    """Move a class-stratified, seeded random `num_validation` of the training images into the validation split."""
    require(
        num_validation < len(data.y_train),
        f"--num-validation {num_validation} must be smaller than the training set ({len(data.y_train)} images)",
    )
    rng = np.random.default_rng(seed)
    valid_index = []
    for label in np.unique(data.y_train):
        members = np.flatnonzero(data.y_train == label)
        share = int(round(num_validation * len(members) / len(data.y_train)))
        valid_index.extend(rng.choice(members, size=share, replace=False))
    is_valid = np.zeros(len(data.y_train), bool)
    is_valid[valid_index] = True
    note = (
        data.note.replace("no validation split (as in the assignment)", "")
        + f"validation = {is_valid.sum()} training images (stratified random, seed {seed}); test only reported"
    )
    return dataclasses.replace(
        data,
        x_train=data.x_train[~is_valid],
        y_train=data.y_train[~is_valid],
        x_valid=data.x_train[is_valid],
        y_valid=data.y_train[is_valid],
        note=note,
    )


def shifted(images, dy, dx):
    """Images (N, H, W) moved by (dy, dx) pixels; the uncovered border repeats the edge pixels."""
    pad = max(abs(dy), abs(dx))
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    h, w = images.shape[1:]
    return padded[:, pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def augment(images, labels, mode):
    """Training images (N, 32, 32) -> more images: mirror (x2) and 2-pixel shifts up/down/left/right (x5)."""
    if mode in ("flip", "flip+shift"):
        images, labels = np.concatenate([images, images[:, :, ::-1]]), np.concatenate([labels, labels])
    if mode == "flip+shift":
        moves = [(0, 0), (-2, 0), (2, 0), (0, -2), (0, 2)]
        images = np.concatenate([shifted(images, dy, dx) for dy, dx in moves])
        labels = np.tile(labels, len(moves))
    return images, labels


def prepare(data, args):
    """Upright images in [0, 1] -> flattened MLP inputs (N, 1024) and -1/+1 targets; returns (splits, scaling).

    `scaling` = (pixel_scale, mean_image, whitening): model input = whiten(raw_pixel * pixel_scale - mean_image),
    which is what the export needs for `apps.predict`; `whitening` is a `tfnets.nn.preprocessing.ZCA` (its layer goes
    in front of the exported model) for `--inputs zca`, else None.
    """
    from tfnets.nn.preprocessing import fit_zca

    x_train, y_train = augment(data.x_train, data.y_train, args.augment)
    flat = lambda x: x.reshape(len(x), -1).astype(np.float32)  # noqa: E731
    x_train, x_valid, x_test = flat(x_train), flat(data.x_valid), flat(data.x_test)
    pixel_scale, mean_image, whitening = 1 / 255.0, None, None
    if args.inputs == "zca":
        # Whitened, but at the centred pixels' overall std: the sweep's learning rates and init scales were
        # chosen for inputs of that size, and unit-variance inputs would saturate the tanh units.
        whitening = fit_zca(x_train, epsilon=args.zca_epsilon)
        whitening = dataclasses.replace(
            whitening, output_scale=whitening.output_scale * float((x_train - x_train.mean(axis=0)).std())
        )
        x_train, x_valid, x_test = (whitening.apply(x) for x in (x_train, x_valid, x_test))
    elif args.inputs != "raw":
        # Centring matters: all-positive pixels make every hidden unit's update share one sign, and with
        # learning rate 0.35 the tanh units saturate within an epoch. One scalar std (not per pixel) keeps the
        # transform expressible as raw*scale - mean for the export metadata.
        mean = x_train.mean(axis=0)
        std = float((x_train - mean).std()) if args.inputs == "standardize" else 1.0
        x_train, x_valid, x_test = ((x - mean) / std for x in (x_train, x_valid, x_test))
        pixel_scale, mean_image = 1 / (255.0 * std), mean / std
    prepared = dataclasses.replace(
        data,
        x_train=x_train,
        y_train=to_signed_labels(y_train),
        x_valid=x_valid,
        y_valid=to_signed_labels(data.y_valid),
        x_test=x_test,
        y_test=to_signed_labels(data.y_test),
    )
    return prepared, (pixel_scale, mean_image, whitening)


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


def train(exp, data, setting, run, epochs, title, callbacks=()):
    """Build and fit one setting in `run`; returns (model, TrainResult)."""
    steps = int(np.ceil(len(data.y_train) / setting.batch_size))
    model = build_model(setting, data.x_train.shape[1], exp.args.lr_decay, steps)
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
    return model, result


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
# Parts
# ---------------------------------------------------------------------------------------------------------


def part_a(exp, data, args):
    """Sweep (hidden, learning rate, batch size, init) on validation MSE; train the winner for --epochs."""
    space = parse_sweep(args.sweep, SWEEPABLE, args) if args.sweep else dict(DEFAULT_SWEEP)
    fixed = {
        "hidden": args.hidden,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "init_std": args.init_std,
    }

    def setting_for(values):
        v = {**fixed, **values}
        return Setting((v["hidden"],), v["learning_rate"], v["batch_size"], v["init_std"])

    sweep_epochs = min(args.sweep_epochs, args.epochs)
    sweep = Sweep(exp.run, space, epochs=sweep_epochs, name="part_a", **sweep_options(args))
    sweep.search(
        lambda values, run, epochs=None, callbacks=(): train(
            exp,
            data,
            setting_for(values),
            run,
            epochs or sweep_epochs,
            f"part a trial {setting_for(values).describe()}",
            callbacks,
        )[1]
    )
    sweep.write_outputs(
        exp.report,
        f"Part a: sweep ({sweep_epochs} epochs per trial, chosen on validation MSE)",
        metrics=("val_loss", "val_mce"),
    )
    best = sweep.best()
    require(best is not None, "every part-a sweep trial diverged; try smaller --sweep learning_rate values")
    chosen = setting_for({k: best[k] for k in space})
    print(f"part a: chosen {chosen.describe()} (best validation MSE {best['best_valid_loss']:.4f})")
    model, result = train(
        exp,
        data,
        chosen,
        exp.run.child("part_a_final", {**exp.config, "setting": chosen.describe()}),
        args.epochs,
        f"part a: {chosen.describe()}",
    )
    exp.report.add_image(
        f"Part a: chosen network trained for {args.epochs} epochs ({chosen.describe()})",
        result.run.path / "curves.png",
        note="Training MSE/MCE are running means over each epoch's batches (Keras); validation "
        "and test values are evaluated after each epoch.",
    )
    exp.report.add_table("Part a: final numbers", [summary_row("a: one hidden layer", chosen, result)])
    return chosen, model, result


def pearson(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def mse_vs_mce(history):
    """Per split: first/last/best MSE and MCE, the epoch each is lowest, and their correlation over epochs."""
    rows = []
    for split, prefix in (("train", ""), ("valid", "val_"), ("test", "test_")):
        mse = [row.get(prefix + "loss", np.nan) for row in history]
        mce = [row.get(prefix + "mce", np.nan) for row in history]
        if np.all(np.isnan(mse)):
            continue
        rows.append(
            {
                "split": split,
                "first_mse": mse[0],
                "last_mse": mse[-1],
                "min_mse": np.nanmin(mse),
                "epoch_min_mse": int(np.nanargmin(mse)) + 1,
                "first_mce_%": mce[0],
                "last_mce_%": mce[-1],
                "min_mce_%": np.nanmin(mce),
                "epoch_min_mce": int(np.nanargmin(mce)) + 1,
                "pearson_r(mse,mce)": pearson(mse, mce),
                "pearson_r(Δmse,Δmce)": pearson(np.diff(mse), np.diff(mce)),
            }
        )
    return rows


def part_b(exp, result):
    """Print and report whether MSE tracks the classification error on train and test."""
    rows = mse_vs_mce(result.history)
    by_split = {row["split"]: row for row in rows}
    lines = []
    for split, row in by_split.items():
        r = row["pearson_r(mse,mce)"]
        verdict = "tracks MCE closely" if r > 0.9 else "tracks MCE loosely" if r > 0.5 else "does NOT track MCE"
        lines.append(
            f"- {split}: MSE {row['first_mse']:.3f} -> {row['last_mse']:.3f} (lowest at epoch "
            f"{row['epoch_min_mse']}), MCE {row['first_mce_%']:.1f}% -> {row['last_mce_%']:.1f}% (lowest at "
            f"epoch {row['epoch_min_mce']}); correlation over epochs r = {r:.3f}: MSE {verdict}."
        )
    if "train" in by_split and "test" in by_split:
        train, test = by_split["train"], by_split["test"]
        gap = test["last_mce_%"] - train["last_mce_%"]
        last = len(result.history)
        if test["epoch_min_mse"] < last:
            trend = (
                f"the test MSE is lowest at epoch {test['epoch_min_mse']} while the train MSE is lowest at epoch "
                f"{train['epoch_min_mse']}: after epoch {test['epoch_min_mse']} lower training error no longer "
                "buys lower test error"
            )
        else:
            trend = "the test MSE is still at its lowest in the last epoch (no sign of overfitting in MSE yet)"
        lines.append(f"- generalisation gap at the end: test MCE - train MCE = {gap:.1f} points; {trend}.")
        lines.append(
            "- MSE also measures how far the tanh output is from ±1 on examples already on the right side of "
            "0, so it can keep changing while the sign (and MCE) does not; the Δ-correlation column shows "
            "how often they move together from one epoch to the next."
        )
    text = "\n".join(lines)
    print("part b: MSE vs MCE\n" + text)
    exp.report.add(
        "Part b: does MSE track the classification error?", markdown_table(rows, floatfmt=".3f") + "\n" + text
    )
    return rows


def overlay(exp, name, histories, heading, rows):
    path = plot_overlay(histories, exp.run.path / f"{name}.png", metrics=CURVE_METRICS, title=heading)
    exp.report.add_image(heading, path)
    exp.report.add_table(f"{heading}: numbers", rows)


def part_c(exp, data, args, chosen, chosen_result):
    """N much smaller and much larger than the chosen N, same other hyperparameters."""
    n = chosen.hidden[0]
    small = args.small_hidden or max(2, n // 10)
    large = args.large_hidden or 10 * n
    histories = {f"N={n} (chosen)": chosen_result.history}
    rows = [summary_row(f"c: N={n} (chosen)", chosen, chosen_result)]
    trained = []
    for size in (small, large):
        setting = dataclasses.replace(chosen, hidden=(size,))
        model, result = train(
            exp,
            data,
            setting,
            exp.run.child(f"part_c_N{size}", {**exp.config, "hidden_n": size}),
            args.epochs,
            f"part c: {setting.describe()}",
        )
        histories[f"N={size}"] = result.history
        rows.append(summary_row(f"c: N={size}", setting, result))
        trained.append((f"c: N={size}", setting, model, result))
    overlay(exp, "part_c_curves", histories, f"Part c: N = {small} and {large} against the chosen N = {n}", rows)
    return trained


def two_layer_setting(args, chosen_init_std, momentum=0.0):
    sizes = tuple(int(s) for s in args.two_layer.split(",") if s.strip())
    require(
        len(sizes) >= 1 and all(s > 0 for s in sizes), f"--two-layer expects sizes like 512,64, got {args.two_layer!r}"
    )
    return Setting(sizes, args.two_layer_lr, args.two_layer_batch, chosen_init_std, momentum)


def part_d(exp, data, args, init_std, one_layer=None):
    setting = two_layer_setting(args, init_std)
    model, result = train(
        exp,
        data,
        setting,
        exp.run.child("part_d", {**exp.config, "setting": setting.describe()}),
        args.epochs,
        f"part d: {setting.describe()}",
    )
    histories, rows = (
        {f"two layers {setting.describe()}": result.history},
        [summary_row("d: two hidden layers", setting, result)],
    )
    if one_layer is not None:
        one_setting, one_result = one_layer
        histories = {f"one layer {one_setting.describe()}": one_result.history, **histories}
        rows.insert(0, summary_row("a: one hidden layer", one_setting, one_result))
    overlay(exp, "part_d_curves", histories, "Part d: two hidden layers against one", rows)
    return setting, model, result


def part_e(exp, data, args, init_std, plain):
    require(
        0 < args.momentum < 1, f"--momentum must be in (0, 1) (the assignment asks for 0.1..0.5), got {args.momentum}"
    )
    setting = two_layer_setting(args, init_std, momentum=args.momentum)
    model, result = train(
        exp,
        data,
        setting,
        exp.run.child("part_e", {**exp.config, "setting": setting.describe()}),
        args.epochs,
        f"part e: {setting.describe()}",
    )
    plain_setting, plain_result = plain
    histories = {"no momentum": plain_result.history, f"momentum {args.momentum:g}": result.history}
    rows = [
        summary_row("d: two layers, no momentum", plain_setting, plain_result),
        summary_row(f"e: two layers, momentum {args.momentum:g}", setting, result),
    ]
    overlay(
        exp, "part_e_curves", histories, f"Part e: momentum {args.momentum:g} against none (two hidden layers)", rows
    )
    return setting, model, result


# ---------------------------------------------------------------------------------------------------------
# Export and examples
# ---------------------------------------------------------------------------------------------------------


def show_examples(exp, model, raw, prepared, count=8, seed=0):
    """Grid of `count` correctly and `count` wrongly classified test images, upright, with true/predicted class."""
    outputs = model.predict(prepared.x_test, batch_size=1024, verbose=0).reshape(-1)
    predicted = (outputs > 0).astype(int)
    order = np.random.default_rng(seed).permutation(len(predicted))
    correct = [i for i in order if predicted[i] == raw.y_test[i]][:count]
    wrong = [i for i in order if predicted[i] != raw.y_test[i]][:count]
    names = raw.class_names
    titles = [
        f"{'ok' if i in correct else 'WRONG'}: {names[raw.y_test[i]]}\npred {names[predicted[i]]} ({outputs[i]:+.2f})"
        for i in correct + wrong
    ]
    path = plot_image_grid(raw.x_test[correct + wrong], titles, exp.run.path / "test_examples.png", cols=count)
    exp.report.add_image(
        "Test images classified by the exported model (top row right, bottom row wrong)",
        path,
        note="Shown upright; the number is the tanh output (> 0 means car).",
    )


def get_config(args):
    """What defines a run of this app (its run id hashes exactly these fields).

    `--part` only chooses which parts run: each part has its own folder, so running another part later
    resumes the finished ones.
    """
    return {
        **core_config(args),
        "hidden": args.hidden,
        "learning_rate": args.learning_rate,
        "init_std": args.init_std,
        "sweep_epochs": args.sweep_epochs,
        "num_validation": args.num_validation,
        "augment": args.augment,
        "inputs": args.inputs,
        "zca_epsilon": args.zca_epsilon,
        "lr_decay": args.lr_decay,
        "small_hidden": args.small_hidden,
        "large_hidden": args.large_hidden,
        "two_layer": args.two_layer,
        "two_layer_lr": args.two_layer_lr,
        "two_layer_batch": args.two_layer_batch,
        "momentum": args.momentum,
        **sweep_config(args),
    }


def main(argv=None):
    args = build_parser().parse_args(argv)
    parts = part_list(args.part)
    exp = Experiment(args, "Cat vs car: tanh MLPs with SGD on MSE (EEE443 HW2 Q1)", get_config)
    raw = exp.use_data(carve_validation(load_catcar(args.data_dir), args.num_validation, args.seed))
    data, (pixel_scale, mean_image, whitening) = prepare(raw, args)
    scaling = {
        "raw": "",
        "center": ", minus the mean training image",
        "standardize": ", minus the mean training image, divided by the pixel std",
        "zca": f", ZCA-whitened (epsilon {args.zca_epsilon:g})",
    }[args.inputs]
    exp.report.add(
        "Preprocessing",
        f"- parts run: {','.join(parts)}\n- inputs: 32x32 pixels flattened to 1024 values in "
        f"[0, 1]{scaling}"
        f"\n- targets: cat -1, car +1; prediction = sign of the tanh output\n- training augmentation: "
        f"{args.augment} ({len(data.y_train):,} training inputs)\n- learning-rate decay: {args.lr_decay:g}",
    )

    candidates = []  # (name, setting, model, result): the exported model is the one with the lowest valid MSE
    chosen = one_layer = None
    if {"a", "b", "c"} & set(parts):
        chosen, model, result = part_a(exp, data, args)
        one_layer = (chosen, result)
        candidates.append(("a: one hidden layer", chosen, model, result))
        if "b" in parts:
            part_b(exp, result)
        if "c" in parts:
            candidates += part_c(exp, data, args, chosen, result)
    init_std = chosen.init_std if chosen else args.init_std
    if {"d", "e"} & set(parts):
        setting, model, result = part_d(exp, data, args, init_std, one_layer)
        candidates.append(("d: two hidden layers", setting, model, result))
        if "e" in parts:
            setting, model, result = part_e(exp, data, args, init_std, (setting, result))
            candidates.append(("e: two hidden layers + momentum", setting, model, result))

    exp.report.add_table(
        "Summary (final epoch; 'at best valid' = test accuracy at the epoch of lowest validation MSE)",
        [summary_row(name, setting, result) for name, setting, _, result in candidates],
    )
    name, setting, model, result = min(candidates, key=lambda c: c[3].final.get("valid_loss", np.inf))
    served = model
    if whitening is not None:  # the export whitens raw pixels itself
        served = keras.Sequential([keras.Input((data.x_train.shape[1],)), whitening.layer(), model], name=APP)
    exp.export(
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
    exp.report.add(
        "Exported model",
        f"`{exp.export_dir}`: {name} ({setting.describe()}), the lowest final validation "
        f"MSE; test accuracy {100 * result.final['test_accuracy']:.1f} %. Classify a 32x32 grey PNG with "
        f"`python -m apps.predict {exp.export_dir} image.png`.",
    )
    show_examples(exp, model, raw, data, seed=args.seed)
    summary = {
        n: {
            "setting": s.describe(),
            "test_accuracy": r.final["test_accuracy"],
            "valid_accuracy": r.final["valid_accuracy"],
        }
        for n, s, _, r in candidates
    }
    print("results: " + json.dumps(summary))
    print(f"report: {exp.report.path}")
    return summary


if __name__ == "__main__":
    exit_with(main)

"""CIFAR-10 with fully-connected nets: CS231n assignment 2 (fully-connected nets, dropout, normalisation),
as assigned in Bilkent EEE443 homework 2, question 3.

Every net is `tfnets.nn.models.FullyConnectedNet`, `{affine - [batch/layer norm] - relu - [dropout]} x (L-1) - affine -
softmax`, whose gradients come from the hand-written backward passes of `tfnets.nn.ops`. The parts:

    gradcheck       gradients vs central differences in float64 (reg, dropout, batch/layer norm); initial loss
    overfit         50 images, 3- and 5-layer nets (100 units each), a small grid of learning rate x weight scale
    update_rules    6-layer net, 4,000 images, 5 epochs: sgd, sgd_momentum, rmsprop, adam (`tfnets.nn.solver.Solver`)
    best            the best net we can: a small sweep (few epochs per trial), then a long training of the best
                    setting on all 49,000 training images (Keras `fit` with the manual gradients); exported
    dropout         500 images, one hidden layer of 500, keep ratio 1 vs 0.25, 25 epochs, Adam 5e-4
    normalization   6-layer net with none / batchnorm / layernorm: training speed and a weight-scale sweep

    python -m apps.cifar_fc_net                                   # every part
    python -m apps.cifar_fc_net --part gradcheck,overfit --quick  # a few parts, smoke-test sizes
    python -m apps.cifar_fc_net --part best --epochs 40 --sweep learning_rate=1e-3,3e-4 --sweep keep=0.5,0.7

Inputs are standardised: `x = (pixels - channel_mean) / pixel_std` (statistics of the training split). The best
net instead sees ZCA-whitened pixels by default (`--inputs zca`, `tfnets.nn.preprocessing`; `--inputs standardize` for
the plain scaling). Either way the export takes raw 32x32 RGB pixels (the whitening is a fixed layer inside it, the
standardisation `pixel_scale = 1/std` and a mean image `channel_mean/std` in its metadata), so
`python -m apps.predict saved_models/cifar_fc_net some_cifar_image.png` just works.
"""

import dataclasses
import time

import numpy as np

from tfnets import atomic
from tfnets.data import load_cifar10
from tfnets.errors import TrainingDiverged
from tfnets.experiment import Experiment
from tfnets.experiment.cli import base_parser, choice_list, core_config, exit_with, require
from tfnets.experiment.determinism import reseed
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plots import label_axes, plot_xy, pyplot, save_figure
from tfnets.experiment.report import write_csv
from tfnets.experiment.sweep import Sweep, add_sweep_arguments, parse_sweep, sweep_config, sweep_options

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

APP = "cifar_fc_net"
PARTS = ("gradcheck", "overfit", "update_rules", "best", "dropout", "normalization")
SWEEPABLE = {"learning_rate": float, "keep": float, "reg": float, "hidden": str, "weight_scale": float}
# The "best" part's default search: learning rate x dropout keep ratio, a few epochs per trial.
DEFAULT_SWEEP = {"learning_rate": [1e-3, 3e-4], "keep": [0.5, 0.7]}
DEFAULT_BEST = {"hidden": "1024-512-256", "learning_rate": 1e-3, "keep": 0.6, "reg": 1e-4, "weight_scale": 0.0}


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------
def standardise(data):
    """Scale every split by the training split's per-channel mean and overall std. Returns (data, mean, std).

    A per-channel mean (not a mean image) keeps a horizontally flipped image standardised exactly like its original.
    """
    mean = data.x_train.mean(axis=(0, 1, 2), dtype=np.float64)
    std = float(data.x_train.std(dtype=np.float64))

    def scale(x):
        return ((x - mean) / std).astype(np.float32)

    scaled = dataclasses.replace(
        data, x_train=scale(data.x_train), x_valid=scale(data.x_valid), x_test=scale(data.x_test)
    )
    return scaled, mean.astype(np.float32), std


def solver_data(data, n_train=None):
    n = len(data.x_train) if n_train is None else n_train
    return {"X_train": data.x_train[:n], "y_train": data.y_train[:n], "X_val": data.x_valid, "y_val": data.y_valid}


def quick(args, full, small):
    return small if args.quick else full


# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------
def hidden_dims(text):
    """ "1024-512-256" -> [1024, 512, 256]."""
    try:
        dims = [int(part) for part in str(text).split("-") if part]
    except ValueError:
        dims = []
    require(dims and all(d > 0 for d in dims), f"hidden sizes must look like 1024-512-256; got {text!r}")
    return dims


def build_model(
    hidden="1024-512-256",
    learning_rate=1e-3,
    keep=0.6,
    reg=1e-4,
    weight_scale=0.0,
    epochs=10,
    steps_per_epoch=100,
    augmentation="flip_crop",
    seed=0,
):
    """The "best" part's net as a compiled Keras model: batch norm + dropout after every hidden layer, Adam with a
    cosine-decayed learning rate, flips/translations of the training images. `weight_scale=0` means He scaling
    (std sqrt(2 / fan_in)) per layer. Inputs (N, 32, 32, 3) standardised; outputs class scores (N, 10)."""
    from tfnets.nn.losses import SoftmaxCrossEntropy
    from tfnets.nn.models import FullyConnectedNet
    from tfnets.nn.optim import Adam

    reseed(seed)
    dims = hidden_dims(hidden)
    net = FullyConnectedNet(
        dims,
        dropout_keep_ratio=keep,
        normalization="batchnorm",
        reg=reg,
        weight_scale=weight_scale or 1.0,
        augmentation=augmentation,
        image_shape=(32, 32, 3),
    )
    if not weight_scale:  # He initialisation: the spec's single weight_scale does not suit 3072- and 256-wide layers
        for layer, fan_in in enumerate([3072, *dims], start=1):
            weights = net.params[f"W{layer}"]
            weights.assign(weights.numpy() * np.sqrt(2.0 / fan_in))
    model = net.as_keras_model()
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(1, epochs * steps_per_epoch), alpha=0.01
    )
    model.compile(optimizer=Adam(learning_rate=schedule), loss=SoftmaxCrossEntropy(), metrics=["accuracy"])
    return model


def fresh_net(seed, *args, **kwargs):
    """A net whose initial weights depend only on `seed` (so each part reproduces on its own)."""
    from tfnets.nn.models import FullyConnectedNet

    reseed(seed)
    return FullyConnectedNet(*args, **kwargs)


def train_solver(run, name, net, data, *, verbose=False, **solver_kwargs):
    """Train with the Solver, checkpointing into `run/solver/<name>.npz` (a re-run resumes or skips it)."""
    from tfnets.nn.solver import Solver

    started = time.perf_counter()
    solver = Solver(
        net, data, checkpoint_path=run.path / "solver" / f"{name}.npz", verbose=verbose, setting=name, **solver_kwargs
    )
    solver.train()
    solver.wall_time_s = round(time.perf_counter() - started, 2)
    return solver


# ---------------------------------------------------------------------------------------------------------------
# Parts
# ---------------------------------------------------------------------------------------------------------------
def avoid_kinks(net, X, rng, margin=5e-3, attempts=100):
    """Draw non-zero biases until every hidden ReLU input is at least `margin` away from 0. Returns the margin.

    Central differences straddling a ReLU's kink measure an average of two slopes, not the gradient; with zero
    biases and dropped units many inputs sit exactly at 0.
    """
    from tfnets.nn.models import kink_margin

    for _ in range(attempts):
        for name, variable in net.params.items():
            if name.startswith(("b", "beta")):
                variable.assign(rng.uniform(-0.5, 0.5, size=variable.shape))
        found = kink_margin(net, X)
        if found >= margin:
            break
    return found


def part_gradcheck(exp, data, args):
    """Relative errors of the manual gradients vs central differences on a small random float64 problem."""
    from tfnets.nn.models import FullyConnectedNet, gradient_check

    rng = np.random.default_rng(args.seed)
    # N > 2: with two examples batch norm's output barely depends on the weights; small N keeps few ReLU kinks.
    N, D, C = 5, quick(args, 15, 5), quick(args, 10, 4)
    hidden = quick(args, [20, 30], [4, 3])
    X, y = rng.standard_normal((N, D)), rng.integers(0, C, size=N)
    rows = []
    cases = [
        ("none", {}),
        ("dropout keep 0.5", {"dropout_keep_ratio": 0.5}),
        ("batchnorm", {"normalization": "batchnorm"}),
        ("layernorm", {"normalization": "layernorm"}),
    ]
    for case, kwargs in cases:
        for reg in (0.0, 3.14):
            net = FullyConnectedNet(
                hidden,
                input_dim=D,
                num_classes=C,
                reg=reg,
                weight_scale=0.2,
                dtype="float64",
                seed=args.seed + 1,
                **kwargs,
            )
            margin = avoid_kinks(net, X, rng)
            loss = float(net.loss(X, y)[0])
            errors = gradient_check(net, X, y)
            relative = {k: v for k, v in errors.items() if "zero entries" not in k}
            zeros = {k: v for k, v in errors.items() if "zero entries" in k}
            rows.append(
                {
                    "net": case,
                    "reg": reg,
                    "initial_loss": loss,
                    "kink_margin": margin,
                    "max_rel_error": max(relative.values()),
                    "worst_param": max(relative, key=relative.get),
                    "zero_entries_max_abs": max(zeros.values()) if zeros else 0.0,
                }
            )
            print(
                f"gradcheck {case:16s} reg={reg:<4}: loss {loss:.4f}, max rel error "
                f"{rows[-1]['max_rel_error']:.2e} ({rows[-1]['worst_param']})"
            )
    big = fresh_net(args.seed, [100, 100], weight_scale=1e-3)
    initial = float(big.loss(data.x_train[:200], data.y_train[:200])[0])
    print(f"initial loss on 200 CIFAR images (3-layer, weight_scale 1e-3): {initial:.4f} (ln 10 = {np.log(10):.4f})")
    table = [
        {
            **row,
            "max_rel_error": f"{row['max_rel_error']:.2e}",
            "kink_margin": f"{row['kink_margin']:.2e}",
            "zero_entries_max_abs": f"{row['zero_entries_max_abs']:.1e}",
        }
        for row in rows
    ]
    exp.report.add_table(
        f"Gradient check (float64, N={N}, D={D}, hidden {hidden}, C={C})",
        table,
        note=(
            "Manual gradients of `net.loss` vs 4-point central differences (h 1e-4); weight scale 0.2 and biases "
            "redrawn until every ReLU input is >= 5e-3 from the kink (`kink_margin`); relative error over non-zero entries; "
            "entries whose gradient is exactly zero (the biases feeding batch norm) are compared absolutely. "
            f"Initial loss of a 3-layer net (weight scale 1e-3) on 200 CIFAR training images: {initial:.4f} "
            f"(ln 10 = {np.log(10):.4f})."
        ),
    )
    return {"cases": rows, "initial_loss_cifar": initial}


def part_overfit(exp, data, args):
    """Overfit 50 images: for 3- and 5-layer nets, which (learning rate, weight scale) reach 100 % train accuracy."""
    small = solver_data(data, 50)
    learning_rates = quick(args, [1e-3, 3e-3, 1e-2, 3e-2, 1e-1], [1e-2])
    weight_scales = quick(args, [1e-2, 3e-2, 1e-1], [1e-1])
    epochs = quick(args, 20, 2)
    rows, best_curves = [], {}
    for depth, dims in (("3-layer", [100, 100]), ("5-layer", [100] * 4)):
        for ws in weight_scales:
            for lr in learning_rates:
                name = f"overfit_{depth}_ws{ws:g}_lr{lr:g}"
                net = fresh_net(args.seed, dims, weight_scale=ws)
                try:
                    solver = train_solver(
                        exp.run,
                        name,
                        net,
                        small,
                        update_rule="sgd",
                        optim_config={"learning_rate": lr},
                        batch_size=25,
                        num_epochs=epochs,
                        num_train_samples=None,
                        seed=args.seed,
                    )
                except TrainingDiverged:  # a diverging setting is a result of this grid
                    rows.append(
                        {
                            "net": depth,
                            "weight_scale": ws,
                            "learning_rate": lr,
                            "final_train_acc": float("nan"),
                            "epoch_100pct": "diverged",
                        }
                    )
                    continue
                hits = [e + 1 for e, acc in enumerate(solver.train_acc_history) if acc == 1.0]
                rows.append(
                    {
                        "net": depth,
                        "weight_scale": ws,
                        "learning_rate": lr,
                        "final_train_acc": solver.train_acc_history[-1],
                        "best_val_acc": solver.best_val_acc,
                        "epoch_100pct": hits[0] if hits else "-",
                    }
                )
                # The fastest setting per depth: first to 100 %, else the highest final train accuracy.
                rank = (hits[0] if hits else np.inf, -solver.train_acc_history[-1])
                if depth not in best_curves or rank < best_curves[depth][0]:
                    best_curves[depth] = (rank, (depth, ws, lr), solver.loss_history)
    summary = {}
    for depth in ("3-layer", "5-layer"):
        cells = [r for r in rows if r["net"] == depth]
        summary[depth] = sum(isinstance(r["epoch_100pct"], int) for r in cells)
        print(
            f"overfit {depth}: {summary[depth]} of {len(cells)} (weight scale, learning rate) settings reach 100 % "
            f"train accuracy within {epochs} epochs"
        )
    for row in rows:
        print(
            f"  {row['net']} ws={row['weight_scale']:g} lr={row['learning_rate']:g}: final train acc "
            f"{row['final_train_acc']:.2f}, 100 % at epoch {row['epoch_100pct']}"
        )
    more_sensitive = min(summary, key=summary.get) if len(set(summary.values())) > 1 else "neither"
    write_csv(exp.run.path / "overfit_results.csv", rows)
    note = (
        f"SGD, batch 25, {epochs} epochs on 50 training images. Settings reaching 100 % train accuracy: "
        + ", ".join(f"{d} {n}/{len(learning_rates) * len(weight_scales)}" for d, n in summary.items())
        + f". More sensitive to the initialisation scale: **{more_sensitive}**."
    )
    exp.report.add_table("Overfitting 50 images", rows, note=note)
    series = {f"{d} ws={k[1]:g} lr={k[2]:g}": (list(range(1, len(h) + 1)), h) for d, (_, k, h) in best_curves.items()}
    figure = plot_xy(
        series,
        exp.run.path / "overfit_loss.png",
        "iteration",
        "training loss",
        title="Overfitting 50 images: fastest setting per depth",
    )
    exp.report.add_image("Overfitting 50 images: loss", figure)
    return {"rows": rows, "settings_reaching_100pct": summary, "more_sensitive": more_sensitive}


# CS231n used 5e-2 on raw-scale (mean-subtracted, std ~60) pixels; on standardised inputs the signal of a 6-layer
# net then dies out and plain SGD stays at ln 10 for epochs (measured: loss 2.301 after 2 epochs; 2.16 with 1e-1).
UPDATE_RULES_WEIGHT_SCALE = 1e-1
UPDATE_RULE_CONFIGS = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "rmsprop": {"learning_rate": 1e-4},
    "adam": {"learning_rate": 1e-3},
}


def part_update_rules(exp, data, args):
    """6-layer net (five hidden layers of 100) on 4,000 images for 5 epochs with each update rule."""
    subset = solver_data(data, quick(args, 4000, 200))
    epochs = quick(args, 5, 1)
    rows, solvers = [], {}
    for rule, config in UPDATE_RULE_CONFIGS.items():
        net = fresh_net(args.seed, [100] * 5, weight_scale=UPDATE_RULES_WEIGHT_SCALE)
        solver = train_solver(
            exp.run,
            f"update_rule_{rule}",
            net,
            subset,
            update_rule=rule,
            optim_config=config,
            batch_size=100,
            num_epochs=epochs,
            seed=args.seed,
        )
        solvers[rule] = solver
        rows.append(
            {
                "update_rule": rule,
                **config,
                "final_loss": float(np.mean(solver.loss_history[-10:])),
                "final_train_acc": solver.train_acc_history[-1],
                "final_val_acc": solver.val_acc_history[-1],
                "best_val_acc": solver.best_val_acc,
                "wall_time_s": solver.wall_time_s,
            }
        )
        print(
            f"update rule {rule:12s}: loss {rows[-1]['final_loss']:.3f}, train acc {rows[-1]['final_train_acc']:.3f}, "
            f"val acc {rows[-1]['final_val_acc']:.3f}"
        )
    figure = plot_solvers(solvers, exp.run.path / "update_rules.png", "Update rules (6-layer net, 4,000 images)")
    exp.report.add_table(
        "Update rules",
        rows,
        note=f"Weight scale {UPDATE_RULES_WEIGHT_SCALE:g}, batch 100, learning rates as in CS231n.",
    )
    exp.report.add_image("Update rules: loss, train and val accuracy", figure)
    return {"rows": rows}


def plot_solvers(solvers, path, title):
    """One figure: loss per iteration, train accuracy and val accuracy per epoch, one line per solver."""
    fig, axes = pyplot().subplots(1, 3, figsize=(15, 3.8))
    for label, solver in solvers.items():
        axes[0].plot(solver.loss_history, ".", markersize=2, label=label)
        epochs = range(1, len(solver.train_acc_history) + 1)
        axes[1].plot(epochs, solver.train_acc_history, "o-", label=label)
        axes[2].plot(epochs, solver.val_acc_history, "o-", label=label)
    for ax, (xlabel, ylabel) in zip(
        axes, [("iteration", "training loss"), ("epoch", "train accuracy"), ("epoch", "val accuracy")]
    ):
        label_axes(ax, xlabel, ylabel)
    fig.suptitle(title)
    return save_figure(fig, path)


def part_dropout(exp, data, args):
    """500 training images, one hidden layer of 500: keep ratio 1 vs 0.25, 25 epochs, Adam 5e-4."""
    subset = solver_data(data, quick(args, 500, 100))
    epochs = quick(args, 25, 2)
    rows, solvers = [], {}
    for keep in (1.0, 0.25):
        net = fresh_net(args.seed, [500], dropout_keep_ratio=keep, weight_scale=1e-2)
        solver = train_solver(
            exp.run,
            f"dropout_keep{keep:g}",
            net,
            subset,
            update_rule="adam",
            optim_config={"learning_rate": 5e-4},
            batch_size=100,
            num_epochs=epochs,
            seed=args.seed,
        )
        solvers[f"keep {keep:g}"] = solver
        rows.append(
            {
                "keep_ratio": keep,
                "final_train_acc": solver.train_acc_history[-1],
                "final_val_acc": solver.val_acc_history[-1],
                "best_val_acc": solver.best_val_acc,
            }
        )
        print(
            f"dropout keep {keep:g}: train acc {rows[-1]['final_train_acc']:.3f}, "
            f"val acc {rows[-1]['final_val_acc']:.3f} (best {solver.best_val_acc:.3f})"
        )
    figure = plot_solvers(solvers, exp.run.path / "dropout.png", "Dropout (500 images, hidden 500)")
    exp.report.add_table(
        "Dropout", rows, note=f"{len(subset['X_train'])} training images, Adam 5e-4, batch 100, {epochs} epochs."
    )
    exp.report.add_image("Dropout: train and val accuracy", figure)
    return {"rows": rows}


def part_normalization(exp, data, args):
    """6-layer net with no / batch / layer normalisation: training curves, then sensitivity to the weight scale."""
    subset = solver_data(data, quick(args, 1000, 100))
    epochs = quick(args, 10, 1)
    norms = {"none": None, "batchnorm": "batchnorm", "layernorm": "layernorm"}
    speed_rows, solvers = [], {}
    for label, norm in norms.items():
        net = fresh_net(args.seed, [100] * 5, normalization=norm, weight_scale=2e-2)
        solver = train_solver(
            exp.run,
            f"norm_{label}",
            net,
            subset,
            update_rule="adam",
            optim_config={"learning_rate": 1e-3},
            batch_size=50,
            num_epochs=epochs,
            seed=args.seed,
        )
        solvers[label] = solver
        speed_rows.append(
            {
                "normalization": label,
                "loss_epoch1": solver.history()[0]["loss"],
                "final_loss": float(np.mean(solver.loss_history[-20:])),
                "train_acc_epoch1": solver.train_acc_history[0],
                "final_train_acc": solver.train_acc_history[-1],
                "best_val_acc": solver.best_val_acc,
            }
        )
        print(
            f"normalization {label:9s}: train acc after epoch 1 {solver.train_acc_history[0]:.3f}, final "
            f"{solver.train_acc_history[-1]:.3f}, best val {solver.best_val_acc:.3f}"
        )
    figure = plot_solvers(solvers, exp.run.path / "normalization.png", "Normalisation (6-layer net, weight scale 2e-2)")
    exp.report.add_table(
        "Normalisation: training speed",
        speed_rows,
        note=f"Five hidden layers of 100, {len(subset['X_train'])} images, Adam 1e-3, batch 50, "
        f"{epochs} epochs, weight scale 2e-2.",
    )
    exp.report.add_image("Normalisation: curves", figure)

    scales = quick(args, list(np.logspace(-3, 0, 7)), [1e-1])
    ws_epochs = quick(args, 5, 1)
    ws_rows, series = [], {label: ([], []) for label in norms}
    for label, norm in norms.items():
        for ws in scales:
            net = fresh_net(args.seed, [100] * 5, normalization=norm, weight_scale=float(ws))
            name = f"weight_scale_{label}_{ws:.3g}"
            try:
                solver = train_solver(
                    exp.run,
                    name,
                    net,
                    subset,
                    update_rule="adam",
                    optim_config={"learning_rate": 1e-3},
                    batch_size=50,
                    num_epochs=ws_epochs,
                    seed=args.seed,
                )
                best_val, train_acc = solver.best_val_acc, solver.train_acc_history[-1]
            except TrainingDiverged:  # a diverging scale is a data point (recorded as NaN)
                best_val, train_acc = float("nan"), float("nan")
            ws_rows.append(
                {
                    "normalization": label,
                    "weight_scale": float(ws),
                    "final_train_acc": train_acc,
                    "best_val_acc": best_val,
                }
            )
            series[label][0].append(float(ws))
            series[label][1].append(best_val)
    for label in norms:
        print(
            f"weight scale sweep {label:9s}: best val acc "
            + ", ".join(f"{ws:.2g}: {acc:.3f}" for ws, acc in zip(*series[label]))
        )
    figure = plot_xy(
        series,
        exp.run.path / "weight_scale.png",
        "weight scale",
        "best val accuracy",
        title=f"Sensitivity to the weight scale ({ws_epochs} epochs)",
        logx=True,
    )
    exp.report.add_table(
        "Normalisation: weight-scale sweep", ws_rows, note=f"Same net and data, {ws_epochs} epochs per weight scale."
    )
    exp.report.add_image("Normalisation: weight scale", figure)
    return {"speed": speed_rows, "weight_scale": ws_rows}


def best_inputs(raw, args):
    """The best net's inputs and the layer/metadata that turn raw pixels into them in the export.

    Returns `(data, export_prefix_layers, export_kwargs)`; `raw` holds pixels in [0, 255].
    """
    from tfnets.nn.preprocessing import fit_zca

    if args.inputs == "standardize":
        data, mean, std = standardise(raw)
        return data, [], {"pixel_scale": 1.0 / std, "mean_image": np.broadcast_to(mean / std, (32, 32, 3))}
    started = time.perf_counter()
    zca = fit_zca(raw.x_train, epsilon=args.zca_epsilon, input_scale=1.0 / 255)
    data = dataclasses.replace(
        raw, x_train=zca.apply(raw.x_train), x_valid=zca.apply(raw.x_valid), x_test=zca.apply(raw.x_test)
    )
    print(
        f"ZCA whitening (epsilon {args.zca_epsilon:g} on pixels in [0, 1]) fitted on {len(raw.x_train)} images "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return data, [zca.layer()], {"pixel_scale": 1.0}


def part_best(exp, raw, args):
    """A small sweep (few epochs per trial), then the best setting trained for `--epochs` and exported.

    `raw`: the splits with pixels in [0, 255]; `--inputs` decides the preprocessing (`best_inputs`)."""
    data, export_layers, export_scaling = best_inputs(raw, args)
    steps = int(np.ceil(len(data.x_train) / args.batch_size))
    space = parse_sweep(args.sweep, SWEEPABLE) if args.sweep else dict(DEFAULT_SWEEP)
    base = {**DEFAULT_BEST, "hidden": args.hidden}
    trial_epochs = quick(args, args.trial_epochs, 1)
    sweep = Sweep(
        exp.run.child("best_sweep", {**exp.config, "part": "best_sweep"}),
        space,
        epochs=trial_epochs,
        name="best",
        **sweep_options(args),
    )

    def train_trial(values, run, epochs=None, callbacks=()):
        # The learning-rate schedule spans --trial-epochs even when Hyperband asks for fewer (and later more).
        settings = {**base, **values}
        model = build_model(
            **settings, epochs=trial_epochs, steps_per_epoch=steps, augmentation=args.augment, seed=args.seed
        )
        return exp.train(
            model, data, run=run, epochs=epochs or trial_epochs, setting=_setting(settings), callbacks=callbacks
        )

    started = time.perf_counter()
    sweep.search(train_trial)
    rows = sweep.write_outputs(exp.report, f"Best net: sweep ({trial_epochs} epochs per trial)")
    best_row = sweep.best()
    require(best_row is not None, "every trial of the sweep diverged; lower the learning rates (--sweep)")
    chosen = {**base, **{k: best_row[k] for k in space}}
    print(f"sweep: best setting {_setting(chosen)} (valid loss {best_row['best_valid_loss']:.4f})")

    model = build_model(**chosen, epochs=args.epochs, steps_per_epoch=steps, augmentation=args.augment, seed=args.seed)
    final_run = exp.run.child("best_final", {**exp.config, "part": "best_final", "chosen": chosen})
    result = exp.train(model, data, run=final_run, setting=_setting(chosen), title=f"best FC net: {_setting(chosen)}")
    total = time.perf_counter() - started
    final = result.final
    print(
        f"best net ({_setting(chosen)}, {args.epochs} epochs): train acc {final['train_accuracy']:.4f}, "
        f"val acc {final['valid_accuracy']:.4f}, test acc {final['test_accuracy']:.4f}; training "
        f"{result.metrics['timing']['wall_time_s']:.0f} s (sweep + final {total:.0f} s in this process)"
    )
    exp.report.add_table(
        "Best net: final training",
        [
            {
                "setting": _setting(chosen),
                "epochs": args.epochs,
                "inputs": args.inputs,
                "augmentation": args.augment,
                "train_accuracy": final["train_accuracy"],
                "valid_accuracy": final["valid_accuracy"],
                "test_accuracy": final["test_accuracy"],
                "train_time_s": result.metrics["timing"]["wall_time_s"],
            }
        ],
        note="Batch norm + dropout after every hidden layer, He initialisation, Adam with cosine learning-rate "
        f"decay, batch {args.batch_size}; accuracies of the final weights.",
    )
    exp.report.add_image("Best net: learning curves", final_run.path / "curves.png")
    export_wrapper = keras.Sequential(
        [keras.Input((32, 32, 3), name="pixels"), *export_layers, model], name="cifar_fc_net"
    )
    exp.export(
        export_wrapper,
        data=data,  # calibrated on the outputs of the net itself, which takes the prepared inputs
        calibration_model=model,
        class_names=data.class_names,
        input_shape=[32, 32, 3],
        image_shape=[32, 32, 3],
        output="logits",
        image_style="photo",
        **export_scaling,
    )
    return {
        "sweep": rows,
        "chosen": chosen,
        "final": final,
        "epochs": args.epochs,
        "train_time_s": result.metrics["timing"]["wall_time_s"],
        "sweep_and_final_s": round(total, 1),
    }


def _setting(values):
    return ", ".join(f"{k}={v}" for k, v in values.items())


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------
parts_list = choice_list(PARTS, name="--part", allow_all=True)


def build_parser():
    parser = base_parser(APP, __doc__.split("\n\n")[0], epochs=40, batch_size=256)
    parser.add_argument(
        "--part",
        type=parts_list,
        default=list(PARTS),
        help=f"comma-separated parts to run (default all): {', '.join(PARTS)}",
    )
    parser.add_argument(
        "--hidden",
        default=DEFAULT_BEST["hidden"],
        help="hidden sizes of the 'best' net, e.g. 1024-512-256 (default %(default)s)",
    )
    parser.add_argument(
        "--trial-epochs", type=int, default=3, help="epochs per sweep trial of the 'best' part (default %(default)s)"
    )
    parser.add_argument(
        "--augment",
        choices=("none", "flip", "flip_crop"),
        default="flip_crop",
        help="training-time augmentation of the 'best' net (default %(default)s)",
    )
    parser.add_argument(
        "--inputs",
        choices=("zca", "standardize"),
        default="zca",
        help="the 'best' net's inputs: ZCA-whitened pixels or standardised ones (default "
        "%(default)s; the other parts always standardise)",
    )
    parser.add_argument(
        "--zca-epsilon",
        type=float,
        default=0.1,
        help="ZCA regulariser, in units of the pixel variance on [0, 1] (default %(default)s)",
    )
    add_sweep_arguments(parser, SWEEPABLE)
    return parser


def get_config(args):
    """What defines a run of this app (its run id hashes exactly these fields)."""
    return {
        **core_config(args),
        "part": args.part,
        "hidden": args.hidden,
        "trial_epochs": args.trial_epochs,
        "augment": args.augment,
        "inputs": args.inputs,
        "zca_epsilon": args.zca_epsilon,
        **sweep_config(args),
    }


def main(argv=None):
    args = build_parser().parse_args(argv)
    require(args.trial_epochs >= 1, f"--trial-epochs must be >= 1, got {args.trial_epochs}")
    require(args.zca_epsilon > 0, f"--zca-epsilon must be > 0, got {args.zca_epsilon}")
    hidden_dims(args.hidden)
    parse_sweep(args.sweep, SWEEPABLE, args)  # reject bad --sweep values and search flags before any work
    args.augment = None if args.augment == "none" else args.augment
    exp = Experiment(args, "CIFAR-10 fully-connected nets (CS231n assignment 2)", get_config)
    data = exp.use_data(load_cifar10(args.data_dir))
    require(
        args.batch_size <= len(data.x_train),
        f"--batch-size {args.batch_size} is larger than the training set ({len(data.x_train)} examples)",
    )
    raw = data
    data, _, _ = standardise(raw)
    results = {}
    for part in args.part:
        print(f"== part {part}")
        started = time.perf_counter()
        if part == "best":
            results[part] = part_best(exp, raw, args)
        else:
            results[part] = PART_FUNCTIONS[part](exp, data, args)
        results[part]["wall_time_s"] = round(time.perf_counter() - started, 1)
        atomic.write_json(exp.run.path / "results.json", results)
    print(f"report: {exp.report.path}")
    return results


PART_FUNCTIONS = {
    "gradcheck": part_gradcheck,
    "overfit": part_overfit,
    "update_rules": part_update_rules,
    "dropout": part_dropout,
    "normalization": part_normalization,
}

if __name__ == "__main__":
    exit_with(main)

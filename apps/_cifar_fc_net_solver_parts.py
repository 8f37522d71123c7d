"""The parts of `apps.cifar_fc_net` that train with the CS231n `Solver` (`tfnets.nn.solver`), not Keras `fit`:
the gradient check, overfitting 50 images, the update rules, dropout and normalisation.

Not an app (leading underscore). A part that trains is one or more trainings of the app's plan (`PART_STEPS`):
each `train_*(exp, data, config)` trains its solvers, checkpointed under `solver/` (a re-run resumes or skips them),
and returns them; after every training, `REPORTS[part](exp, data, config, *trained)` writes the part's tables and
figures into the app's run folder and returns the numbers the app records for it in results.json. The gradient check
trains nothing: it is all report.
"""

import time

import numpy as np

from tfnets.errors import TrainingDiverged
from tfnets.experiment import sweep_cluster
from tfnets.experiment.determinism import reseed
from tfnets.experiment.plots import label_axes, plot_xy, pyplot, save_figure
from tfnets.experiment.report import write_csv

# Where, in the run folder, the solvers keep their checkpoints, and the overfitting grid's table.
SOLVER_FOLDER = "solver"
OVERFIT_TABLE = "overfit_results.csv"
# The app plan's trainings of these parts (each one loop of solvers).
OVERFIT = "overfit"
UPDATE_RULES = "update_rules"
DROPOUT = "dropout"
NORMALIZATION = "normalization"
WEIGHT_SCALE = "weight_scale"  # the normalisation part's second loop: its sensitivity to the weight scale


def solver_data(data, n_train=None):
    n = len(data.x_train) if n_train is None else n_train
    return {"X_train": data.x_train[:n], "y_train": data.y_train[:n], "X_val": data.x_valid, "y_val": data.y_valid}


def quick(config, full, small):
    """`small` under `--quick`, else `full`: the smoke-test size of a part."""
    return small if config.quick else full


def fresh_net(seed, *args, **kwargs):
    """A net whose initial weights depend only on `seed` (so each part reproduces on its own)."""
    from tfnets.nn.models import FullyConnectedNet

    reseed(seed)
    return FullyConnectedNet(*args, **kwargs)


def train_solver(run, name, net, data, *, verbose=False, **solver_kwargs):
    """Train with the Solver, checkpointing into `run/solver/<name>.npz` (a re-run resumes or skips it)."""
    from tfnets.nn.solver import Solver

    # Not `Experiment.train`, so its guard is here: a cluster's process trains only the plan step it was handed.
    sweep_cluster.refuse_training_outside_plan(run)
    started = time.perf_counter()
    solver = Solver(
        net,
        data,
        checkpoint_path=run.path / SOLVER_FOLDER / f"{name}.npz",
        verbose=verbose,
        setting=name,
        **solver_kwargs,
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


def part_gradcheck(exp, data, config):
    """Relative errors of the manual gradients vs central differences on a small random float64 problem."""
    from tfnets.nn.models import FullyConnectedNet, gradient_check

    rng = np.random.default_rng(config.seed)
    # N > 2: with two examples batch norm's output barely depends on the weights; small N keeps few ReLU kinks.
    N, D, C = 5, quick(config, 15, 5), quick(config, 10, 4)
    hidden = quick(config, [20, 30], [4, 3])
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
                seed=config.seed + 1,
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
    big = fresh_net(config.seed, [100, 100], weight_scale=1e-3)
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


def overfit_grid(config):
    """The overfitting grid: (learning rates, weight scales, epochs)."""
    learning_rates = quick(config, [1e-3, 3e-3, 1e-2, 3e-2, 1e-1], [1e-2])
    weight_scales = quick(config, [1e-2, 3e-2, 1e-1], [1e-1])
    return learning_rates, weight_scales, quick(config, 20, 2)


def train_overfit(exp, data, config):
    """Overfit 50 images with SGD: `{(depth, weight scale, learning rate): solver, or None where it diverged}`."""
    small = solver_data(data, 50)
    learning_rates, weight_scales, epochs = overfit_grid(config)
    solvers = {}
    for depth, dims in (("3-layer", [100, 100]), ("5-layer", [100] * 4)):
        for ws in weight_scales:
            for lr in learning_rates:
                name = f"overfit_{depth}_ws{ws:g}_lr{lr:g}"
                net = fresh_net(config.seed, dims, weight_scale=ws)
                try:
                    solvers[depth, ws, lr] = train_solver(
                        exp.run,
                        name,
                        net,
                        small,
                        update_rule="sgd",
                        optim_config={"learning_rate": lr},
                        batch_size=25,
                        num_epochs=epochs,
                        num_train_samples=None,
                        seed=config.seed,
                    )
                except TrainingDiverged:  # a diverging setting is a result of this grid
                    solvers[depth, ws, lr] = None
    return solvers


def report_overfit(exp, data, config, solvers):
    """For 3- and 5-layer nets, which (learning rate, weight scale) reach 100 % train accuracy on 50 images."""
    learning_rates, weight_scales, epochs = overfit_grid(config)
    rows, best_curves = [], {}
    for (depth, ws, lr), solver in solvers.items():
        if solver is None:
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
    write_csv(exp.run.path / OVERFIT_TABLE, rows)
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


def train_update_rules(exp, data, config):
    """6-layer net (five hidden layers of 100) on 4,000 images for 5 epochs with each update rule: `{rule: solver}`."""
    subset = solver_data(data, quick(config, 4000, 200))
    epochs = quick(config, 5, 1)
    solvers = {}
    for rule, optim in UPDATE_RULE_CONFIGS.items():
        net = fresh_net(config.seed, [100] * 5, weight_scale=UPDATE_RULES_WEIGHT_SCALE)
        solvers[rule] = train_solver(
            exp.run,
            f"update_rule_{rule}",
            net,
            subset,
            update_rule=rule,
            optim_config=optim,
            batch_size=100,
            num_epochs=epochs,
            seed=config.seed,
        )
    return solvers


def report_update_rules(exp, data, config, solvers):
    """The update rules' final loss and accuracies, and their curves."""
    rows = []
    for rule, solver in solvers.items():
        rows.append(
            {
                "update_rule": rule,
                **UPDATE_RULE_CONFIGS[rule],
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


DROPOUT_KEEP_RATIOS = (1.0, 0.25)


def dropout_sizes(config):
    """The dropout part's (training images, epochs)."""
    return quick(config, 500, 100), quick(config, 25, 2)


def train_dropout(exp, data, config):
    """500 training images, one hidden layer of 500, 25 epochs, Adam 5e-4: `{keep ratio: solver}`."""
    n_train, epochs = dropout_sizes(config)
    subset = solver_data(data, n_train)
    solvers = {}
    for keep in DROPOUT_KEEP_RATIOS:
        net = fresh_net(config.seed, [500], dropout_keep_ratio=keep, weight_scale=1e-2)
        solvers[keep] = train_solver(
            exp.run,
            f"dropout_keep{keep:g}",
            net,
            subset,
            update_rule="adam",
            optim_config={"learning_rate": 5e-4},
            batch_size=100,
            num_epochs=epochs,
            seed=config.seed,
        )
    return solvers


def report_dropout(exp, data, config, solvers):
    """Keep ratio 1 vs 0.25: final and best accuracies, and their curves."""
    n_train, epochs = dropout_sizes(config)
    n_train = len(data.x_train[:n_train])
    rows = []
    for keep, solver in solvers.items():
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
    curves = {f"keep {keep:g}": solver for keep, solver in solvers.items()}
    figure = plot_solvers(curves, exp.run.path / "dropout.png", "Dropout (500 images, hidden 500)")
    exp.report.add_table("Dropout", rows, note=f"{n_train} training images, Adam 5e-4, batch 100, {epochs} epochs.")
    exp.report.add_image("Dropout: train and val accuracy", figure)
    return {"rows": rows}


NORMALIZATIONS = {"none": None, "batchnorm": "batchnorm", "layernorm": "layernorm"}


def normalization_sizes(config):
    """The normalisation part's (training images, epochs of the curves, weight scales, epochs per weight scale)."""
    scales = quick(config, list(np.logspace(-3, 0, 7)), [1e-1])
    return quick(config, 1000, 100), quick(config, 10, 1), scales, quick(config, 5, 1)


def train_normalization(exp, data, config):
    """6-layer net with no / batch / layer normalisation, weight scale 2e-2: `{normalisation: solver}`."""
    n_train, epochs, _, _ = normalization_sizes(config)
    subset = solver_data(data, n_train)
    solvers = {}
    for label, norm in NORMALIZATIONS.items():
        net = fresh_net(config.seed, [100] * 5, normalization=norm, weight_scale=2e-2)
        solvers[label] = train_solver(
            exp.run,
            f"norm_{label}",
            net,
            subset,
            update_rule="adam",
            optim_config={"learning_rate": 1e-3},
            batch_size=50,
            num_epochs=epochs,
            seed=config.seed,
        )
    return solvers


def train_weight_scale(exp, data, config):
    """The same nets at every weight scale: `{(normalisation, weight scale): solver, or None where it diverged}`."""
    n_train, _, scales, ws_epochs = normalization_sizes(config)
    subset = solver_data(data, n_train)
    solvers = {}
    for label, norm in NORMALIZATIONS.items():
        for ws in scales:
            net = fresh_net(config.seed, [100] * 5, normalization=norm, weight_scale=float(ws))
            try:
                solvers[label, float(ws)] = train_solver(
                    exp.run,
                    f"weight_scale_{label}_{ws:.3g}",
                    net,
                    subset,
                    update_rule="adam",
                    optim_config={"learning_rate": 1e-3},
                    batch_size=50,
                    num_epochs=ws_epochs,
                    seed=config.seed,
                )
            except TrainingDiverged:  # a diverging scale is a data point (recorded as NaN)
                solvers[label, float(ws)] = None
    return solvers


def report_normalization(exp, data, config, solvers, ws_solvers):
    """Training speed with each normalisation, then its sensitivity to the weight scale."""
    n_train, epochs, _, ws_epochs = normalization_sizes(config)
    speed_rows = []
    for label, solver in solvers.items():
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
        note=f"Five hidden layers of 100, {len(data.x_train[:n_train])} images, Adam 1e-3, batch 50, "
        f"{epochs} epochs, weight scale 2e-2.",
    )
    exp.report.add_image("Normalisation: curves", figure)

    ws_rows, series = [], {label: ([], []) for label in NORMALIZATIONS}
    for (label, ws), solver in ws_solvers.items():
        best_val, train_acc = (
            (float("nan"), float("nan")) if solver is None else (solver.best_val_acc, solver.train_acc_history[-1])
        )
        ws_rows.append(
            {"normalization": label, "weight_scale": ws, "final_train_acc": train_acc, "best_val_acc": best_val}
        )
        series[label][0].append(ws)
        series[label][1].append(best_val)
    for label in NORMALIZATIONS:
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


# Each part's trainings in the app's plan, in the order it trains them (the gradient check trains nothing) ...
PART_STEPS = {
    "gradcheck": (),
    "overfit": (OVERFIT,),
    "update_rules": (UPDATE_RULES,),
    "dropout": (DROPOUT,),
    "normalization": (NORMALIZATION, WEIGHT_SCALE),
}
# ... what each of them trains ...
TRAININGS = {
    OVERFIT: train_overfit,
    UPDATE_RULES: train_update_rules,
    DROPOUT: train_dropout,
    NORMALIZATION: train_normalization,
    WEIGHT_SCALE: train_weight_scale,
}
# ... and each part's report: `REPORTS[part](exp, data, config, *[what each of its trainings returned])`.
REPORTS = {
    "gradcheck": part_gradcheck,
    "overfit": report_overfit,
    "update_rules": report_update_rules,
    "dropout": report_dropout,
    "normalization": report_normalization,
}

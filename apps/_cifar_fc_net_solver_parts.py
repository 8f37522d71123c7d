"""The parts of `apps.cifar_fc_net` that train with the CS231n `Solver` (`tfnets.nn.solver`), not Keras `fit`:
the gradient check, overfitting 50 images, the update rules, dropout and normalisation.

Not an app (leading underscore): each `part_*(exp, data, config)` writes its tables and figures into the app's run
folder, its solvers' checkpoints under `solver/` (a re-run resumes or skips them), and returns the numbers the app
records for it in results.json.
"""

import time

import numpy as np

from tfnets.errors import TrainingDiverged
from tfnets.experiment.determinism import reseed
from tfnets.experiment.plots import label_axes, plot_xy, pyplot, save_figure
from tfnets.experiment.report import write_csv

# Where, in the run folder, the solvers keep their checkpoints, and the overfitting grid's table.
SOLVER_FOLDER = "solver"
OVERFIT_TABLE = "overfit_results.csv"


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


def part_overfit(exp, data, config):
    """Overfit 50 images: for 3- and 5-layer nets, which (learning rate, weight scale) reach 100 % train accuracy."""
    small = solver_data(data, 50)
    learning_rates = quick(config, [1e-3, 3e-3, 1e-2, 3e-2, 1e-1], [1e-2])
    weight_scales = quick(config, [1e-2, 3e-2, 1e-1], [1e-1])
    epochs = quick(config, 20, 2)
    rows, best_curves = [], {}
    for depth, dims in (("3-layer", [100, 100]), ("5-layer", [100] * 4)):
        for ws in weight_scales:
            for lr in learning_rates:
                name = f"overfit_{depth}_ws{ws:g}_lr{lr:g}"
                net = fresh_net(config.seed, dims, weight_scale=ws)
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
                        seed=config.seed,
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


def part_update_rules(exp, data, config):
    """6-layer net (five hidden layers of 100) on 4,000 images for 5 epochs with each update rule."""
    subset = solver_data(data, quick(config, 4000, 200))
    epochs = quick(config, 5, 1)
    rows, solvers = [], {}
    for rule, optim in UPDATE_RULE_CONFIGS.items():
        net = fresh_net(config.seed, [100] * 5, weight_scale=UPDATE_RULES_WEIGHT_SCALE)
        solver = train_solver(
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
        solvers[rule] = solver
        rows.append(
            {
                "update_rule": rule,
                **optim,
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


def part_dropout(exp, data, config):
    """500 training images, one hidden layer of 500: keep ratio 1 vs 0.25, 25 epochs, Adam 5e-4."""
    subset = solver_data(data, quick(config, 500, 100))
    epochs = quick(config, 25, 2)
    rows, solvers = [], {}
    for keep in (1.0, 0.25):
        net = fresh_net(config.seed, [500], dropout_keep_ratio=keep, weight_scale=1e-2)
        solver = train_solver(
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


def part_normalization(exp, data, config):
    """6-layer net with no / batch / layer normalisation: training curves, then sensitivity to the weight scale."""
    subset = solver_data(data, quick(config, 1000, 100))
    epochs = quick(config, 10, 1)
    norms = {"none": None, "batchnorm": "batchnorm", "layernorm": "layernorm"}
    speed_rows, solvers = [], {}
    for label, norm in norms.items():
        net = fresh_net(config.seed, [100] * 5, normalization=norm, weight_scale=2e-2)
        solver = train_solver(
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

    scales = quick(config, list(np.logspace(-3, 0, 7)), [1e-1])
    ws_epochs = quick(config, 5, 1)
    ws_rows, series = [], {label: ([], []) for label in norms}
    for label, norm in norms.items():
        for ws in scales:
            net = fresh_net(config.seed, [100] * 5, normalization=norm, weight_scale=float(ws))
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
                    seed=config.seed,
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


PART_FUNCTIONS = {
    "gradcheck": part_gradcheck,
    "overfit": part_overfit,
    "update_rules": part_update_rules,
    "dropout": part_dropout,
    "normalization": part_normalization,
}

"""notMNIST letters A-J with a one-hidden-layer MLP: the Toronto ECE421 "Neural Networks" assignment, part 1.

The assignment wrote this network and its backward pass by hand in NumPy. Here it is built from the project's
hand-written-backprop layers (`tfnets.nn.layers.ManualDense`, `tfnets.nn.losses.SoftmaxCrossEntropy`) and trained
with Keras, exactly as the assignment did:

    x (N, 784) -> ManualDense(H, relu) -> ManualDense(10) -> softmax cross-entropy (mean over the batch)
    full-batch gradient descent with momentum:  v <- gamma*v + alpha*grad,  w <- w - v   (gamma = 0.9)
    Xavier init (zero-mean Gaussian, variance 2 / (fan_in + fan_out)), zero biases, 200 epochs, H = 1000

    python -m apps.notmnist_mlp                                    # H = 1000; exports saved_models/notmnist_mlp
    python -m apps.notmnist_mlp --hidden-units 100,500,1000,2000   # the hidden-unit study (one trial per size)
    python -m apps.notmnist_mlp --gradients autodiff               # same network, TensorFlow autodiff gradients
    python -m apps.notmnist_mlp --sweep learning_rate=0.01,0.05,0.1,0.3 --epochs 50

Every run reports the early-stopping point: the epoch with the lowest validation loss and the accuracies there,
next to those of the last epoch. `tfnets.nn.reference.NumpyMLP` is the same network and update in plain NumPy; the
tests check both implementations (and autodiff) against each other step for step.
"""

import dataclasses
import typing

from tfnets.data import load_notmnist
from tfnets.experiment import Experiment, headline
from tfnets.experiment.cli import exit_with, require
from tfnets.experiment.config import SweepConfig, batch_size_option, int_list, option, positive_float
from tfnets.experiment.determinism import reseed
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plan import Plan
from tfnets.experiment.plots import plot_xy
from tfnets.experiment.sweep import Sweep
from tfnets.experiment.trial_results import finished_trials
from tfnets.nn.initializers import xavier_normal

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

APP = "notmnist_mlp"
# Measured in docs/notmnist_mlp.md (0.01, 0.05, 0.1, 0.3): 0.1 is the reports' step size, trains stably and has its
# lowest validation loss at epoch ~125 of 200; 0.3 gets there by epoch ~64 and then over-fits for the rest of the
# 200 epochs (same test accuracy within noise), 0.01 and 0.05 are too slow for 200 epochs.
LEARNING_RATE = 0.1
MOMENTUM = 0.9
GRADIENTS = ("manual", "autodiff")
SWEEPABLE = {"learning_rate": float, "hidden_units": int}
# The plan's names for its one training: a network of the flags' setting, or the study's search.
NETWORK, STUDY = "network", "study"


def build_model(
    hidden_units=1000, gradients="manual", seed=0, learning_rate=LEARNING_RATE, momentum=MOMENTUM, jit_compile=False
):
    """784 -> hidden_units (ReLU) -> 10 logits, compiled with the assignment's momentum rule.

    Inputs (N, 784) in [0, 1]; outputs logits (N, 10). gradients="manual" uses the hand-written backward passes,
    "autodiff" plain `keras.layers.Dense` and Keras' cross-entropy (TensorFlow autodiff). With the same `seed`
    both start from identical weights (layer i is initialised with seed + i).
    """
    from tfnets.nn.layers import ManualDense
    from tfnets.nn.losses import SoftmaxCrossEntropy
    from tfnets.nn.optim import SGDMomentum

    require(gradients in GRADIENTS, f"unknown --gradients {gradients!r}; choose from {', '.join(GRADIENTS)}")
    require(hidden_units >= 1, f"hidden_units must be >= 1, got {hidden_units}")
    if gradients == "manual":
        dense, loss = ManualDense, SoftmaxCrossEntropy(from_logits=True)
    else:
        dense, loss = keras.layers.Dense, keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model = keras.Sequential(
        [
            keras.Input((784,), name="pixels"),
            dense(
                hidden_units,
                activation="relu",
                kernel_initializer=xavier_normal(seed),
                bias_initializer="zeros",
                name="hidden",
            ),
            dense(10, kernel_initializer=xavier_normal(seed + 1), bias_initializer="zeros", name="logits"),
        ],
        name=f"notmnist_mlp_{gradients}",
    )
    model.compile(
        optimizer=SGDMomentum.from_notmnist_form(learning_rate, gamma=momentum),
        loss=loss,
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


# ---------------------------------------------------------------------------------------------------------------
# Configuration: the command line, `run(...)`'s keywords and config.json are all derived from this one declaration
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Config(SweepConfig):
    APP = APP
    DESCRIPTION = "notMNIST MLP (ECE421 part 1): hand-written backprop, full-batch GD + momentum."
    EPOCHS = 200
    SWEEPABLE = SWEEPABLE

    # Full-batch GD: the default batch is the whole training set (its size is known once the data is loaded).
    batch_size: typing.Optional[int] = batch_size_option(
        None, "mini-batch size (default: the whole training set, i.e. full-batch gradient descent)"
    )
    hidden_units: typing.Tuple[int, ...] = option(
        (1000,),
        "hidden layer size; several (100,500,1000,2000) run the hidden-unit study",
        group="model",
        parse=int_list,
    )
    learning_rate: float = option(
        LEARNING_RATE, "alpha in v <- gamma*v + alpha*grad (default {default})", group="model", parse=positive_float
    )
    momentum: float = option(MOMENTUM, "gamma (default {default})", group="model")
    gradients: str = option(
        "manual",
        "manual: hand-written backprop layers (default); autodiff: TensorFlow autodiff",
        group="model",
        choices=GRADIENTS,
    )

    def __post_init__(self):
        super().__post_init__()
        require(self.hidden_units, "--hidden-units needs at least one size, e.g. --hidden-units 1000")
        require(0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}")
        if len(self.hidden_units) > 1:
            require("hidden_units" not in self.space, "give the sizes either in --hidden-units or in --sweep, not both")

    @property
    def study_space(self):
        """The space of the study this command runs (empty for a single run): `--sweep`, with several
        `--hidden-units` as the hidden-unit study's list."""
        if len(self.hidden_units) > 1:
            return {"hidden_units": list(self.hidden_units), **self.space}
        return self.space


def load_data(exp, config):
    """notMNIST flattened: x (N, 784) float32 in [0, 1], y (N,) in 0..9."""
    data = exp.use_data(load_notmnist(config.data_dir))
    flat = {f"x_{s}": getattr(data, f"x_{s}").reshape(-1, 784) for s in ("train", "valid", "test")}
    return dataclasses.replace(data, **flat)


def early_stopping_rows(history):
    """The epoch with the lowest validation loss vs the last epoch: losses and accuracies of both rows."""
    if not history:
        return []
    best = min(history, key=lambda r: r["val_loss"])
    last = history[-1]
    rows = []
    for label, row in (
        (f"lowest valid loss (epoch {int(best['epoch'])})", best),
        (f"last epoch ({int(last['epoch'])})", last),
    ):
        rows.append(
            {
                "point": label,
                "valid_loss": row.get("val_loss"),
                "train_accuracy": row.get("accuracy"),
                "valid_accuracy": row.get("val_accuracy"),
                "test_accuracy": row.get("test_accuracy"),
                "test_loss": row.get("test_loss"),
            }
        )
    return rows


def train(exp, data, config, hidden_units, learning_rate, run=None, epochs=None, callbacks=()):
    """Build and train one setting into `run` (default the app's run folder); returns its `TrainResult` (with the
    model). `epochs`: fewer than --epochs for a search's trial (Hyperband)."""
    # Re-seed per build: a trial's initial weights must not depend on which trials ran before it (resume).
    reseed(config.seed)
    model = build_model(
        hidden_units, config.gradients, config.seed, learning_rate, config.momentum, jit_compile=exp.jit
    )
    batch = config.batch_size or len(data.y_train)
    setting = f"hidden_units={hidden_units}, learning_rate={learning_rate:g}, batch={batch}"
    result = exp.train(
        model,
        data,
        run=run,
        epochs=epochs,
        batch_size=batch,
        setting=setting,
        callbacks=callbacks,
        title=f"notMNIST MLP ({config.gradients}), {setting}",
    )
    return dataclasses.replace(result, model=model)


def declare(exp, data, config, trained):
    """The training this command does (the plan a cluster shares): one network, or the study's search."""
    plan = Plan(exp.run.path)
    if config.study_space:
        sweep = Sweep(
            exp.run,
            config.study_space,
            epochs=config.train_epochs,
            name="_".join(config.study_space),
            **config.sweep_options(),
        )
        plan.sweep(STUDY, sweep, study_trainer(exp, data, config, trained))
    else:
        plan.training(NETWORK, lambda: train(exp, data, config, config.hidden_units[0], config.learning_rate))
    return plan


def single_run(exp, data, config, result):
    """One network of `--hidden-units` units, trained: reported with its early-stopping point, exported."""
    hidden_units = config.hidden_units[0]
    final = result.final
    exp.report.add_table(
        "Final metrics",
        [{"hidden_units": hidden_units, **final, "wall_time_s": result.metrics["timing"]["wall_time_s"]}],
    )
    exp.report.add_image("Learning curves", result.run.path / "curves.png")
    exp.report.add_table(
        "Early stopping",
        early_stopping_rows(result.history),
        note="the epoch an early-stopping rule on validation loss would keep, vs training on",
    )
    result.export_path = exp.export(
        result.model,
        data=data,
        class_names=data.class_names,
        input_shape=[784],
        image_shape=[28, 28, 1],
        output="logits",
        image_style="notmnist",
    )
    print(
        f"hidden_units={hidden_units}: test accuracy {final['test_accuracy']:.4f}, "
        f"test loss {final['test_loss']:.4f}, {result.metrics['timing']['wall_time_s']:.1f}s"
    )
    return result


def study_row(space, result, history):
    """A study's table row: the trial's values, final accuracies and test loss, time, and the early-stopping point
    (the accuracies at the epoch of lowest validation loss)."""
    stop = early_stopping_rows(history)
    return {
        **{k: result[k] for k in space},
        "test_accuracy": result.get("final_test_accuracy"),
        "test_loss": result.get("final_test_loss"),
        "train_accuracy": result.get("final_train_accuracy"),
        "valid_accuracy": result.get("final_valid_accuracy"),
        "wall_time_s": result.get("wall_time_s"),
        "best_epoch": result.get("best_epoch"),
        "epochs": result.get("epochs"),
        "stopped": result.get("stopped"),
        "test_accuracy_at_best": stop[0]["test_accuracy"] if stop else None,
        "valid_accuracy_at_best": stop[0]["valid_accuracy"] if stop else None,
        "status": result.get("status"),
    }


def study_trainer(exp, data, config, trained):
    """A study's train function: one trial's values over the flags' setting; `trained` collects each result (with its
    model) by trial folder name."""

    def train_trial(values, run, epochs=None, callbacks=()):
        result = train(
            exp,
            data,
            config,
            values.get("hidden_units", config.hidden_units[0]),
            values.get("learning_rate", config.learning_rate),
            run=run,
            epochs=epochs,
            callbacks=callbacks,
        )
        trained[run.path.name] = result
        return result

    return train_trial


def study(exp, config, sweep, trained):
    """A finished study: a table of final test accuracy/loss, time and early stopping per value. Returns the
    `TrainResult` of the trial the search ranks first (its objective) with every finished trial's under `.parts`, by
    trial folder name (a trial trained by this process holds its model, in `trained`)."""
    space, name = sweep.space, sweep.name
    rows = sweep.write_outputs(
        exp.report,
        f"{name} study",
        metrics=("val_loss", "val_accuracy", "test_accuracy"),
        row=lambda result, history: study_row(space, result, history),
        ranked=sweep.tuner != "grid",
        note=f"{config.train_epochs} epochs, seed {config.seed}, gradients={config.gradients}; final = last epoch; "
        "best_epoch = lowest validation loss (early stopping)"
        + ("" if sweep.tuner == "grid" else f"; {sweep.tuner} search, best {sweep.objective} first"),
    )
    if len(space) == 1 and rows:
        key = name
        by_value = sorted(rows, key=lambda r: r[key])
        exp.report.add_image(
            f"{name} study: final test accuracy",
            plot_xy(
                {
                    "test": ([r[key] for r in by_value], [r["test_accuracy"] for r in by_value]),
                    "test at best epoch": ([r[key] for r in by_value], [r["test_accuracy_at_best"] for r in by_value]),
                },
                exp.run.path / f"{name}_test_accuracy.png",
                xlabel=name,
                ylabel="test accuracy",
                logx=True,
                title="notMNIST MLP",
            ),
        )
    for row in rows:
        print(
            ", ".join(f"{k}={row[k]}" for k in space) + f": test accuracy {row['test_accuracy']:.4f}, "
            f"test loss {row['test_loss']:.4f}, {row['wall_time_s']}s, best epoch {row['best_epoch']}"
        )
    parts = finished_trials(sweep, trained)
    require(parts, f"no trial of the {name} study finished training; see {exp.run.path / 'trials'}")
    best = sweep.best()
    main = parts.get(best["trial"]) if best is not None else None
    return dataclasses.replace(main or next(iter(parts.values())), parts=parts)


# ---------------------------------------------------------------------------------------------------------------
# The app: `run(...)` from Python, `python -m apps.notmnist_mlp` from a shell
# ---------------------------------------------------------------------------------------------------------------


def run(config=None, **overrides):
    """Train one network (exported), or the study that several `--hidden-units` or a `--sweep` ask for. Returns the
    network's `TrainResult` (`.final`, `.history`, `.model`, `.run_path`, `.export_path`); for a study, the trial
    the search ranks first, with every trial's under `.parts`. `run(quick=True, hidden_units=(8, 16))`: keywords
    as the flags."""
    config = Config.make(config, **overrides)
    with Experiment(config, "notMNIST MLP (ECE421 assignment, part 1)") as exp:
        data = load_data(exp, config)
        if config.batch_size is not None:
            require(
                config.batch_size <= len(data.y_train),
                f"--batch-size {config.batch_size} is larger than the training set ({len(data.y_train)} examples)",
            )
        trained = {}
        plan = declare(exp, data, config, trained).run()  # re-running the same command resumes every training
        if config.study_space:
            return study(exp, config, plan.result(STUDY), trained)
        return single_run(exp, data, config, plan.result(NETWORK))


def headlines(run_path):
    """The numbers the results page quotes from a finished run folder of this app (see `tfnets.experiment.headline`):
    the exported network's final test accuracy."""
    return headline.collect(test_accuracy=headline.metric(run_path))


def main(argv=None):
    return run(Config.from_argv(argv))


if __name__ == "__main__":
    exit_with(main)

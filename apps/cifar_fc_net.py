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
import typing

import numpy as np

from apps._cifar_fc_net_solver_parts import PART_STEPS, REPORTS, TRAININGS
from tfnets import atomic
from tfnets.data import load_cifar10
from tfnets.errors import ConfigError
from tfnets.experiment import Experiment, TrainResult, headline
from tfnets.experiment.cli import choice_list, exit_with, require
from tfnets.experiment.config import SweepConfig, batch_size_option, option
from tfnets.experiment.determinism import reseed
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plan import Plan
from tfnets.experiment.sweep import Sweep

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

APP = "cifar_fc_net"
PARTS = ("gradcheck", "overfit", "update_rules", "best", "dropout", "normalization")
SWEEPABLE = {"learning_rate": float, "keep": float, "reg": float, "hidden": str, "weight_scale": float}
# The "best" part's default search: learning rate x dropout keep ratio, a few epochs per trial.
DEFAULT_SWEEP = {"learning_rate": [1e-3, 3e-4], "keep": [0.5, 0.7]}
DEFAULT_BEST = {"hidden": "1024-512-256", "learning_rate": 1e-3, "keep": 0.6, "reg": 1e-4, "weight_scale": 0.0}
# The sub-folders of the run folder that the "best" part trains in (its sweep, then the chosen setting), and the
# file that records every part's numbers.
BEST_SWEEP = "best_sweep"
BEST_FINAL = "best_final"
RESULTS_FILE = "results.json"
DESCRIPTION = __doc__.split("\n\n")[0]


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


# ---------------------------------------------------------------------------------------------------------------
# Configuration: the command line, `run(...)`'s keywords and config.json are all derived from this declaration
# ---------------------------------------------------------------------------------------------------------------
_part_choice = choice_list(PARTS, name="--part", allow_all=True)


def part_list(text):
    """`"gradcheck,best"` -> `("gradcheck", "best")`, `"all"` -> every part; a list (a config file's) too."""
    if not isinstance(text, str):
        text = ",".join(text)
    return tuple(_part_choice(text))


def _hidden_problem(text):
    try:
        hidden_dims(text)
    except ConfigError as err:
        return str(err)
    return None


@dataclasses.dataclass(frozen=True)
class Config(SweepConfig):
    """`--part` only picks which parts run (`identity=False`): each part writes its own files and folders, so running
    another part later adds it to the same run folder. Every other flag shapes the "best" net."""

    APP = APP
    DESCRIPTION = DESCRIPTION
    EPOCHS = 40
    SWEEPABLE = SWEEPABLE

    batch_size: int = batch_size_option(256)
    part: typing.Tuple[str, ...] = option(
        PARTS,
        f"comma-separated parts to run (default all): {', '.join(PARTS)}",
        parse=part_list,
        identity=False,
    )
    hidden: str = option(
        DEFAULT_BEST["hidden"],
        "hidden sizes of the 'best' net, e.g. 1024-512-256 (default {default})",
        check=_hidden_problem,
    )
    trial_epochs: int = option(3, "epochs per sweep trial of the 'best' part (default {default})")
    augment: str = option(
        "flip_crop",
        "training-time augmentation of the 'best' net (default {default})",
        choices=("none", "flip", "flip_crop"),
    )
    inputs: str = option(
        "zca",
        "the 'best' net's inputs: ZCA-whitened pixels or standardised ones (default {default}; the other parts "
        "always standardise)",
        choices=("zca", "standardize"),
    )
    zca_epsilon: float = option(0.1, "ZCA regulariser, in units of the pixel variance on [0, 1] (default {default})")

    def __post_init__(self):
        super().__post_init__()
        require(self.trial_epochs >= 1, f"--trial-epochs must be >= 1, got {self.trial_epochs}")
        require(self.zca_epsilon > 0, f"--zca-epsilon must be > 0, got {self.zca_epsilon}")

    @property
    def augmentation(self):
        """`--augment` as `FullyConnectedNet` takes it (None for none)."""
        return None if self.augment == "none" else self.augment

    @property
    def best_space(self):
        """What the "best" part searches: the `--sweep` flags, else `DEFAULT_SWEEP`."""
        return self.space or dict(DEFAULT_SWEEP)

    @property
    def best_trial_epochs(self):
        """Epochs of a sweep trial: `--trial-epochs` (1 under --quick)."""
        return 1 if self.quick else self.trial_epochs


# ---------------------------------------------------------------------------------------------------------------
# The "best" part: a Keras net chosen by a sweep, trained long and exported
# ---------------------------------------------------------------------------------------------------------------
def best_inputs(raw, config):
    """The best net's inputs and the layer/metadata that turn raw pixels into them in the export.

    Returns `(data, export_prefix_layers, export_kwconfig)`; `raw` holds pixels in [0, 255].
    """
    from tfnets.nn.preprocessing import fit_zca

    if config.inputs == "standardize":
        data, mean, std = standardise(raw)
        return data, [], {"pixel_scale": 1.0 / std, "mean_image": np.broadcast_to(mean / std, (32, 32, 3))}
    started = time.perf_counter()
    zca = fit_zca(raw.x_train, epsilon=config.zca_epsilon, input_scale=1.0 / 255)
    data = dataclasses.replace(
        raw, x_train=zca.apply(raw.x_train), x_valid=zca.apply(raw.x_valid), x_test=zca.apply(raw.x_test)
    )
    print(
        f"ZCA whitening (epsilon {config.zca_epsilon:g} on pixels in [0, 1]) fitted on {len(raw.x_train)} images "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return data, [zca.layer()], {"pixel_scale": 1.0}


def train_best(exp, data, config, settings, run, schedule_epochs, epochs=None, callbacks=(), title=None):
    """Build the "best" net of `settings` (`build_model`'s keywords) and train it into `run`; returns its
    `TrainResult` with the model. Its cosine schedule spans `schedule_epochs`, even when a sweep trial trains fewer
    epochs (`epochs`, Hyperband) and later more; `epochs=None` trains `schedule_epochs`."""
    steps = int(np.ceil(len(data.x_train) / config.batch_size))
    model = build_model(
        **settings,
        epochs=schedule_epochs,
        steps_per_epoch=steps,
        augmentation=config.augmentation,
        seed=config.seed,
    )
    result = exp.train(
        model,
        data,
        run=run,
        epochs=epochs or schedule_epochs,
        setting=_setting(settings),
        callbacks=callbacks,
        title=title,
    )
    return dataclasses.replace(result, model=model)


def best_trial(exp, data, config):
    """The sweep's train function: one trial's values over the flags' setting, `trial_epochs` per trial."""
    base = {**DEFAULT_BEST, "hidden": config.hidden}
    trial_epochs = config.best_trial_epochs

    def train_trial(values, run, epochs=None, callbacks=()):
        return train_best(exp, data, config, {**base, **values}, run, trial_epochs, epochs, callbacks)

    return train_trial


def chosen_setting(config, sweep):
    """The setting the final training trains: the flags' with the finished sweep's best values."""
    best_row = sweep.best()
    require(best_row is not None, "every trial of the sweep diverged; lower the learning rates (--sweep)")
    return {**DEFAULT_BEST, "hidden": config.hidden, **{k: best_row[k] for k in config.best_space}}


def final_run(exp, chosen):
    return exp.run.child(BEST_FINAL, {**exp.config, "part": BEST_FINAL, "chosen": chosen})


def train_final(exp, data, config, sweep):
    """The sweep's best setting trained for `--epochs` in its own sub-folder; its `TrainResult` with the model."""
    chosen = chosen_setting(config, sweep)
    run = final_run(exp, chosen)
    return train_best(exp, data, config, chosen, run, config.train_epochs, title=f"best FC net: {_setting(chosen)}")


def declare_best(plan, exp, data, config, clock):
    """The "best" part's trainings: a small sweep (few epochs per trial), then the best setting trained long.
    `data`: its inputs (`best_inputs`)."""
    sweep_run = exp.run.child(BEST_SWEEP, {**exp.config, "part": BEST_SWEEP})
    sweep = Sweep(sweep_run, config.best_space, epochs=config.best_trial_epochs, name="best", **config.sweep_options())
    plan.sweep(BEST_SWEEP, sweep, clock.timed(BEST_SWEEP, best_trial(exp, data, config)))
    plan.training(
        BEST_FINAL, clock.timed(BEST_FINAL, lambda sweep: train_final(exp, data, config, sweep)), needs=(BEST_SWEEP,)
    )


def report_best(exp, best, config, sweep, result, seconds):
    """The finished "best" part's sweep table, final training and export. `best`: `best_inputs`'s triple;
    `seconds`: what its trainings took in this process.

    Returns the final training's `TrainResult` (the exported model's), whose `parts["sweep"]` holds the sweep's table
    rows and chosen setting as its metrics."""
    data, export_layers, export_scaling = best
    rows = sweep.write_outputs(exp.report, f"Best net: sweep ({config.best_trial_epochs} epochs per trial)")
    chosen = chosen_setting(config, sweep)
    print(f"sweep: best setting {_setting(chosen)} (valid loss {sweep.best()['best_valid_loss']:.4f})")
    epochs = config.train_epochs
    final = result.final
    print(
        f"best net ({_setting(chosen)}, {epochs} epochs): train acc {final['train_accuracy']:.4f}, "
        f"val acc {final['valid_accuracy']:.4f}, test acc {final['test_accuracy']:.4f}; training "
        f"{result.metrics['timing']['wall_time_s']:.0f} s (sweep + final {seconds:.0f} s in this process)"
    )
    exp.report.add_table(
        "Best net: final training",
        [
            {
                "setting": _setting(chosen),
                "epochs": epochs,
                "inputs": config.inputs,
                "augmentation": config.augmentation,
                "train_accuracy": final["train_accuracy"],
                "valid_accuracy": final["valid_accuracy"],
                "test_accuracy": final["test_accuracy"],
                "train_time_s": result.metrics["timing"]["wall_time_s"],
            }
        ],
        note="Batch norm + dropout after every hidden layer, He initialisation, Adam with cosine learning-rate "
        f"decay, batch {config.batch_size}; accuracies of the final weights.",
    )
    exp.report.add_image("Best net: learning curves", final_run(exp, chosen).path / "curves.png")
    export_wrapper = keras.Sequential(
        [keras.Input((32, 32, 3), name="pixels"), *export_layers, result.model], name="cifar_fc_net"
    )
    path = exp.export(
        export_wrapper,
        data=data,  # calibrated on the outputs of the net itself, which takes the prepared inputs
        calibration_model=result.model,
        class_names=data.class_names,
        input_shape=[32, 32, 3],
        image_shape=[32, 32, 3],
        output="logits",
        image_style="photo",
        **export_scaling,
    )
    searched = TrainResult([], {"rows": rows, "chosen": chosen}, sweep.run)
    return dataclasses.replace(result, export_path=path, parts={"sweep": searched})


def best_record(result, config):
    """What results.json records of the "best" part."""
    searched = result.parts["sweep"].metrics
    return {
        "sweep": searched["rows"],
        "chosen": searched["chosen"],
        "final": result.final,
        "epochs": config.train_epochs,
        "train_time_s": result.metrics["timing"]["wall_time_s"],
    }


def _setting(values):
    return ", ".join(f"{k}={v}" for k, v in values.items())


# ---------------------------------------------------------------------------------------------------------------
# The app: `run(...)` from Python, `python -m apps.cifar_fc_net` from a shell
# ---------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class StepClock:
    """How long each training of the plan took in this process (a finished one only resumes: seconds)."""

    seconds: dict = dataclasses.field(default_factory=dict)

    def timed(self, name, train):
        """`train`, adding the time each call takes to `name`'s (a search's: every trial's)."""

        def timed_train(*args, **kwargs):
            started = time.perf_counter()
            try:
                return train(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        return timed_train

    def total(self, names):
        return sum(self.seconds.get(name, 0.0) for name in names)


def part_steps(name):
    """The names of part `name`'s trainings in the plan."""
    return (BEST_SWEEP, BEST_FINAL) if name == "best" else PART_STEPS[name]


def declare(exp, data, config, best=None, clock=None):
    """Every training of the parts `--part` names, in order (the plan a cluster shares): each Solver part's loops of
    solvers, the "best" part's sweep and then its final training. `data`: the standardised splits; `best`:
    `best_inputs`'s triple (needed when the "best" part runs); `clock`: a `StepClock` timing the trainings."""
    clock = clock or StepClock()
    plan = Plan(exp.run.path)
    for name in config.part:
        if name == "best":
            declare_best(plan, exp, best[0], config, clock)
        for step in PART_STEPS.get(name, ()):
            plan.training(step, clock.timed(step, lambda step=step: TRAININGS[step](exp, data, config)))
    return plan


def report_part(exp, plan, name, data, best, config, clock):
    """One finished part as a `TrainResult`: the "best" part's is its exported model's; a Solver part's metrics are
    the numbers it records (its run is the app's folder, where its tables, figures and solver checkpoints are)."""
    if name == "best":
        seconds = clock.total(part_steps(name))
        return report_best(exp, best, config, plan.result(BEST_SWEEP), plan.result(BEST_FINAL), seconds)
    trained = [plan.result(step) for step in PART_STEPS[name]]
    return TrainResult([], REPORTS[name](exp, data, config, *trained), exp.run)


def run(config=None, **overrides):
    """Run the parts `--part` names, in order: first every training, then each part's report. Returns the "best"
    part's `TrainResult` (the exported net: `.final`, `.model`, `.export_path`, ...) when it ran, else one of the run
    folder; either way `.parts` holds every part's `TrainResult` by part name. results.json in the run folder records
    each part's numbers (every part that ran in this folder). `run(quick=True, part="dropout")`: keywords as the
    flags."""
    config = Config.make(config, **overrides)
    with Experiment(config, "CIFAR-10 fully-connected nets (CS231n assignment 2)") as exp:
        data = exp.use_data(load_cifar10(config.data_dir))
        require(
            config.batch_size <= len(data.x_train),
            f"--batch-size {config.batch_size} is larger than the training set ({len(data.x_train)} examples)",
        )
        raw = data
        data, _, _ = standardise(raw)
        best = best_inputs(raw, config) if "best" in config.part else None
        clock = StepClock()
        plan = declare(exp, data, config, best, clock).run()  # re-running the same command resumes every training
        record_path = exp.run.path / RESULTS_FILE
        records = headline.read_json(record_path) or {}
        parts = {}
        for name in config.part:
            print(f"== part {name}")
            started = time.perf_counter()
            parts[name] = report_part(exp, plan, name, data, best, config, clock)
            record = best_record(parts[name], config) if name == "best" else parts[name].metrics
            # The part's time in this process: its trainings' and its report's.
            seconds = time.perf_counter() - started + clock.total(part_steps(name))
            records[name] = {**record, "wall_time_s": round(seconds, 1)}
            atomic.write_json(record_path, records)
        print(f"report: {exp.report.path}")
        result = parts.get("best") or TrainResult([], {}, exp.run)
        return dataclasses.replace(result, parts=parts)


def headlines(run_path):
    """The numbers the results page quotes from a finished run folder of this app (see `tfnets.experiment.headline`):
    the test accuracy of the "best" part's exported net."""
    return headline.collect(test_accuracy=headline.metric(run_path / BEST_FINAL))


def main(argv=None):
    return run(Config.from_argv(argv))


if __name__ == "__main__":
    exit_with(main)

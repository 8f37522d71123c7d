"""Predict the fourth word of a 4-gram from the first three, through a learned word embedding.

Reproduces Bilkent EEE443 homework 2, question 2 (the 250-word corpus of Hinton's neural-networks course), with
the hand-written-backprop layers of `tfnets.nn.layers`:

* network: three word indices -> ONE shared embedding matrix R (250 x D) applied to each word -> the three
  D-vectors concatenated in word order (`--merge sum`: summed, order-free) -> P sigmoid hidden units -> 250-way
  softmax; softmax cross-entropy loss;
* training as specified: mini-batch 200, learning rate 0.15, momentum 0.85, every weight AND bias drawn from
  N(0, 0.01^2), for (D, P) in {(32, 256), (16, 128), (8, 64)}; early stopping on the validation cross-entropy
  (stop when it has not improved for `--patience` epochs, at most `--epochs`; the best epoch's weights are kept);
  `--extra` adds runs beyond the assignment, reported as extra rows: `adam` = (32, 256) with Adam, `big` =
  (64, 512) with Adam, dropout on the hidden units and the learning rate halved on plateaus, `wide` = (128, 1024)
  with ReLU hidden units and dropout 0.5, `ensemble` = the mean probability of several wide nets (one exported
  model, `MeanProbabilityLogits`);
* a results table (validation/test cross-entropy, accuracy, top-10 accuracy) and validation curves;
* b. five seeded random test trigrams with their top-10 candidate fourth words and probabilities;
* nearest neighbours in embedding space and a 2-D PCA projection of the 250 embeddings.

The data is `trigrams/` of the data folder; when only the surrogate (`assign2_data2_surrogate.h5`, rebuilt
from the same corpus with its own split and word order) is there, the report says so.

    python -m apps.trigram_embedding --data-dir ../shared/data
    python -m apps.trigram_embedding predict "i do not"          # top-10 next words from the saved model
"""

import dataclasses
import difflib
import functools
import sys
import typing
from pathlib import Path

import numpy as np

from apps._trigram_embedding_report import (
    TOP_K,
    count_baseline_row,
    embedding_analysis,
    part_b,
    score_columns,
    top_candidates,
)
from tfnets import atomic
from tfnets.data import load_trigrams
from tfnets.errors import ConfigError, ModelError
from tfnets.experiment import Experiment, TrainResult, headline
from tfnets.experiment.cli import ArgumentParser, choice_list, exit_with, require
from tfnets.experiment.cli import positive_int as positive_int_flag  # argparse flavour, for the predict subcommand
from tfnets.experiment.config import CommonConfig, batch_size_option, option, positive_float, positive_int
from tfnets.experiment.determinism import reseed
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plan import Plan
from tfnets.experiment.plots import plot_overlay
from tfnets.experiment.report import markdown_table

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

APP = "trigram_embedding"
DEFAULT_CONFIGS = "32x256,16x128,8x64"
EXTRAS = ("adam", "big", "wide", "ensemble")
ENSEMBLE_SIZE = 3
# The figure of every net's validation curves, in the run folder.
CURVES_FIGURE = "validation_curves.png"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One network and how it is trained (a run of this app trains one or more). Its `name` is its sub-folder."""

    embed_dim: int
    hidden: int
    optimizer: str = "sgd"  # "sgd": the specified momentum SGD; "adam": an extra configuration
    learning_rate: float = 0.15
    momentum: float = 0.85
    dropout: float = 0.0  # drop rate on the hidden units (extra configurations only)
    halve_on_plateau: bool = False  # halve the learning rate after an epoch without validation improvement
    activation: str = "sigmoid"  # of the hidden units; the assignment's is sigmoid
    init: str = "normal"  # "normal": every weight and bias ~ N(0, init_std^2) as specified; "glorot": Keras'
    #                             defaults (Glorot-uniform kernels, zero biases, uniform(+-0.05) embeddings)
    members: int = 1  # > 1: that many such nets from seeds seed, seed+1, ...; predicts their mean probability

    @property
    def name(self):
        extra = "" if self.activation == "sigmoid" else f"_{self.activation}"
        extra += "" if self.optimizer == "sgd" else f"_{self.optimizer}"
        extra += f"_drop{self.dropout:g}" if self.dropout else ""
        extra += f"_x{self.members}" if self.members > 1 else ""
        return f"D{self.embed_dim}_P{self.hidden}{extra}"

    def describe(self):
        if self.optimizer == "sgd":
            how = f"SGD lr={self.learning_rate:g}, momentum={self.momentum:g}"
        else:
            how = f"Adam lr={self.learning_rate:g}"
        how += f", dropout={self.dropout:g}" if self.dropout else ""
        how += ", lr halved on plateau" if self.halve_on_plateau else ""
        how += f", {self.activation} hidden units" if self.activation != "sigmoid" else ""
        how += ", Glorot init" if self.init == "glorot" else ""
        if self.members > 1:
            return f"mean probability of {self.members} nets (D={self.embed_dim}, P={self.hidden}, {how})"
        return f"D={self.embed_dim}, P={self.hidden}, {how}"

    @property
    def member(self):
        """The configuration of one net of an ensemble."""
        return dataclasses.replace(self, members=1)


# The assignment's (D, P) = (32, 256) net, whose validation accuracy the results page quotes (its folder's name).
ASSIGNMENT_NET = Setting(32, 256)


def dp_list(text):
    """`"32x256,16x128"` -> `((32, 256), (16, 128))`; a list of pairs or of "DxP" texts (a config file's) too."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    pairs = []
    for part in parts:
        if isinstance(part, str) and not part.strip():
            continue
        try:
            d, p = (int(v) for v in (part.lower().split("x") if isinstance(part, str) else part))
        except (ValueError, TypeError):
            raise ConfigError(f"--configs expects DxP pairs like 32x256,16x128, got {part!r}") from None
        require(d > 0 and p > 0, f"--configs sizes must be positive, got {part!r}")
        pairs.append((d, p))
    require(bool(pairs), "--configs is empty; give DxP pairs like 32x256")
    return tuple(pairs)


_extra_choice = choice_list(EXTRAS, name="--extra", allow_none=True)


def extra_list(text):
    """`"adam,wide"` -> `("adam", "wide")`, `"none"` -> `()`; a list (a config file's) is checked the same way."""
    if not isinstance(text, str):
        text = ",".join(text) or "none"
    return tuple(_extra_choice(text))


def extra_settings(extra_lr=None, ensemble_size=ENSEMBLE_SIZE):
    """name -> `Setting` of each extra run beyond the assignment (`--extra`); `extra_lr` replaces their Adam rates."""

    def lr(default):
        return default if extra_lr is None else extra_lr

    extras = {
        "adam": Setting(32, 256, "adam", lr(2e-3), 0.0, halve_on_plateau=True),
        "big": Setting(64, 512, "adam", lr(1e-3), 0.0, dropout=0.3, halve_on_plateau=True),
    }
    extras["wide"] = Setting(
        128, 1024, "adam", lr(1e-3), 0.0, dropout=0.5, halve_on_plateau=True, activation="relu", init="glorot"
    )
    extras["ensemble"] = dataclasses.replace(extras["wide"], members=ensemble_size)
    return extras


# ---------------------------------------------------------------------------------------------------------
# Configuration: the command line, `run(...)`'s keywords and config.json are all derived from this declaration
# ---------------------------------------------------------------------------------------------------------

GROUP = "trigram model"


@dataclasses.dataclass(frozen=True)
class Config(CommonConfig):
    """Which models to train (`configs`, `extra`, `extra_lr`, `ensemble_size`) is not a setting of any one of them
    (`identity=False`): each model has its own folder, so asking for another later resumes the finished ones."""

    APP = APP
    DESCRIPTION = "Trigram -> fourth word with a shared word embedding (EEE443 HW2 Q2)."
    EPOCHS = 50

    batch_size: int = batch_size_option(200)
    configs: typing.Tuple[typing.Tuple[int, int], ...] = option(
        dp_list(DEFAULT_CONFIGS),
        f"(D, P) pairs: embedding size x sigmoid hidden units (default {DEFAULT_CONFIGS})",
        group=GROUP,
        parse=dp_list,
        identity=False,
    )
    merge: str = option(
        "concat",
        "combine the three word vectors by concatenation (keeps word order, default) or sum",
        group=GROUP,
        choices=("concat", "sum"),
    )
    learning_rate: float = option(0.15, "SGD learning rate (default 0.15)", group=GROUP, parse=positive_float)
    momentum: float = option(0.85, "SGD momentum (default 0.85)", group=GROUP)
    init_std: float = option(
        0.01, "weights and biases start from N(0, init_std^2) (default 0.01)", group=GROUP, parse=positive_float
    )
    patience: int = option(
        3,
        "stop when the validation cross-entropy has not improved for this many epochs (default 3)",
        group=GROUP,
        parse=positive_int,
    )
    extra: typing.Tuple[str, ...] = option(
        ("adam", "wide", "ensemble"),
        "extra runs beyond the assignment: adam = (32, 256) with Adam (lr 2e-3) and the learning "
        "rate halved after an epoch without validation improvement; big = (64, 512), Adam, "
        "dropout 0.3 on the hidden units, learning rate halved after an epoch without validation "
        "improvement; wide = (128, 1024) with ReLU hidden units, Glorot init, dropout 0.5, Adam, "
        "halving; ensemble = the mean probability of --ensemble-size wide nets from seeds seed, "
        "seed+1, ... (default adam,wide,ensemble; 'none' for the specified runs only)",
        group=GROUP,
        parse=extra_list,
        identity=False,
    )
    extra_lr: typing.Optional[float] = option(
        None,
        "Adam learning rate of every extra run (default: adam 2e-3, the others 1e-3)",
        group=GROUP,
        parse=positive_float,
        identity=False,
    )
    ensemble_size: int = option(
        ENSEMBLE_SIZE,
        "nets in the ensemble extra (default {default}; the first is the wide net itself)",
        group=GROUP,
        parse=positive_int,
        identity=False,
    )

    def __post_init__(self):
        super().__post_init__()
        require(0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}")
        require(
            self.ensemble_size >= 2,
            f"--ensemble-size must be at least 2 (one net is the wide extra), got {self.ensemble_size}",
        )

    @property
    def nets(self):
        """The `Setting`s this command trains, in order: `--configs` (momentum SGD), then `--extra`."""
        specified = [Setting(d, p, "sgd", self.learning_rate, self.momentum) for d, p in self.configs]
        extras = extra_settings(self.extra_lr, self.ensemble_size)
        return specified + [extras[name] for name in self.extra]


# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------


def build_model(setting, vocab_size, merge="concat", init_std=0.01, name=None):
    """ids (N, 3) -> shared embedding (N, 3, D) -> concat (N, 3D) or sum (N, D) -> sigmoid (N, P) -> logits (N, V),
    compiled; `setting` (a `Setting`) gives D, P, the hidden units and the optimizer.

    Keras averages the loss over the batch, so "learning rate 0.15, momentum 0.85" is
    `v <- 0.85 v - 0.15 * mean-batch-gradient; w <- w + v` (`tfnets.nn.optim.SGDMomentum`), the usual
    `dw(t) = -eta dE/dw + alpha dw(t-1)` with E the mean cross-entropy of the mini-batch.
    """
    from tfnets.nn.layers import ManualDense, ManualDropout, ManualEmbedding, SumOverWords
    from tfnets.nn.optim import Adam, SGDMomentum

    def init(kind):  # a fresh initializer per weight, so no two weights start equal
        if setting.init == "normal":
            return keras.initializers.RandomNormal(stddev=init_std)
        return {
            "embedding": keras.initializers.RandomUniform(-0.05, 0.05),
            "kernel": keras.initializers.GlorotUniform(),
            "bias": keras.initializers.Zeros(),
        }[kind]

    ids = keras.Input((3,), dtype="int32", name="trigram")
    vectors = ManualEmbedding(
        vocab_size, setting.embed_dim, embeddings_initializer=init("embedding"), name="embedding"
    )(ids)
    merged = keras.layers.Flatten(name="concat")(vectors) if merge == "concat" else SumOverWords(name="sum")(vectors)
    hidden = ManualDense(
        setting.hidden,
        activation=setting.activation,
        kernel_initializer=init("kernel"),
        bias_initializer=init("bias"),
        name="hidden",
    )(merged)
    if setting.dropout:
        hidden = ManualDropout(setting.dropout, name="dropout")(hidden)
    logits = ManualDense(vocab_size, kernel_initializer=init("kernel"), bias_initializer=init("bias"), name="logits")(
        hidden
    )
    model = keras.Model(ids, logits, name=name or f"trigram_{setting.name}")
    if setting.optimizer == "adam":
        optimizer = Adam(setting.learning_rate)
    else:
        optimizer = SGDMomentum(learning_rate=setting.learning_rate, momentum=setting.momentum)
    compile_for_trigrams(model, optimizer)
    return model


def compile_for_trigrams(model, optimizer="sgd"):
    from tfnets.nn.losses import SoftmaxCrossEntropy

    model.compile(
        optimizer=optimizer,
        loss=SoftmaxCrossEntropy(from_logits=True),
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(TOP_K, name="top10_accuracy")],
    )


def build_ensemble(members, setting):
    """ids (N, 3) -> every trained net -> (N, V) logits of their mean probability (`MeanProbabilityLogits`)."""
    from tfnets.nn.layers import MeanProbabilityLogits

    ids = keras.Input((3,), dtype="int32", name="trigram")
    # Uncompiled copies: the nets' own optimizers would otherwise be saved inside the export (and warned about
    # when it is reloaded) although serving never trains.
    copies = []
    for net in members:
        copy = keras.models.clone_model(net)
        copy.set_weights(net.get_weights())
        copies.append(copy)
    logits = MeanProbabilityLogits(name="mean_probability")([net(ids) for net in copies])
    model = keras.Model(ids, logits, name=f"trigram_{setting.name}")
    compile_for_trigrams(model)
    return model


def train(exp, data, config, setting, member=0):
    """Train one net of `setting` with early stopping; returns its `TrainResult`, whose model holds the best
    epoch's weights.

    Net `member` of an ensemble starts from seed `--seed + member` (initial weights, dropout masks and batch
    order); member 0 is the single net of the same setting, so the two share one run folder.
    The weights kept are the best epoch's, and early stopping continues across a resume (`KeepBest`).
    """
    from tfnets.experiment.callbacks import KeepBest

    seed = config.seed + member
    reseed(seed)
    folder = net_folder(config, setting, member)
    run = exp.run.child(
        folder, {**exp.config, "model": dataclasses.asdict(setting), **({"member": member} if member else {})}
    )
    model = build_model(setting, data.num_classes, config.merge, config.init_std, name=f"trigram_{folder}")
    # Its counters and best weights are checkpointed with the run: a resumed run continues the same count, and a
    # run that already stopped early is only evaluated.
    keeper = KeepBest(patience=config.patience)
    callbacks = [keeper]
    if setting.halve_on_plateau:
        # The learning rate is an optimizer variable, so a resumed run continues with the reduced value.
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, verbose=1))
    result = exp.train(
        model,
        data,
        run=run,
        setting=setting.describe(),
        callbacks=callbacks,
        title=f"{setting.describe()}, merge={config.merge}{f', seed {seed}' if member else ''}",
        seed=seed,
    )
    best_epoch = keeper.restore_best(model)
    print(f"{folder}: kept the weights of epoch {best_epoch} (lowest validation cross-entropy)")
    return dataclasses.replace(result, model=model)


def net_folder(config, setting, member=0):
    """The sub-folder (and the plan's name) of net `member` of `setting`: net 0 is the single net of the setting."""
    return setting.name + (f"_seed{config.seed + member}" if member else "")


def declare(exp, data, config):
    """Every net this command trains, in order, each named by its sub-folder (the plan a cluster shares): `--configs`,
    then `--extra`, an ensemble's nets one by one (its first, the wide net, is trained once)."""
    plan = Plan(exp.run.path)
    for setting in config.nets:
        for member in range(setting.members):
            name = net_folder(config, setting.member, member)
            if name not in plan:
                plan.training(name, functools.partial(train, exp, data, config, setting.member, member=member))
    return plan


def setting_result(exp, data, config, setting, plan):
    """The `TrainResult` of `setting`, from the plan's trained nets: a net's own, or an ensemble's (its `parts`: its
    nets by folder name, the first being the wide net), scored here and recorded in its own folder."""
    nets = [plan.result(net_folder(config, setting.member, k)) for k in range(setting.members)]
    if setting.members == 1:
        return nets[0]
    ensemble = build_ensemble([result.model for result in nets], setting)
    scores = {
        split: ensemble.evaluate(
            getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), batch_size=1024, verbose=0, return_dict=True
        )
        for split in ("valid", "test")
    }
    row = ensemble_row(setting, config.merge, scores, nets)
    run = exp.run.child(setting.name, {**exp.config, "model": dataclasses.asdict(setting)})
    recorded = {"scores": scores, "row": row}
    atomic.write_json(run.path / "metrics.json", recorded)
    print(f"{setting.name}: valid accuracy {row['valid_acc_%']:.2f} %, test {row['test_acc_%']:.2f} %")
    final = {f"{split}_{name}": value for split, values in scores.items() for name, value in values.items()}
    members = {result.run.path.name: result for result in nets}
    return TrainResult([], {"final": final, **recorded}, run, model=ensemble, parts=members)


def results_row(setting, merge, result):
    """The results table's row of a trained setting: an ensemble's own (`ensemble_row`), a net's best epoch."""
    if setting.members > 1:
        return result.metrics["row"]
    best = result.best  # the epoch of lowest validation cross-entropy: the weights we keep
    return {
        "model": setting.describe(),
        "merge": merge,
        "epochs_run": result.metrics["epochs"],
        "best_epoch": best.get("epoch"),
        "valid_CE": best.get("valid_loss"),
        "valid_acc_%": 100 * best.get("valid_accuracy", np.nan),
        "valid_top10_%": 100 * best.get("valid_top10_accuracy", np.nan),
        "test_CE": best.get("test_loss"),
        "test_acc_%": 100 * best.get("test_accuracy", np.nan),
        "test_top10_%": 100 * best.get("test_top10_accuracy", np.nan),
        "wall_time_s": result.metrics["timing"]["wall_time_s"],
    }


def ensemble_row(setting, merge, scores, results):
    """The results row of an ensemble: its own scores; epochs and time of its nets (kept epochs joined by '/')."""
    return {
        "model": setting.describe(),
        "merge": merge,
        "epochs_run": sum(r.metrics["epochs"] for r in results),
        "best_epoch": "/".join(str(r.best.get("epoch")) for r in results),
        **score_columns(scores),
        "wall_time_s": sum(r.metrics["timing"]["wall_time_s"] for r in results),
    }


# ---------------------------------------------------------------------------------------------------------
# predict subcommand: the exported SavedModel + metadata.json, no project model code
# ---------------------------------------------------------------------------------------------------------


def predict_parser():
    parser = ArgumentParser(
        prog=f"python -m apps.{APP} predict", description="Print the most likely fourth words after three given words."
    )
    parser.add_argument("words", nargs="+", help='three words, e.g. "i do not" (one argument or three)')
    parser.add_argument(
        "--model-dir", default=f"saved_models/{APP}", help=f"exported model (default saved_models/{APP})"
    )
    parser.add_argument("--top-k", type=positive_int_flag, default=TOP_K)
    parser.add_argument("--debug", action="store_true")
    return parser


def load_served(model_dir):
    """The trigram export in `model_dir` (a `ServedModel`: plain TensorFlow), refusing another app's export."""
    from tfnets.experiment.export import ServedModel

    if not (Path(model_dir) / "metadata.json").is_file():
        raise ModelError(
            f"{model_dir} holds no exported trigram model (needs metadata.json and serving/); "
            f"train first: python -m apps.{APP} --data-dir <data>"
        )
    model = ServedModel(model_dir)
    if model.metadata.get("app") != APP:
        raise ModelError(f"{model_dir} was exported by {model.metadata.get('app')!r}, not {APP}; pass --model-dir")
    return model


def word_ids(text_words, vocabulary):
    """Three words -> their indices; an unknown word is a one-line error naming the closest vocabulary words."""
    words = " ".join(text_words).lower().split()
    if len(words) != 3:
        raise ConfigError(f'give exactly three words (e.g. "i do not"), got {len(words)}: {" ".join(words)!r}')
    index = {w: i for i, w in enumerate(vocabulary)}
    for word in words:
        if word not in index:
            close = difflib.get_close_matches(word, vocabulary, n=5, cutoff=0.0)
            raise ConfigError(
                f"{word!r} is not one of the {len(vocabulary)} vocabulary words; nearest: {', '.join(close)}"
            )
    return [index[w] for w in words]


def predict_main(argv):
    args = predict_parser().parse_args(argv)
    model = load_served(args.model_dir)
    vocabulary = model.class_names
    ids = word_ids(args.words, vocabulary)
    probabilities = model.predict_proba(np.array([ids], np.int32))[0]
    ranked = top_candidates(probabilities, vocabulary, min(args.top_k, len(vocabulary)))
    print(f"{' '.join(vocabulary[i] for i in ids)} ...")
    for rank, (word, p) in enumerate(ranked, 1):
        print(f"{rank:2d}. {word:<12s} {p:.4f}")
    return ranked


# ---------------------------------------------------------------------------------------------------------
# The app: `run(...)` from Python, `python -m apps.trigram_embedding` from a shell
# ---------------------------------------------------------------------------------------------------------


def describe_data(exp, data, config):
    """The report's data caveat (the surrogate corpus) and training sections."""
    if "surrogate" in (data.note + data.source).lower():
        exp.report.add(
            "Data caveat",
            "This is NOT the original EEE443 `assign2_data2.h5`: it is a surrogate rebuilt "
            "from the same corpus (Hinton's `raw_sentences.txt`) with its own split, row order and word-index "
            f"order. Accuracies are not the original assignment's. Loader note: {data.note}",
        )
    exp.report.add(
        "Training",
        f"- loss: softmax cross-entropy, mean over each mini-batch of {config.batch_size}\n"
        f"- init: weights and biases ~ N(0, {config.init_std:g}^2)\n- merge: {config.merge}\n"
        f"- stopping: at most {config.train_epochs} epochs; stop when the validation cross-entropy has not improved "
        f"for {config.patience} epochs; the weights of the best validation epoch are kept and reported\n"
        f"- models: {'; '.join(s.describe() for s in config.nets)}",
    )


def run(config=None, **overrides):
    """Train every net of the configuration (`--configs`, then `--extra`), report them next to a count baseline,
    and export the one of lowest validation cross-entropy. Returns that model's `TrainResult` (`.best`, `.model`,
    `.export_path`, ...) whose `.parts` holds every trained setting's result by `Setting.name` (its folder).
    `run(quick=True, configs="8x16", extra="none")`: keywords as the flags."""
    config = Config.make(config, **overrides)
    title = f"Trigram -> fourth word with a shared embedding (EEE443 HW2 Q2), merge={config.merge}"
    with Experiment(config, title) as exp:
        data = exp.use_data(load_trigrams(config.data_dir), quick_train=2000, quick_eval=500)
        describe_data(exp, data, config)
        plan = declare(exp, data, config).run()  # re-running the same command resumes every net
        trained = [(setting, setting_result(exp, data, config, setting, plan)) for setting in config.nets]
        rows = [results_row(setting, config.merge, result) for setting, result in trained]
        rows.append(count_baseline_row(data, config.merge))
        exp.report.add_table(
            "Results (weights of the epoch with the lowest validation cross-entropy)",
            rows,
            note="Extra rows (Adam) are an addition to the specified runs, not part of the assignment. "
            "An ensemble's row scores the mean probability of its nets (each net at its own "
            "best epoch; best_epoch lists them). The count baseline is a smoothed 4-gram model "
            "fitted on the same training split (`tfnets.nn.ngram`), for scale.",
        )
        histories = {setting.describe(): result.history for setting, result in trained if result.history}
        figure = plot_overlay(
            histories,
            exp.run.path / CURVES_FIGURE,
            metrics=("val_loss", "val_accuracy", "val_top10_accuracy"),
            title=f"merge={config.merge}",
        )
        exp.report.add_image("Validation cross-entropy and accuracy per epoch", figure)
        print(markdown_table(rows, floatfmt=".3f"))

        index = min(range(len(trained)), key=lambda i: np.nan_to_num(rows[i]["valid_CE"], nan=np.inf))
        setting, best = trained[index]
        path = exp.export(
            best.model, data=data, class_names=data.class_names, input_shape=[3], output="logits", pixel_scale=1.0
        )
        exp.report.add(
            "Exported model",
            f"`{exp.export_dir}`: {setting.describe()}, merge={config.merge} (the lowest "
            f'validation cross-entropy). `python -m apps.{APP} predict "i do not" --model-dir {exp.export_dir}`',
        )
        part_b(exp, best.model, data, config.seed)
        # An ensemble's embedding is its first net's (the wide net).
        embedding_model = next(iter(best.parts.values())).model if best.parts else best.model
        embedding_analysis(exp, embedding_model, data.class_names, setting.member.describe())
        print(f"report: {exp.report.path}")
        return dataclasses.replace(best, export_path=path, parts={s.name: result for s, result in trained})


def headlines(run_path):
    """The numbers the results page quotes from a finished run folder of this app (see `tfnets.experiment.headline`):
    the best-epoch validation accuracy of the assignment's (32, 256) net, and the default ensemble's validation
    accuracy (its `metrics.json` holds the ensemble's own scores)."""
    run_path = Path(run_path)
    ensemble = run_path / extra_settings()["ensemble"].name / "metrics.json"
    accuracy = (((headline.read_json(ensemble) or {}).get("scores") or {}).get("valid") or {}).get("accuracy")
    return headline.collect(
        valid_accuracy=headline.metric(run_path / ASSIGNMENT_NET.name, "valid_accuracy", "best"),
        ensemble_valid_accuracy=None if accuracy is None else (accuracy, ensemble),
    )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["predict"]:
        return predict_main(argv[1:])
    return run(Config.from_argv(argv))


if __name__ == "__main__":
    exit_with(main)

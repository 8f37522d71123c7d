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
import sys
from pathlib import Path

import numpy as np

from tfnets import atomic
from tfnets.data import load_trigrams
from tfnets.errors import ConfigError, ModelError
from tfnets.experiment import Experiment
from tfnets.experiment.cli import (
    ArgumentParser,
    base_parser,
    choice_list,
    core_config,
    exit_with,
    positive_float,
    positive_int,
    require,
)
from tfnets.experiment.determinism import reseed
from tfnets.experiment.export import softmax
from tfnets.experiment.lazy import lazy_import
from tfnets.experiment.plots import plot_overlay, pyplot, save_figure
from tfnets.experiment.report import markdown_table
from tfnets.nn.ngram import InterpolatedNgram

keras = lazy_import("keras")  # loaded on first use: `--help` answers without importing TensorFlow

APP = "trigram_embedding"
DEFAULT_CONFIGS = "32x256,16x128,8x64"
NEIGHBOUR_WORDS = ("he", "day", "could", "money", "three", "city", "good", "said")
TOP_K = 10


@dataclasses.dataclass(frozen=True)
class Setting:
    """One network and how it is trained (a run of this app trains one or more)."""

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


def dp_list(text):
    """`"32x256,16x128"` -> `[(32, 256), (16, 128)]`."""
    pairs = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            d, p = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--configs expects DxP pairs like 32x256,16x128, got {part!r}") from None
        require(d > 0 and p > 0, f"--configs sizes must be positive, got {part!r}")
        pairs.append((d, p))
    require(bool(pairs), "--configs is empty; give DxP pairs like 32x256")
    return pairs


EXTRAS = ("adam", "big", "wide", "ensemble")


extra_list = choice_list(EXTRAS, name="--extra", allow_none=True)


def build_parser():
    parser = base_parser(
        APP, "Trigram -> fourth word with a shared word embedding (EEE443 HW2 Q2).", epochs=50, batch_size=200
    )
    group = parser.add_argument_group("trigram model")
    group.add_argument(
        "--configs",
        default=DEFAULT_CONFIGS,
        help=f"(D, P) pairs: embedding size x sigmoid hidden units (default {DEFAULT_CONFIGS})",
    )
    group.add_argument(
        "--merge",
        choices=("concat", "sum"),
        default="concat",
        help="combine the three word vectors by concatenation (keeps word order, default) or sum",
    )
    group.add_argument("--learning-rate", type=positive_float, default=0.15, help="SGD learning rate (default 0.15)")
    group.add_argument("--momentum", type=float, default=0.85, help="SGD momentum (default 0.85)")
    group.add_argument(
        "--init-std",
        type=positive_float,
        default=0.01,
        help="weights and biases start from N(0, init_std^2) (default 0.01)",
    )
    group.add_argument(
        "--patience",
        type=positive_int,
        default=3,
        help="stop when the validation cross-entropy has not improved for this many epochs (default 3)",
    )
    group.add_argument(
        "--extra",
        type=extra_list,
        default="adam,wide,ensemble",
        help="extra runs beyond the assignment: adam = (32, 256) with Adam (lr 2e-3) and the learning "
        "rate halved after an epoch without validation improvement; big = (64, 512), Adam, "
        "dropout 0.3 on the hidden units, learning rate halved after an epoch without validation "
        "improvement; wide = (128, 1024) with ReLU hidden units, Glorot init, dropout 0.5, Adam, "
        "halving; ensemble = the mean probability of --ensemble-size wide nets from seeds seed, "
        "seed+1, ... (default adam,wide,ensemble; 'none' for the specified runs only)",
    )
    group.add_argument(
        "--extra-lr",
        type=positive_float,
        default=None,
        help="Adam learning rate of every extra run (default: adam 2e-3, the others 1e-3)",
    )
    group.add_argument(
        "--ensemble-size",
        type=positive_int,
        default=3,
        help="nets in the ensemble extra (default 3; the first is the wide net itself)",
    )
    return parser


# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------


def build_model(config, vocab_size, merge="concat", init_std=0.01, name=None):
    """ids (N, 3) -> shared embedding (N, 3, D) -> concat (N, 3D) or sum (N, D) -> sigmoid (N, P) -> logits (N, V).

    Keras averages the loss over the batch, so "learning rate 0.15, momentum 0.85" is
    `v <- 0.85 v - 0.15 * mean-batch-gradient; w <- w + v` (`tfnets.nn.optim.SGDMomentum`), the usual
    `dw(t) = -eta dE/dw + alpha dw(t-1)` with E the mean cross-entropy of the mini-batch.
    """
    from tfnets.nn.layers import ManualDense, ManualDropout, ManualEmbedding, SumOverWords
    from tfnets.nn.optim import Adam, SGDMomentum

    def init(kind):  # a fresh initializer per weight, so no two weights start equal
        if config.init == "normal":
            return keras.initializers.RandomNormal(stddev=init_std)
        return {
            "embedding": keras.initializers.RandomUniform(-0.05, 0.05),
            "kernel": keras.initializers.GlorotUniform(),
            "bias": keras.initializers.Zeros(),
        }[kind]

    ids = keras.Input((3,), dtype="int32", name="trigram")
    vectors = ManualEmbedding(vocab_size, config.embed_dim, embeddings_initializer=init("embedding"), name="embedding")(
        ids
    )
    merged = keras.layers.Flatten(name="concat")(vectors) if merge == "concat" else SumOverWords(name="sum")(vectors)
    hidden = ManualDense(
        config.hidden,
        activation=config.activation,
        kernel_initializer=init("kernel"),
        bias_initializer=init("bias"),
        name="hidden",
    )(merged)
    if config.dropout:
        hidden = ManualDropout(config.dropout, name="dropout")(hidden)
    logits = ManualDense(vocab_size, kernel_initializer=init("kernel"), bias_initializer=init("bias"), name="logits")(
        hidden
    )
    model = keras.Model(ids, logits, name=name or f"trigram_{config.name}")
    if config.optimizer == "adam":
        optimizer = Adam(config.learning_rate)
    else:
        optimizer = SGDMomentum(learning_rate=config.learning_rate, momentum=config.momentum)
    compile_for_trigrams(model, optimizer)
    return model


def compile_for_trigrams(model, optimizer="sgd"):
    from tfnets.nn.losses import SoftmaxCrossEntropy

    model.compile(
        optimizer=optimizer,
        loss=SoftmaxCrossEntropy(from_logits=True),
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(TOP_K, name="top10_accuracy")],
    )


def build_ensemble(members, config):
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
    model = keras.Model(ids, logits, name=f"trigram_{config.name}")
    compile_for_trigrams(model)
    return model


def train(exp, data, config, args, member=0):
    """Train one net with early stopping; returns (model with the best weights, TrainResult).

    Net `member` of an ensemble starts from seed `--seed + member` (initial weights, dropout masks and batch
    order); member 0 is the single net of the same configuration, so the two share one run folder.
    The weights kept are the best epoch's, and early stopping continues across a resume (`KeepBest`).
    """
    from tfnets.experiment.callbacks import KeepBest

    seed = args.seed + member
    reseed(seed)
    suffix, settings = (f"_seed{seed}", {"member": member}) if member else ("", {})
    run = exp.run.child(config.name + suffix, {**exp.config, "model": dataclasses.asdict(config), **settings})
    model = build_model(config, data.num_classes, args.merge, args.init_std, name=f"trigram_{config.name}{suffix}")
    # Its counters and best weights are checkpointed with the run: a resumed run continues the same count, and a
    # run that already stopped early is only evaluated.
    keeper = KeepBest(patience=args.patience)
    callbacks = [keeper]
    if config.halve_on_plateau:
        # The learning rate is an optimizer variable, so a resumed run continues with the reduced value.
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, verbose=1))
    result = exp.train(
        model,
        data,
        run=run,
        epochs=args.epochs,
        setting=config.describe(),
        callbacks=callbacks,
        title=f"{config.describe()}, merge={args.merge}{f', seed {seed}' if member else ''}",
        seed=seed,
    )
    best_epoch = keeper.restore_best(model)
    print(f"{config.name}{suffix}: kept the weights of epoch {best_epoch} (lowest validation cross-entropy)")
    return model, result


@dataclasses.dataclass
class Trained:
    """A trained configuration: the model to score and export, its results row and curves."""

    config: Setting
    model: "keras.Model"
    row: dict
    history: list
    embedding_model: "keras.Model"  # the net whose embedding the report analyses (an ensemble's first)


def train_config(exp, data, config, args, nets_done):
    """Train `config` (every net of an ensemble); `nets_done` maps (net config, member) -> (model, TrainResult) of
    the nets this invocation already has, so an ensemble's net 0 is not loaded and evaluated again after `wide`."""

    def net(member_config, member=0):
        key = (member_config, member)
        if key not in nets_done:
            nets_done[key] = train(exp, data, member_config, args, member=member)
        return nets_done[key]

    if config.members == 1:
        model, result = net(config)
        return Trained(config, model, results_row(config, args.merge, result), result.history, model)
    nets = [net(config.member, k) for k in range(config.members)]
    ensemble = build_ensemble([model for model, _ in nets], config)
    scores = {
        split: ensemble.evaluate(
            getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), batch_size=1024, verbose=0, return_dict=True
        )
        for split in ("valid", "test")
    }
    row = ensemble_row(config, args.merge, scores, [result for _, result in nets])
    run = exp.run.child(config.name, {**exp.config, "model": dataclasses.asdict(config)})
    atomic.write_json(run.path / "metrics.json", {"scores": scores, "row": row})
    print(f"{config.name}: valid accuracy {row['valid_acc_%']:.2f} %, test {row['test_acc_%']:.2f} %")
    return Trained(config, ensemble, row, [], nets[0][0])


def results_row(config, merge, result):
    best = result.best  # the epoch of lowest validation cross-entropy: the weights we keep
    return {
        "model": config.describe(),
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


def score_columns(scores):
    """`{"valid": {"loss", "accuracy", "top10_accuracy"}, "test": ...}` -> the table's score columns."""
    columns = {}
    for split in ("valid", "test"):
        columns.update(
            {
                f"{split}_CE": scores[split]["loss"],
                f"{split}_acc_%": 100 * scores[split]["accuracy"],
                f"{split}_top10_%": 100 * scores[split]["top10_accuracy"],
            }
        )
    return columns


def ensemble_row(config, merge, scores, results):
    """The results row of an ensemble: its own scores; epochs and time of its nets (kept epochs joined by '/')."""
    return {
        "model": config.describe(),
        "merge": merge,
        "epochs_run": sum(r.metrics["epochs"] for r in results),
        "best_epoch": "/".join(str(r.best.get("epoch")) for r in results),
        **score_columns(scores),
        "wall_time_s": sum(r.metrics["timing"]["wall_time_s"] for r in results),
    }


def count_baseline_row(data, merge):
    """The results row of a smoothed 4-gram count model on the same split: what the nets have to beat."""
    import time

    started = time.perf_counter()
    model = InterpolatedNgram(data.num_classes).fit(data.x_train, data.y_train)
    scores = {}
    for split in ("valid", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        probabilities = model.predict_proba(x)
        truth = probabilities[np.arange(len(y)), y]
        # In the top 10 <=> fewer than 10 words are strictly more likely (ties count for the true word).
        scores[split] = {
            "loss": float(-np.log(truth).mean()),
            "accuracy": float((probabilities.argmax(axis=1) == y).mean()),
            "top10_accuracy": float(((probabilities > truth[:, None]).sum(axis=1) < TOP_K).mean()),
        }
    return {
        "model": f"count baseline, not a net: interpolated 4-gram (absolute discounting {model.discount:g})",
        "merge": merge,
        "epochs_run": "-",
        "best_epoch": "-",
        **score_columns(scores),
        "wall_time_s": round(time.perf_counter() - started, 3),
    }


# ---------------------------------------------------------------------------------------------------------
# Using a trained model
# ---------------------------------------------------------------------------------------------------------


def top_candidates(probabilities, words, k=TOP_K):
    """(V,) probabilities -> [(word, probability)] of the k most likely words, most likely first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(words[i], float(probabilities[i])) for i in order]


def part_b(exp, model, data, seed, count=5):
    """Five seeded random test trigrams: the words, the true fourth word and the top-10 candidates."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(data.y_test), size=min(count, len(data.y_test)), replace=False)
    probabilities = softmax(model.predict(data.x_test[picks], verbose=0))
    words = data.class_names
    blocks = []
    for row, i in enumerate(picks):
        context = " ".join(words[j] for j in data.x_test[i])
        truth = words[data.y_test[i]]
        ranked = top_candidates(probabilities[row], words)
        rank = next((r + 1 for r, (w, _) in enumerate(ranked) if w == truth), None)
        listing = ", ".join(f"{w} {p:.3f}" for w, p in ranked)
        blocks.append(
            f"- **{context}** → true: **{truth}** ({f'rank {rank}' if rank else 'not in the top 10'}); "
            f"top 10: {listing}"
        )
    text = "\n".join(blocks)
    print("part b: five random test trigrams\n" + text.replace("**", ""))
    exp.report.add(f"Part b: {len(picks)} random test trigrams (seed {seed}) and the top-10 fourth words", text)


def nearest_words(embeddings, words, query, k=5):
    """The k words whose embeddings have the highest cosine similarity to `query`'s."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    index = words.index(query)
    similarity = unit @ unit[index]
    similarity[index] = -np.inf
    order = np.argsort(-similarity, kind="stable")[:k]
    return [(words[i], float(similarity[i])) for i in order]


def embedding_analysis(exp, model, words, title):
    """Nearest neighbours of a few words, and a 2-D PCA map of all 250 embeddings."""
    from sklearn.decomposition import PCA

    plt = pyplot()
    embeddings = np.asarray(model.get_layer("embedding").embeddings.numpy())
    rows = [
        {
            "word": w,
            "nearest (cosine similarity)": ", ".join(
                f"{n} {s:.2f}" for n, s in nearest_words(embeddings, list(words), w)
            ),
        }
        for w in NEIGHBOUR_WORDS
        if w in words
    ]
    exp.report.add_table(f"Nearest neighbours in embedding space ({title})", rows)
    points = PCA(n_components=2, random_state=0).fit_transform(embeddings)
    fig, ax = plt.subplots(figsize=(14, 11))
    ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.4)
    for (x, y), word in zip(points, words):
        ax.annotate(word, (x, y), fontsize=7)
    ax.set_title(f"PCA of the 250 word embeddings ({title})")
    path = exp.run.path / "embeddings_pca.png"
    save_figure(fig, path)
    exp.report.add_image("2-D PCA projection of the word embeddings", path)
    return rows


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
    parser.add_argument("--top-k", type=positive_int, default=TOP_K)
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
# Training entry point
# ---------------------------------------------------------------------------------------------------------


def configs_from(args):
    configs = [Setting(d, p, "sgd", args.learning_rate, args.momentum) for d, p in dp_list(args.configs)]
    require(0 <= args.momentum < 1, f"--momentum must be in [0, 1), got {args.momentum}")
    require(
        args.ensemble_size >= 2,
        f"--ensemble-size must be at least 2 (one net is the wide extra), got {args.ensemble_size}",
    )

    def lr(default):
        return default if args.extra_lr is None else args.extra_lr

    extras = {
        "adam": Setting(32, 256, "adam", lr(2e-3), 0.0, halve_on_plateau=True),
        "big": Setting(64, 512, "adam", lr(1e-3), 0.0, dropout=0.3, halve_on_plateau=True),
    }
    extras["wide"] = Setting(
        128, 1024, "adam", lr(1e-3), 0.0, dropout=0.5, halve_on_plateau=True, activation="relu", init="glorot"
    )
    extras["ensemble"] = dataclasses.replace(extras["wide"], members=args.ensemble_size)
    configs += [extras[name] for name in args.extra]
    return configs


def get_config(args):
    """What defines a run of this app (its run id hashes exactly these fields).

    Which models to train (`--configs`, `--extra`, `--extra-lr`, `--ensemble-size`) is not a setting
    of any one of them: each model has its own folder, so asking for another later resumes the
    finished ones.
    """
    return {
        **core_config(args),
        "merge": args.merge,
        "learning_rate": args.learning_rate,
        "momentum": args.momentum,
        "init_std": args.init_std,
        "patience": args.patience,
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["predict"]:
        return predict_main(argv[1:])
    args = build_parser().parse_args(argv)
    configs = configs_from(args)
    exp = Experiment(
        args, f"Trigram -> fourth word with a shared embedding (EEE443 HW2 Q2), merge={args.merge}", get_config
    )
    data = exp.use_data(load_trigrams(args.data_dir), quick_train=2000, quick_eval=500)
    if "surrogate" in (data.note + data.source).lower():
        exp.report.add(
            "Data caveat",
            "This is NOT the original EEE443 `assign2_data2.h5`: it is a surrogate rebuilt "
            "from the same corpus (Hinton's `raw_sentences.txt`) with its own split, row order and word-index "
            f"order. Accuracies are not the original assignment's. Loader note: {data.note}",
        )
    exp.report.add(
        "Training",
        f"- loss: softmax cross-entropy, mean over each mini-batch of {args.batch_size}\n"
        f"- init: weights and biases ~ N(0, {args.init_std:g}^2)\n- merge: {args.merge}\n"
        f"- stopping: at most {args.epochs} epochs; stop when the validation cross-entropy has not improved "
        f"for {args.patience} epochs; the weights of the best validation epoch are kept and reported\n"
        f"- models: {'; '.join(c.describe() for c in configs)}",
    )

    nets_done = {}
    trained = [train_config(exp, data, config, args, nets_done) for config in configs]
    rows = [t.row for t in trained] + [count_baseline_row(data, args.merge)]
    exp.report.add_table(
        "Results (weights of the epoch with the lowest validation cross-entropy)",
        rows,
        note="Extra rows (Adam) are an addition to the specified runs, not part of the assignment. "
        "An ensemble's row scores the mean probability of its nets (each net at its own "
        "best epoch; best_epoch lists them). The count baseline is a smoothed 4-gram model "
        "fitted on the same training split (`tfnets.nn.ngram`), for scale.",
    )
    histories = {t.config.describe(): t.history for t in trained if t.history}
    figure = plot_overlay(
        histories,
        exp.run.path / "validation_curves.png",
        metrics=("val_loss", "val_accuracy", "val_top10_accuracy"),
        title=f"merge={args.merge}",
    )
    exp.report.add_image("Validation cross-entropy and accuracy per epoch", figure)
    print(markdown_table(rows, floatfmt=".3f"))

    best = min(trained, key=lambda t: np.nan_to_num(t.row["valid_CE"], nan=np.inf))
    config, model = best.config, best.model
    exp.export(model, data=data, class_names=data.class_names, input_shape=[3], output="logits", pixel_scale=1.0)
    exp.report.add(
        "Exported model",
        f"`{exp.export_dir}`: {config.describe()}, merge={args.merge} (the lowest "
        f'validation cross-entropy). `python -m apps.{APP} predict "i do not" --model-dir {exp.export_dir}`',
    )
    part_b(exp, model, data, args.seed)
    embedding_analysis(exp, best.embedding_model, data.class_names, best.config.member.describe())
    print(f"report: {exp.report.path}")
    return rows


if __name__ == "__main__":
    exit_with(main)
